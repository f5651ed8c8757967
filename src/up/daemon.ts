/**
 * The daemon as `up` runs it where systemd does not: `guardctl serve` as a detached background process with a
 * pid file and a log file under `<home>/run/`; ready once its log says it listens and its /readyz answers 200.
 * It is not restarted when it dies (`guardctl status` says so). Stopping checks that the pid is still a guardctl
 * serve of this home before signalling it, so a reused pid is never killed.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePrivateDir, writeFileAtomic } from '../core/atomic.js';
import { GuardError } from '../core/errors.js';
import { isAlive, readPidFile } from '../core/lock.js';
import { textExchange } from './http-text.js';

const BIN = fileURLToPath(new URL('../../bin/guardctl.js', import.meta.url));
/** Loading models from a cold disk on a busy machine: an upper bound for a hang, not an expected time. */
const READY_BOUND_MS = 180_000;
const STOP_BOUND_MS = 60_000;

export function runFiles(home: string): { dir: string; pidFile: string; logFile: string } {
  const dir = path.join(home, 'run');
  return { dir, pidFile: path.join(dir, 'guardctl-serve.pid'), logFile: path.join(dir, 'guardctl-serve.log') };
}

/** Whether pid runs `guardctl ... --home <home> serve` (Linux /proc; elsewhere: whether it runs at all). */
function isOurDaemon(pid: number, home: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes('serve') && argv.includes(home);
  } catch {
    return process.platform !== 'linux';
  }
}

/** The running daemon of this home and the arguments it was started with, or undefined. */
export function runningDaemon(home: string): { pid: number } | undefined {
  const pid = readPidFile(runFiles(home).pidFile);
  return pid !== null && isOurDaemon(pid, home) ? { pid } : undefined;
}

export function httpGet(url: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return textExchange((onResponse) => http.get(url, { timeout: timeoutMs }, onResponse), timeoutMs);
}

function tail(file: string, lines = 5): string[] {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines);
  } catch {
    return [];
  }
}

/** A pino line's message and error, for people. */
function explain(lines: string[]): string {
  const parts = lines.map((l) => {
    try {
      const j = JSON.parse(l) as { msg?: string; err?: { message?: string }; error?: string };
      return [j.msg, j.err?.message ?? j.error].filter(Boolean).join(': ');
    } catch {
      return l;
    }
  }).filter((p) => p && !/run again with --verbose/.test(p));
  return parts.slice(-2).join(' / ').replace(/\s+/g, ' ').trim();
}

export interface StartInputs {
  home: string;
  host: string;
  port: number;
  basePath: string;
  serveArgs: string[];
  env: NodeJS.ProcessEnv;
}

/** Starts the daemon and resolves once it is ready; rejects (after stopping it) with what its log says. */
export async function startDaemonProcess(s: StartInputs): Promise<{ pid: number; pidFile: string; logFile: string }> {
  const files = runFiles(s.home);
  ensurePrivateDir(files.dir);
  const log = fs.openSync(files.logFile, 'a', 0o600);
  let child;
  try {
    child = spawn(process.execPath, [BIN, '--home', s.home, 'serve', ...s.serveArgs], {
      detached: true,
      stdio: ['ignore', log, log],
      // info: the "listening" and "model ready" lines are how readiness and failures are read from the log.
      env: { ...s.env, GUARDCTL_LOG: 'info' },
    });
  } finally {
    fs.closeSync(log);
  }
  const pid = child.pid!;
  let exit: string | undefined;
  child.once('exit', (code, signal) => (exit = signal ?? String(code)));
  child.unref();
  writeFileAtomic(files.pidFile, `${pid}\n`, 0o600);
  const from = fs.statSync(files.logFile).size;
  const url = `http://${s.host}:${s.port}${s.basePath}/readyz`;
  const deadline = Date.now() + READY_BOUND_MS;
  const fail = async (why: string): Promise<never> => {
    await stopPid(pid, s.home);
    fs.rmSync(files.pidFile, { force: true });
    throw new GuardError('GUARD_E_DAEMON', why, { hint: `its log is ${files.logFile}; a port in use needs another --port` });
  };
  for (;;) {
    if (exit !== undefined) {
      const lines = fs.readFileSync(files.logFile, 'utf8').slice(from).trim().split('\n');
      return fail(`the daemon exited (${exit}) before it was ready: ${explain(lines) || 'no output'}`);
    }
    const text = fs.readFileSync(files.logFile, 'utf8').slice(from);
    if (/"msg":"listening"/.test(text)) {
      const r = await httpGet(url).catch(() => undefined);
      if (r?.status === 200) return { pid, ...files };
    }
    if (Date.now() > deadline) return fail(`the daemon was not ready within ${READY_BOUND_MS / 1000}s: ${explain(tail(files.logFile))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopPid(pid: number, home: string): Promise<void> {
  if (!isOurDaemon(pid, home)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + STOP_BOUND_MS;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}

/** Stops this home's daemon (SIGTERM drains requests in flight) and removes its pid file. */
export async function stopDaemonProcess(home: string): Promise<number | undefined> {
  const files = runFiles(home);
  const pid = readPidFile(files.pidFile);
  if (pid !== null) await stopPid(pid, home);
  fs.rmSync(files.pidFile, { force: true });
  return pid ?? undefined;
}
