import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ensurePrivateDir } from '../core/atomic.js';
import { GuardError } from '../core/errors.js';
import { loadMasterKey } from './master-key.js';
import { checkGrace, checkRevocable, credentialsOf, notFound, planCreate, planRotate } from './rows.js';
import { createStore, type KeyRow, prepareSchema, tighten, toRecord } from './schema.js';
import { keyStatusAt } from './status.js';
import { DEFAULT_TIERS } from './tiers.js';
import { selectImport, verifyExportKey, type ImportResult, type StoreDump } from './transfer.js';
import { checkKeyId, isWellFormedToken, KEY_ID_PREFIX } from './token.js';
import type { KeyCredentials, KeyRecord, Limits, Tier } from './types.js';

export const KEYSTORE_FILE = 'keys.db';

export interface KeyStoreOptions {
  home: string;
  env: NodeJS.ProcessEnv;
  now?: () => number;
  readonly?: boolean;
  /** The effective tier table new keys are checked against (default: the built-in tiers). */
  tiers?: Record<string, Tier>;
}

export interface CreateKeyInput {
  name: string;
  tier: string;
  overrides?: Partial<Limits>;
  allowIps?: string[];
  expiresAt?: number | null;
  /** The key may also authenticate with a bearer credential (docs/signing.md). */
  allowBearer?: boolean;
}

export interface KeyEvent {
  at: number;
  action: string;
  detail?: Record<string, unknown>;
}

export interface KeyStoreHealth {
  ok: boolean;
  keys: number;
  active: number;
  path: string;
  problem?: string;
}

/** Active, revoked, or expired (derived from expiresAt, never stored). */
export const keyStatus = keyStatusAt;

