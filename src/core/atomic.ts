import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { GuardError } from './errors.js';

/**
 * Writes a file so that readers see either the old content or the new, never a half-written file: temp file in
 * the same directory, fsync, rename, fsync of the directory. The temp file is removed if any step fails.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', mode);
    fs.writeFileSync(fd, data);
    fs.fchmodSync(fd, mode);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
    fsyncDir(dir);
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw new GuardError('GUARD_E_HOME', `cannot write ${file}: ${(err as Error).message}`, {
      hint: `check that ${dir} exists and is writable by this user`,
      cause: err,
    });
  }
}

/** Makes a rename or a new entry in `dir` durable (the directory's own metadata reaches the disk). */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Creates a private directory (0700), or tightens nothing and fails clearly if it cannot be made. */
export function ensurePrivateDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new GuardError('GUARD_E_HOME', `cannot create directory ${dir}: ${(err as Error).message}`, {
      hint: 'choose a writable location with --home DIR or GUARDCTL_HOME',
      cause: err,
    });
  }
}
