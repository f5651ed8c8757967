/**
 * The on-disk certificate store: `<home>/certs/<lineage>/{cert,chain,fullchain,privkey}.pem + meta.json`, the
 * version before the last renewal in `<lineage>/previous/`. Directories are 0700, keys and meta 0600.
 *
 * Crash safety: a new lineage is written in a hidden folder and renamed into place; a renewal writes the new
 * files to `<lineage>/.next/`, snapshots the current files into `previous/` (hard links), then marks `.next`
 * complete and renames its files over the old ones. A run that dies before the mark leaves the old version
 * (its leftovers are swept on the next run); one that dies after it is rolled forward on the next run.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir, writeFileAtomic, fsyncDir } from '../core/atomic.js';
import { withLock } from '../core/lock.js';
import type { Bundle } from './certinfo.js';
import { lineageBusy, lineageNotFound, storeError } from './errors.js';
import type { LineageMeta } from './types.js';
import { isPlaceholder } from './placeholder-flag.js';

export const CERT_FILES = { privkey: 0o600, cert: 0o644, chain: 0o644, fullchain: 0o644 } as const;
export type CertFile = keyof typeof CERT_FILES;
const FILE_ORDER: CertFile[] = ['privkey', 'cert', 'chain', 'fullchain'];
const ALL_FILES = [...FILE_ORDER.map((f) => `${f}.pem`), 'meta.json'];
const COMPLETE = '.complete';

export class CertStore {
  readonly dir: string;

  constructor(readonly home: string) {
    this.dir = path.join(home, 'certs');
  }

  lineageDir(name: string): string {
    return path.join(this.dir, name);
  }

  exists(name: string): boolean {
    return fs.existsSync(path.join(this.lineageDir(name), 'meta.json'));
  }

  /** Lineage names (folders holding a meta.json), sorted. */
  list(): string[] {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(this.dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw storeError(`cannot read ${this.dir}: ${(err as Error).message}`, err);
    }
    return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.') && this.exists(e.name)).map((e) => e.name).sort();
  }

  readMeta(name: string): LineageMeta {
    const file = path.join(this.lineageDir(name), 'meta.json');
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw lineageNotFound(name, this.home);
      throw storeError(`cannot read ${file}: ${(err as Error).message}`, err);
    }
    try {
      return JSON.parse(text) as LineageMeta;
    } catch (err) {
      throw storeError(`${file} is not valid JSON`, err, 'restore it from previous/meta.json, or issue the certificate again');
    }
  }

  writeMeta(name: string, meta: LineageMeta): void {
    writeFileAtomic(path.join(this.lineageDir(name), 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`, 0o600);
  }

  readBundle(name: string, which: 'current' | 'previous' = 'current'): Bundle {
    const dir = which === 'current' ? this.lineageDir(name) : path.join(this.lineageDir(name), 'previous');
    const read = (f: CertFile) => fs.readFileSync(path.join(dir, `${f}.pem`), 'utf8');
    return { cert: read('cert'), chain: read('chain'), fullchain: read('fullchain'), privkey: read('privkey') };
  }

  /** Fails early, before any order is placed, when the store cannot be written. */
  checkWritable(): void {
    ensurePrivateDir(this.dir);
    const probe = path.join(this.dir, `.probe-${randomBytes(4).toString('hex')}`);
    try {
      fs.writeFileSync(probe, '', { mode: 0o600 });
      fs.rmSync(probe);
    } catch (err) {
      throw storeError(`the certificate store ${this.dir} is not writable: ${(err as Error).message}`, err, 'choose a writable data directory with --home DIR or GUARDCTL_HOME');
    }
  }

  /** Runs fn holding the lineage's lock, after finishing or sweeping what a killed run left behind. */
  async locked<T>(name: string, fn: () => Promise<T>): Promise<T> {
    ensurePrivateDir(this.dir);
    return withLock(path.join(this.dir, `.${name}.lock`), { busy: (pid) => lineageBusy(name, pid), failed: storeError }, async () => {
      this.recover(name);
      return fn();
    });
  }

  /** Rolls a committed install forward, or removes the leftovers of one that never committed. */
  recover(name: string): void {
    const dir = this.lineageDir(name);
    for (const entry of fs.readdirSync(this.dir)) {
      if (entry.startsWith(`.new-${name}.`)) fs.rmSync(path.join(this.dir, entry), { recursive: true, force: true });
    }
    const next = path.join(dir, '.next');
    if (fs.existsSync(path.join(next, COMPLETE))) this.promote(dir);
    fs.rmSync(next, { recursive: true, force: true });
    fs.rmSync(path.join(dir, '.previous.tmp'), { recursive: true, force: true });
  }

  /** Installs a validated bundle and its meta as one step (see the crash-safety note above). */
  install(name: string, bundle: Bundle, meta: LineageMeta): void {
    const dir = this.lineageDir(name);
    try {
      if (!fs.existsSync(dir)) return this.installNew(name, bundle, meta);
      const next = path.join(dir, '.next');
      fs.rmSync(next, { recursive: true, force: true });
      this.writeSet(next, bundle, meta);
      // A placeholder is no version to roll back to: the first real certificate keeps no previous/.
      if (!(this.exists(name) && isPlaceholder(this.readMeta(name)))) this.snapshotPrevious(dir);
      writeFileAtomic(path.join(next, COMPLETE), '', 0o600);
      this.promote(dir);
      fs.rmSync(next, { recursive: true, force: true });
    } catch (err) {
      fs.rmSync(path.join(dir, '.next', COMPLETE), { force: true });
      throw storeError(`cannot install the new certificate in ${dir}: ${(err as Error).message}`, err);
    }
  }

  private installNew(name: string, bundle: Bundle, meta: LineageMeta): void {
    ensurePrivateDir(this.dir);
    const staging = path.join(this.dir, `.new-${name}.${randomBytes(4).toString('hex')}`);
    try {
      this.writeSet(staging, bundle, meta);
      fs.renameSync(staging, this.lineageDir(name));
      fsyncDir(this.dir);
    } catch (err) {
      fs.rmSync(staging, { recursive: true, force: true });
      throw err;
    }
  }

  private writeSet(dir: string, bundle: Bundle, meta: LineageMeta): void {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
    for (const f of FILE_ORDER) writeFileAtomic(path.join(dir, `${f}.pem`), bundle[f], CERT_FILES[f]);
    writeFileAtomic(path.join(dir, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`, 0o600);
  }

  /** previous/ becomes a copy (hard links) of the current files. */
  private snapshotPrevious(dir: string): void {
    const tmp = path.join(dir, '.previous.tmp');
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { mode: 0o700 });
    for (const f of ALL_FILES) {
      const src = path.join(dir, f);
      if (fs.existsSync(src)) fs.linkSync(src, path.join(tmp, f));
    }
    fsyncDir(tmp);
    fs.rmSync(path.join(dir, 'previous'), { recursive: true, force: true });
    fs.renameSync(tmp, path.join(dir, 'previous'));
  }

  /** Moves the committed files of .next over the current ones; meta.json last. */
  private promote(dir: string): void {
    const next = path.join(dir, '.next');
    for (const f of ALL_FILES) {
      const src = path.join(next, f);
      if (fs.existsSync(src)) fs.renameSync(src, path.join(dir, f));
    }
    fsyncDir(dir);
  }

  /** Swaps previous/ and the current version (the current one becomes previous/), as one install. */
  rollback(name: string): void {
    const prev = path.join(this.lineageDir(name), 'previous');
    if (!fs.existsSync(path.join(prev, 'meta.json'))) throw storeError(`certificate "${name}" has no previous version to roll back to`, undefined, 'a previous version exists once the certificate has been renewed');
    const meta = JSON.parse(fs.readFileSync(path.join(prev, 'meta.json'), 'utf8')) as LineageMeta;
    this.install(name, this.readBundle(name, 'previous'), meta);
  }

}
