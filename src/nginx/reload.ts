/**
 * Reloads nginx and confirms that the master took the new configuration: new child processes appear when it
 * did; when it refused (it keeps serving the old configuration and says why in its error log), none do.
 */
import { execa } from 'execa';
import { isAlive } from '../core/lock.js';
import { acceptingOldWorker, childrenOf, fileSize, findMaster, newSeriousLines } from './master.js';

export interface ReloadOptions {
  nginxBin?: string;
  /** A shell command to reload nginx (default: nginx -s reload -c <conf>). */
  reloadCmd?: string;
  /** How long to wait for the master's new children (ms, default 10 s: nginx retries a busy port for 2.5 s). */
  verifyTimeoutMs?: number;
}

export type ReloadOutcome =
  | { ok: true; verified: true; master: number }
  | { ok: true; verified: false; why: string }
  /** The reload command failed. */
  | { ok: false; stage: 'command'; output: string }
  /** The command succeeded but the master did not apply the configuration; `log` holds what it reported. */
  | { ok: false; stage: 'apply'; why: string; log: string[] };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runReload(conf: string, opts: ReloadOptions): Promise<{ ok: boolean; output: string }> {
  const r = opts.reloadCmd
    ? await execa(opts.reloadCmd, { shell: true, reject: false, all: true, timeout: 60_000, stdin: 'ignore' })
    : await execa(opts.nginxBin ?? 'nginx', ['-s', 'reload', '-c', conf], { reject: false, all: true, timeout: 60_000, stdin: 'ignore' });
  return { ok: !r.failed, output: (r.all ?? '').trim() || r.shortMessage || '' };
}

/** Reloads the nginx that serves `conf` and waits until its master started new children and the old workers stopped accepting (or gave up). */
export async function reloadNginx(conf: string, opts: ReloadOptions = {}): Promise<ReloadOutcome> {
  const master = await findMaster(conf, opts.nginxBin);
  const before = master.found ? childrenOf(master.pid) : new Set<number>();
  const logFrom = master.found ? fileSize(master.errorLog) : 0;
  const command = await runReload(conf, opts);
  if (!command.ok) return { ok: false, stage: 'command', output: command.output };
  if (!master.found) return { ok: true, verified: false, why: master.why };

  const timeout = opts.verifyTimeoutMs ?? 10_000;
  const deadline = Date.now() + timeout;
  for (;;) {
    if (!isAlive(master.pid)) {
      return { ok: false, stage: 'apply', why: `the nginx master (pid ${master.pid}) exited during the reload`, log: newSeriousLines(master.errorLog, logFrom) };
    }
    const started = [...childrenOf(master.pid)].some((child) => !before.has(child));
    // Confirmed once no old worker still accepts: a client that connects right after sees the new site.
    if (started && (Date.now() > deadline || ![...before].some(acceptingOldWorker))) return { ok: true, verified: true, master: master.pid };
    if (Date.now() > deadline) break;
    await sleep(50);
  }
  const log = newSeriousLines(master.errorLog, logFrom);
  return {
    ok: false,
    stage: 'apply',
    why: `the nginx master (pid ${master.pid}) started no new worker within ${Math.round(timeout / 1000)} s, so it kept the previous configuration`,
    log,
  };
}

/** One line for people: why the reload did not take. */
export function describeFailure(outcome: Extract<ReloadOutcome, { ok: false }>): string {
  if (outcome.stage === 'command') return `the reload command failed: ${outcome.output}`;
  return outcome.log.length > 0 ? `${outcome.why}; its error log says: ${outcome.log.slice(-3).join(' / ')}` : outcome.why;
}
