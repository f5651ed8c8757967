/**
 * A lock file (O_EXCL, holding the owner's pid), so that two guardctl processes never interleave changes to
 * one thing (a certificate lineage, an nginx root). A lock whose process no longer runs (kill -9, power loss)
 * is taken over.
 */
import fs from 'node:fs';

/** The errors a lock reports, in the words of what it protects. */
export interface LockErrors {
  busy(pid: number): Error;
  failed(message: string, cause: unknown): Error;
}

/** Whether a process runs (one of another user's answers EPERM: it runs too). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid a lock or pid file holds, or null (missing, empty, garbage). */
export function readPidFile(file: string): number | null {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Takes the lock or throws; returns the release function. */
export function acquireLock(file: string, errors: LockErrors): () => void {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o600);
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      return () => {
        if (readPidFile(file) === process.pid) fs.rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw errors.failed(`cannot create the lock ${file}: ${(err as Error).message}`, err);
      const pid = readPidFile(file);
      if (pid !== null && pid !== process.pid && isAlive(pid)) throw errors.busy(pid);
      if (pid === process.pid) throw errors.busy(pid);
      // Stale (its process is gone) or still being written: a half-written lock older than a second is stale.
      const stat = fs.statSync(file, { throwIfNoEntry: false });
      if (pid === null && stat && Date.now() - stat.mtimeMs < 1000) continue;
      fs.rmSync(file, { force: true });
    }
  }
  throw errors.busy(readPidFile(file) ?? 0);
}

export async function withLock<T>(file: string, errors: LockErrors, fn: () => Promise<T>): Promise<T> {
  const release = acquireLock(file, errors);
  try {
    return await fn();
  } finally {
    release();
  }
}