/** API keys in SQLite (`<home>/keys.db`, WAL, 0600). Secrets are stored only sealed under the master key. */
export class KeyStore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly masterKey: Buffer;
  private readonly now: () => number;
  private readonly tiers: Record<string, Tier>;
  private readonly versionStmt: Database.Statement;
  /** Writes through this connection (which `data_version` does not count), for caches that watch both. */
  private writes = 0;

  private constructor(db: Database.Database, masterKey: Buffer, file: string, opts: KeyStoreOptions) {
    this.db = db;
    this.masterKey = masterKey;
    this.path = file;
    this.now = opts.now ?? Date.now;
    this.tiers = opts.tiers ?? DEFAULT_TIERS;
    this.versionStmt = db.prepare('PRAGMA data_version').pluck();
  }

  static open(opts: KeyStoreOptions): KeyStore {
    const file = path.join(opts.home, KEYSTORE_FILE);
    const exists = fs.existsSync(file);
    if (opts.readonly && !exists) {
      throw new GuardError('GUARD_E_KEYSTORE', `there is no key store at ${file}`, { hint: 'create a key first with guardctl keys create, or check --home / GUARDCTL_HOME' });
    }
    if (!exists) ensurePrivateDir(opts.home);
    // A fresh master key could never open secrets that are already sealed, so only a new store may make one.
    const masterKey = loadMasterKey({ home: opts.home, env: opts.env, create: !exists && !opts.readonly });
    if (!exists) createStore(file, masterKey);
    let db: Database.Database | undefined;
    try {
      db = new Database(file, { readonly: Boolean(opts.readonly), fileMustExist: true, timeout: 5000 });
      // Before anything that writes: an empty file must stay exactly as it was found.
      prepareSchema(db, masterKey, file, Boolean(opts.readonly));
      if (!opts.readonly) db.pragma('journal_mode = WAL');
      if (!opts.readonly) tighten(file);
      return new KeyStore(db, masterKey, file, opts);
    } catch (err) {
      db?.close();
      if (err instanceof GuardError) throw err;
      throw new GuardError('GUARD_E_KEYSTORE', `cannot open the key store ${file}: ${(err as Error).message}`, {
        hint: `check its permissions; if it is damaged, restore it from a backup (moving it aside starts an empty store and every existing key stops working)`,
        cause: err,
      });
    }
  }

  create(input: CreateKeyInput): { record: KeyRecord; secret: string } {
    const now = this.now();
    const { row, secret, detail } = planCreate(input, now, this.tiers, this.masterKey);
    this.write(() => {
      this.insertRow(row);
      this.audit(now, row.id, 'create', detail);
    });
    return { record: this.get(row.id), secret };
  }

  list(): KeyRecord[] {
    return (this.db.prepare('SELECT * FROM keys ORDER BY created_at, id').all() as KeyRow[]).map(toRecord);
  }

  get(id: string): KeyRecord {
    return toRecord(this.row(id));
  }

  revoke(id: string): KeyRecord {
    const now = this.now();
    this.write(() => {
      const row = this.row(id);
      checkRevocable(row);
      this.db.prepare('UPDATE keys SET revoked_at = ?, previous_secret = NULL, previous_valid_until = NULL WHERE id = ?').run(now, id);
      this.audit(now, id, 'revoke', { tier: row.tier });
    });
    return this.get(id);
  }

  rotate(id: string, graceMs: number): { record: KeyRecord; secret: string } {
    checkGrace(graceMs);
    const now = this.now();
    let secret = '';
    this.write(() => {
      const plan = planRotate(this.row(id), graceMs, now, this.masterKey);
      this.db.prepare('UPDATE keys SET secret = ?, previous_secret = ?, previous_valid_until = ? WHERE id = ?').run(plan.sealed, plan.previous, plan.until, id);
      this.audit(now, id, 'rotate', plan.detail);
      secret = plan.secret;
    });
    return { record: this.get(id), secret };
  }

  /** The record and the secrets that verify now (none for a revoked or expired key); undefined for an unknown id. */
  credentials(id: string): KeyCredentials | undefined {
    if (!isWellFormedToken(id, KEY_ID_PREFIX)) return undefined;
    const row = this.db.prepare('SELECT * FROM keys WHERE id = ?').get(id) as KeyRow | undefined;
    if (!row) return undefined;
    return credentialsOf(row, toRecord(row), this.now(), this.masterKey);
  }

  touch(id: string, at: number): void {
    this.touchMany([[id, at]]);
  }

  /** Last-used times in one transaction; never moves a time backwards. */
  touchMany(entries: Iterable<readonly [string, number]>): void {
    const stmt = this.db.prepare('UPDATE keys SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?');
    this.db.transaction(() => {
      for (const [id, at] of entries) stmt.run(at, id);
    }).immediate();
  }

  events(id: string): KeyEvent[] {
    this.row(id);
    const rows = this.db.prepare('SELECT at, action, detail FROM key_events WHERE key_id = ? ORDER BY seq').all(id) as Array<{ at: number; action: string; detail: string | null }>;
    return rows.map((r) => (r.detail === null ? { at: r.at, action: r.action } : { at: r.at, action: r.action, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }

  /** Changes when another connection commits (`PRAGMA data_version`). */
  dataVersion(): number {
    return this.versionStmt.get() as number;
  }

  /** Counts create/rotate/revoke through this instance, which dataVersion() does not see. */
  localWrites(): number {
    return this.writes;
  }

  health(): KeyStoreHealth {
    const base = { ok: false, keys: 0, active: 0, path: this.path };
    try {
      const check = this.db.prepare('PRAGMA quick_check').pluck().all() as string[];
      const now = this.now();
      const counts = this.db.prepare(`SELECT count(*) AS keys,
        coalesce(sum(revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)), 0) AS active FROM keys`).get(now) as { keys: number; active: number };
      const ok = check.length === 1 && check[0] === 'ok';
      return { ...base, ...counts, ok, ...(ok ? {} : { problem: check.slice(0, 3).join('; ') }) };
    } catch (err) {
      return { ...base, problem: (err as Error).message };
    }
  }

  /** Every row as stored (secrets sealed) and the whole history, for `guardctl keys export`. */
  dump(): StoreDump {
    return this.db.transaction(() => ({
      check: (this.db.prepare('SELECT value FROM meta WHERE name = ?').pluck().get('check') as string),
      keys: this.db.prepare('SELECT * FROM keys ORDER BY created_at, id').all() as KeyRow[],
      events: this.db.prepare('SELECT at, key_id, action, detail FROM key_events ORDER BY seq').all() as StoreDump['events'],
    }))();
  }

  /** Writes an export's rows unchanged, in one transaction (see selectImport for what a non-empty store takes). */
  restore(dump: StoreDump, merge: boolean): ImportResult {
    verifyExportKey(this.masterKey, dump);
    let result: ImportResult = { keys: 0, events: 0, skipped: [] };
    this.write(() => {
      const existing = new Set(this.db.prepare('SELECT id FROM keys').pluck().all() as string[]);
      const chosen = selectImport(dump, existing, merge, `the key store ${this.path}`);
      for (const row of chosen.keys) this.insertRow(row);
      const ev = this.db.prepare('INSERT INTO key_events (at, key_id, action, detail) VALUES (?, ?, ?, ?)');
      for (const e of chosen.events) ev.run(e.at, e.key_id, e.action, e.detail);
      result = { keys: chosen.keys.length, events: chosen.events.length, skipped: chosen.skipped };
    });
    return result;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private row(id: string): KeyRow {
    checkKeyId(id);
    const row = this.db.prepare('SELECT * FROM keys WHERE id = ?').get(id) as KeyRow | undefined;
    if (!row) throw notFound(id);
    return row;
  }

  private insertRow(r: KeyRow): void {
    this.db.prepare(`INSERT INTO keys (id, name, tier, created_at, expires_at, revoked_at, last_used_at, allow_ips, overrides, secret, previous_secret, previous_valid_until, allow_bearer)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(r.id, r.name, r.tier, r.created_at, r.expires_at, r.revoked_at, r.last_used_at, r.allow_ips, r.overrides, r.secret, r.previous_secret, r.previous_valid_until, r.allow_bearer ?? 0);
  }

  private write(fn: () => void): void {
    this.db.transaction(fn).immediate();
    this.writes++;
  }

  private audit(at: number, id: string, action: string, detail: Record<string, unknown>): void {
    this.db.prepare('INSERT INTO key_events (at, key_id, action, detail) VALUES (?, ?, ?, ?)').run(at, id, action, JSON.stringify(detail));
  }
}
