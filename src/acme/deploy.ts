/**
 * Copies a lineage's files to where a server reads them, then runs the reload command; and the --on-failure
 * hook. Deploying is all or nothing: every file is written to a temp file next to its target first, and only
 * when all are written are they renamed into place.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { GuardError } from '../core/errors.js';
import type { Bundle } from './certinfo.js';
import type { CertFile } from './store.js';
import type { DeployTarget } from './types.js';

const MODES: Record<CertFile, number> = { privkey: 0o600, cert: 0o644, chain: 0o644, fullchain: 0o644 };

function deployError(message: string, cause?: unknown): GuardError {
  return new GuardError('GUARD_E_DEPLOY', message, {
    hint: 'make the deploy location writable (with systemd, list it in ReadWritePaths) or choose another with --deploy-dir',
    cause,
  });
}

/** Target path for each file the target wants. */
export function deployPaths(target: DeployTarget): Partial<Record<CertFile, string>> {
  if (target.dir) {
    const dir = path.resolve(target.dir);
    return { cert: path.join(dir, 'cert.pem'), chain: path.join(dir, 'chain.pem'), fullchain: path.join(dir, 'fullchain.pem'), privkey: path.join(dir, 'privkey.pem') };
  }
  const out: Partial<Record<CertFile, string>> = {};
  if (target.certFile) out.cert = path.resolve(target.certFile);
  if (target.keyFile) out.privkey = path.resolve(target.keyFile);
  if (target.fullchainFile) out.fullchain = path.resolve(target.fullchainFile);
  return out;
}

export function hasDeployFiles(target: DeployTarget | undefined): boolean {
  return target !== undefined && Object.keys(deployPaths(target)).length > 0;
}

/** Fails before any order is placed when a deploy location cannot be written. */
export function checkDeployWritable(target: DeployTarget): void {
  for (const dir of new Set(Object.values(deployPaths(target)).map((f) => path.dirname(f)))) {
    const probe = path.join(dir, `.guardctl-probe-${randomBytes(4).toString('hex')}`);
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      fs.writeFileSync(probe, '', { mode: 0o600 });
      fs.rmSync(probe);
    } catch (err) {
      throw deployError(`cannot write to the deploy location ${dir}: ${(err as Error).message}`, err);
    }
  }
}

/** Writes the bundle to the target, all files or none. */
export function deployFiles(bundle: Bundle, target: DeployTarget): string[] {
  const files = Object.entries(deployPaths(target)) as Array<[CertFile, string]>;
  const staged: Array<{ tmp: string; file: string }> = [];
  try {
    for (const [kind, file] of files) {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
      const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
      staged.push({ tmp, file });
      const fd = fs.openSync(tmp, 'wx', MODES[kind]);
      try {
        fs.writeFileSync(fd, bundle[kind]);
        fs.fchmodSync(fd, MODES[kind]);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    for (const { tmp, file } of staged) fs.renameSync(tmp, file);
  } catch (err) {
    for (const { tmp } of staged) fs.rmSync(tmp, { force: true });
    throw deployError(`cannot deploy the certificate: ${(err as Error).message}`, err);
  }
  return files.map(([, file]) => file);
}

export interface HookEnv {
  lineage: string;
  certDir: string;
  names: string[];
  error?: string;
}

function hookEnv(base: NodeJS.ProcessEnv, h: HookEnv): NodeJS.ProcessEnv {
  return {
    ...base,
    GUARDCTL_LINEAGE: h.lineage,
    GUARDCTL_CERT_DIR: h.certDir,
    GUARDCTL_DOMAINS: h.names.join(' '),
    ...(h.error !== undefined ? { GUARDCTL_ERROR: h.error } : {}),
  };
}

/** Runs a shell command (the reload or on-failure hook); throws with its output when it fails. */
export async function runHook(what: string, command: string, env: NodeJS.ProcessEnv, h: HookEnv, timeoutMs = 120_000): Promise<void> {
  const res = await execa(command, { shell: true, reject: false, all: true, env: hookEnv(env, h), extendEnv: false, timeout: timeoutMs, stdin: 'ignore' });
  if (res.exitCode !== 0 || res.failed) {
    const output = (res.all ?? '').toString().trim().split('\n').slice(-5).join(' | ');
    const why = res.timedOut ? `timed out after ${timeoutMs / 1000}s` : `exited with ${res.exitCode ?? res.signal}`;
    throw new GuardError('GUARD_E_DEPLOY', `the ${what} command ${why}${output ? `: ${output}` : ''}`, {
      hint: `check the command given to --${what === 'reload' ? 'reload-cmd' : 'on-failure'}`,
    });
  }
}
