import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import { fsyncDir } from '../core/atomic.js';
import { GuardError } from '../core/errors.js';
import { open, seal } from './seal.js';
import type { KeyRecord, Limits } from './types.js';

/** The on-disk shape of the key store: migrations, the master-key check, rows, and file modes. */

/** Bump with a new entry in MIGRATIONS; `PRAGMA user_version` records how far a file has come. */
export const SCHEMA_VERSION = 2;

const MIGRATIONS: Record<number, string> = {
  1: `
    CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
    CREATE TABLE keys (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      tier TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      expires_at INTEGER,
      revoked_at INTEGER,
      last_used_at INTEGER,
      allow_ips TEXT NOT NULL DEFAULT '[]',
      overrides TEXT NOT NULL DEFAULT '{}',
      secret TEXT NOT NULL,
      previous_secret TEXT,
      previous_valid_until INTEGER
    ) STRICT;
    CREATE TABLE key_events (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      at INTEGER NOT NULL,
      key_id TEXT NOT NULL,
      action TEXT NOT NULL,
      detail TEXT
    ) STRICT;
    CREATE INDEX key_events_by_key ON key_events (key_id, seq);
  `,
  // Opt-in bearer credentials (docs/signing.md): 1 when `keys create --allow-bearer` made the key.
  2: `ALTER TABLE keys ADD COLUMN allow_bearer INTEGER NOT NULL DEFAULT 0;`,
};

const CHECK_AAD = 'guardctl:keystore-check';
const CHECK_TEXT = 'guardctl key store';

/**
 * Brings an existing store up to SCHEMA_VERSION and verifies the master key against the sealed check value
 * written when the store was made. A file with no schema at all (0 bytes, or an empty SQLite file) is refused
 * like a damaged one: a new store only ever comes from createStore(), so an empty file here means the real one
 * was truncated or replaced, and quietly starting afresh would make every key stop working.
 */
export function prepareSchema(db: Database, masterKey: Buffer, file: string, readonly: boolean): void {
  const version = () => db.pragma('user_version', { simple: true }) as number;
  if (version() > SCHEMA_VERSION) {
    throw new GuardError('GUARD_E_KEYSTORE', `the key store ${file} was written by a newer guardctl (schema ${version()}, this one knows ${SCHEMA_VERSION})`, {
      hint: 'upgrade guardctl',
    });
  }
  if (version() === 0) {
    const size = fs.statSync(file).size;
    throw new GuardError('GUARD_E_KEYSTORE', `the key store ${file} holds no key store schema (${size === 0 ? 'the file is empty' : 'no guardctl tables'}): it is damaged or was replaced`, {
      hint: `restore ${file} from a backup; to start over with no keys instead, move it aside (every existing key stops working) and run guardctl keys create`,
    });
  }
  if (version() < SCHEMA_VERSION) {
    if (readonly) {
      throw new GuardError('GUARD_E_KEYSTORE', `the key store ${file} has schema ${version()}, older than this guardctl's ${SCHEMA_VERSION}`, { hint: 'run any guardctl keys command once to upgrade it' });
    }
    migrate(db, masterKey, version());
  }
  const row = db.prepare('SELECT value FROM meta WHERE name = ?').get('check') as { value: string } | undefined;
  if (!row) throw new GuardError('GUARD_E_KEYSTORE', `the key store ${file} has no check value`, { hint: `restore ${file} from a backup` });
  verifyCheck(masterKey, row.value, `the key store ${file}`, `restore ${file} from a backup`);
}

/** A new store's check value: the master key's fingerprint without the key (it opens only under that key). */
export function newCheckValue(masterKey: Buffer): string {
  return seal(masterKey, CHECK_TEXT, CHECK_AAD);
}

/** Fails unless `masterKey` opens `value`, a check value written by newCheckValue(); `what` names its holder. */
export function verifyCheck(masterKey: Buffer, value: string, what: string, restoreHint: string): void {
  let text: string;
  try {
    text = open(masterKey, value, CHECK_AAD);
  } catch (err) {
    if (err instanceof GuardError && err.code === 'GUARD_E_MASTER_KEY') {
      throw new GuardError('GUARD_E_MASTER_KEY', `the master key does not open ${what}`, {
        hint: 'use the master key it was created with: GUARDCTL_MASTER_KEY, GUARDCTL_MASTER_KEY_FILE, or master.key in the data directory',
        cause: err,
      });
    }
    throw err;
  }
  if (text !== CHECK_TEXT) throw new GuardError('GUARD_E_KEYSTORE', `${what} has an unexpected check value`, { hint: restoreHint });
}

/** A row of the keys table, as better-sqlite3 returns it. */
export interface KeyRow {
  id: string; name: string; tier: string; created_at: number; expires_at: number | null; revoked_at: number | null;
  last_used_at: number | null; allow_ips: string; overrides: string; secret: string; previous_secret: string | null;
  previous_valid_until: number | null;
  /** 0 or 1 (an INTEGER in both backends, so rows move between them unchanged); absent in exports before it. */
  allow_bearer?: number;
}

export function toRecord(row: KeyRow): KeyRecord {
  return {
    id: row.id,
    name: row.name,
    tier: row.tier,
    status: row.revoked_at === null ? 'active' : 'revoked',
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
    allowIps: JSON.parse(row.allow_ips) as string[],
    overrides: JSON.parse(row.overrides) as Partial<Limits>,
    previousValidUntil: row.previous_valid_until,
    allowBearer: Boolean(row.allow_bearer),
  };
}

/** Runs the migrations after `from`, in one IMMEDIATE transaction. */
function migrate(db: Database, masterKey: Buffer, from: number): void {
  db.transaction(() => {
    for (let v = from + 1; v <= SCHEMA_VERSION; v++) {
      db.exec(MIGRATIONS[v]!);
      if (v === 1) db.prepare('INSERT INTO meta (name, value) VALUES (?, ?)').run('check', newCheckValue(masterKey));
      db.pragma(`user_version = ${v}`);
    }
  }).immediate();
}

/**
 * Makes a new store at `file`, complete (WAL, schema, check value) before it appears there: built under a
 * private 0600 name, then hard-linked into place. link() fails if the file exists, so a store is never made over
 * an existing file, and another first run that wins the race is simply used. That is also why an existing file
 * without a schema can be refused as damaged: no guardctl leaves one behind, even when killed half-way.
 */
export function createStore(file: string, masterKey: Buffer): void {
  const dir = path.dirname(file);
  const staged = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.new`);
  try {
    fs.closeSync(fs.openSync(staged, 'wx', 0o600));
    const db = new BetterSqlite3(staged, { fileMustExist: true });
    try {
      db.pragma('journal_mode = WAL');
      migrate(db, masterKey, 0);
    } finally {
      // The last connection's close checkpoints the WAL into the file and removes -wal/-shm.
      db.close();
    }
    try {
      fs.linkSync(staged, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    fsyncDir(dir);
  } catch (err) {
    throw new GuardError('GUARD_E_HOME', `cannot create the key store ${file}: ${(err as Error).message}`, { hint: `check that ${dir} is writable by this user`, cause: err });
  } finally {
    for (const f of [staged, `${staged}-wal`, `${staged}-shm`]) fs.rmSync(f, { force: true });
  }
}

/** SQLite gives -wal/-shm the database's mode, but a file restored or copied by hand may be looser. */
export function tighten(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      if ((fs.statSync(f).mode & 0o077) !== 0) fs.chmodSync(f, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
