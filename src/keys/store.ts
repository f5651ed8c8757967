import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ensurePrivateDir } from '../core/atomic.js';
import { GuardError } from '../core/errors.js';
import { loadMasterKey } from './master-key.js';
import { createStore, type KeyRow, prepareSchema, tighten, toRecord } from './schema.js';
import { open as unseal, seal } from './seal.js';
import { DEFAULT_TIERS } from './tiers.js';
import { describeTokenProblem, isWellFormedToken, KEY_ID_PREFIX, newKeyId, newSecret } from './token.js';
import type { KeyCredentials, KeyRecord, Limits, Tier } from './types.js';
import { validateAllowIps, validateExpiry, validateKeyName, validateOverrides, validateTier } from './validate.js';

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
export function keyStatus(record: KeyRecord, now: number): 'active' | 'revoked' | 'expired' {
  if (record.status === 'revoked') return 'revoked';
  return record.expiresAt !== null && record.expiresAt <= now ? 'expired' : 'active';
}

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
    const name = validateKeyName(input.name);
    validateTier(input.tier, this.tiers);
    const allowIps = validateAllowIps(input.allowIps ?? []);
    const overrides = validateOverrides(input.overrides ?? {});
    const expiresAt = validateExpiry(input.expiresAt, now);
    const id = newKeyId();
    const secret = newSecret();
    this.write(() => {
      this.db.prepare(`INSERT INTO keys (id, name, tier, created_at, expires_at, allow_ips, overrides, secret)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(id, name, input.tier, now, expiresAt, JSON.stringify(allowIps), JSON.stringify(overrides), seal(this.masterKey, secret, id));
      this.audit(now, id, 'create', { name, tier: input.tier, expiresAt, allowIps, overrides });
    });
    return { record: this.get(id), secret };
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
      if (row.revoked_at !== null) throw stateError(id, `was already revoked at ${new Date(row.revoked_at).toISOString()}`);
      this.db.prepare('UPDATE keys SET revoked_at = ?, previous_secret = NULL, previous_valid_until = NULL WHERE id = ?').run(now, id);
      this.audit(now, id, 'revoke', { tier: row.tier });
    });
    return this.get(id);
  }

  rotate(id: string, graceMs: number): { record: KeyRecord; secret: string } {
    if (!Number.isFinite(graceMs) || graceMs < 0) throw new GuardError('GUARD_E_USAGE', `invalid grace period ${graceMs}`, { hint: 'use 0 or a positive duration such as 24h', exitCode: 2 });
    const now = this.now();
    const secret = newSecret();
    this.write(() => {
      const row = this.row(id);
      if (row.revoked_at !== null) throw stateError(id, 'is revoked and cannot be rotated', 'create a new key with guardctl keys create');
      if (row.expires_at !== null && row.expires_at <= now) throw stateError(id, 'has expired and cannot be rotated', 'create a new key with guardctl keys create');
      // The old secret moves into the grace slot still sealed; any secret already there (an earlier rotation's) ends now.
      const until = graceMs > 0 ? now + graceMs : null;
      this.db.prepare('UPDATE keys SET secret = ?, previous_secret = ?, previous_valid_until = ? WHERE id = ?')
        .run(seal(this.masterKey, secret, id), until === null ? null : row.secret, until, id);
      this.audit(now, id, 'rotate', { graceMs, previousValidUntil: until });
    });
    return { record: this.get(id), secret };
  }

  /** The record and the secrets that verify now (none for a revoked or expired key); undefined for an unknown id. */
  credentials(id: string): KeyCredentials | undefined {
    if (!isWellFormedToken(id, KEY_ID_PREFIX)) return undefined;
    const row = this.db.prepare('SELECT * FROM keys WHERE id = ?').get(id) as KeyRow | undefined;
    if (!row) return undefined;
    const record = toRecord(row);
    const now = this.now();
    if (keyStatus(record, now) !== 'active') return { record, secrets: [] };
    const secrets = [{ value: Buffer.from(unseal(this.masterKey, row.secret, id), 'utf8'), notAfter: null as number | null }];
    if (row.previous_secret !== null && row.previous_valid_until !== null && row.previous_valid_until > now) {
      secrets.push({ value: Buffer.from(unseal(this.masterKey, row.previous_secret, id), 'utf8'), notAfter: row.previous_valid_until });
    }
    return { record, secrets };
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

  close(): void {
    if (this.db.open) this.db.close();
  }

  private row(id: string): KeyRow {
    checkKeyId(id);
    const row = this.db.prepare('SELECT * FROM keys WHERE id = ?').get(id) as KeyRow | undefined;
    if (!row) throw new GuardError('GUARD_E_KEY_NOT_FOUND', `no key has the id ${id}`, { hint: 'see the ids with guardctl keys list' });
    return row;
  }

  private write(fn: () => void): void {
    this.db.transaction(fn).immediate();
    this.writes++;
  }

  private audit(at: number, id: string, action: string, detail: Record<string, unknown>): void {
    this.db.prepare('INSERT INTO key_events (at, key_id, action, detail) VALUES (?, ?, ?, ?)').run(at, id, action, JSON.stringify(detail));
  }
}

/** Rejects a mistyped or truncated id offline, by its checksum; the message never repeats the value. */
export function checkKeyId(id: string): void {
  const problem = describeTokenProblem(id, KEY_ID_PREFIX);
  if (problem) throw new GuardError('GUARD_E_TOKEN', `that key id is not valid: ${problem}`, { hint: 'copy the id again from guardctl keys list' });
}

function stateError(id: string, what: string, hint = 'see its state with guardctl keys show ' + id): GuardError {
  return new GuardError('GUARD_E_KEY_STATE', `key ${id} ${what}`, { hint });
}
