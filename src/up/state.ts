/**
 * What an `up` run installed, in `<home>/up/state.json` (0600, written atomically): `status`, `down` and the
 * next `up` read it instead of guessing. It names files, processes and key ids, never a secret.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir, writeFileAtomic } from '../core/atomic.js';
import { GuardError } from '../core/errors.js';
import type { SiteOptions } from '../nginx/render.js';

export interface DaemonState {
  supervisor: 'process' | 'systemd';
  host: string;
  port: number;
  basePath: string;
  serveArgs: string[];
  /** process: the pid file and log; systemd: the unit files. */
  pidFile?: string;
  logFile?: string;
  units?: string[];
}

export interface UpState {
  version: 1;
  domain: string;
  lineage: string;
  challenge: 'dns-01' | 'http-01';
  site: { root: string; name: string; options: SiteOptions; files: string[]; reloadCmd?: string; nginxBin: string };
  daemon: DaemonState;
  /** The renewal timer units (systemd), or none: the lineage's reload hook only. */
  renewal: { units: string[]; reloadCmd: string };
  keys: Array<{ id: string; name: string; tier: string }>;
  url: string;
  updatedAt: string;
}

export function stateFile(home: string): string {
  return path.join(home, 'up', 'state.json');
}

export function readState(home: string): UpState | undefined {
  const file = stateFile(home);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new GuardError('GUARD_E_HOME', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text) as UpState;
  } catch (err) {
    throw new GuardError('GUARD_E_HOME', `${file} is not valid JSON`, { hint: 'remove what it described by hand (nginx site, daemon), delete the file, and run guardctl up again', cause: err });
  }
}

export function writeState(home: string, state: UpState): void {
  ensurePrivateDir(path.dirname(stateFile(home)));
  writeFileAtomic(stateFile(home), `${JSON.stringify(state, null, 2)}\n`, 0o600);
}

export function removeState(home: string): void {
  fs.rmSync(stateFile(home), { force: true });
  try {
    fs.rmdirSync(path.dirname(stateFile(home)));
  } catch {
    // not empty or gone: leave it
  }
}
