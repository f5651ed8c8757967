/** File helpers for nginx configuration: world-readable (nginx files hold no secrets), written atomically. */
import fs from 'node:fs';
import { writeFileAtomic } from '../core/atomic.js';
import { GuardError } from '../core/errors.js';

export function writeConfigFile(file: string, content: string): void {
  writeFileAtomic(file, content, 0o644);
}

export function ensureDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new GuardError('GUARD_E_DEPLOY', `cannot create directory ${dir}: ${(err as Error).message}`, { hint: 'check the path and that this user may write there', cause: err });
  }
}
