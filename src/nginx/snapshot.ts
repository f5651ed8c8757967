/**
 * Byte-for-byte snapshots of the paths an install touches (files with their modes, symlinks with their
 * targets, folders with their contents, and absence), so that a failed install puts back exactly what was there.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export type Entry =
  | { kind: 'missing' }
  | { kind: 'file'; data: Buffer; mode: number }
  | { kind: 'symlink'; target: string }
  | { kind: 'dir'; mode: number; children: Record<string, Entry> };

export interface Snapshot {
  paths: Record<string, Entry>;
}

function capture(p: string): Entry {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw err;
  }
  if (st.isSymbolicLink()) return { kind: 'symlink', target: fs.readlinkSync(p) };
  if (st.isDirectory()) {
    const children: Record<string, Entry> = {};
    for (const name of fs.readdirSync(p).sort()) children[name] = capture(path.join(p, name));
    return { kind: 'dir', mode: st.mode & 0o7777, children };
  }
  return { kind: 'file', data: fs.readFileSync(p), mode: st.mode & 0o7777 };
}

/**
 * The highest folder between `root` and `p` that does not exist yet, else `p`: snapshotting that one makes a
 * restore remove the folders an install created, too.
 */
export function outermostNew(p: string, root: string): string {
  let outermost = p;
  for (let dir = path.dirname(p); dir.startsWith(`${root}${path.sep}`) && !fs.existsSync(dir); dir = path.dirname(dir)) outermost = dir;
  return outermost;
}

export function takeSnapshot(paths: string[], root: string): Snapshot {
  const snap: Snapshot = { paths: {} };
  for (const p of paths) {
    const top = outermostNew(path.resolve(p), path.resolve(root));
    snap.paths[top] = capture(top);
  }
  return snap;
}

function put(p: string, entry: Entry): void {
  switch (entry.kind) {
    case 'missing':
      return;
    case 'symlink':
      fs.symlinkSync(entry.target, p);
      return;
    case 'file':
      fs.writeFileSync(p, entry.data, { mode: entry.mode });
      fs.chmodSync(p, entry.mode);
      return;
    case 'dir':
      fs.mkdirSync(p, { mode: entry.mode });
      for (const [name, child] of Object.entries(entry.children)) put(path.join(p, name), child);
      fs.chmodSync(p, entry.mode);
  }
}

/** Puts every snapshotted path back as it was (removing what is there now). */
export function restoreSnapshot(snap: Snapshot): void {
  // Outermost first: a path inside another snapshotted folder is put back after that folder.
  for (const p of Object.keys(snap.paths).sort((a, b) => a.length - b.length)) {
    fs.rmSync(p, { recursive: true, force: true });
    put(p, snap.paths[p]!);
  }
}

/** A digest of the snapshot's content, to compare before and after. */
export function snapshotDigest(snap: Snapshot): string {
  const h = createHash('sha256');
  const walk = (p: string, e: Entry) => {
    h.update(`${p}\0${e.kind}\0`);
    if (e.kind === 'file') h.update(`${e.mode}\0`).update(e.data);
    if (e.kind === 'symlink') h.update(e.target);
    if (e.kind === 'dir') for (const [name, child] of Object.entries(e.children)) walk(path.join(p, name), child);
  };
  for (const p of Object.keys(snap.paths).sort()) walk(p, snap.paths[p]!);
  return h.digest('hex');
}

/** Takes the same paths again and says whether they match the snapshot byte for byte. */
export function matchesSnapshot(snap: Snapshot): boolean {
  const now: Snapshot = { paths: {} };
  for (const p of Object.keys(snap.paths)) now.paths[p] = capture(p);
  return snapshotDigest(now) === snapshotDigest(snap);
}
