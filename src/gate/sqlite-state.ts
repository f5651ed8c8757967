import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ensurePrivateDir } from '../core/atomic.js';
import { GuardError } from '../core/errors.js';
import { countFailure, failureRowExpires, type FailureRow } from './auth-failures.js';
import { msUntilUtcMidnight, utcDay, type AuthFailurePolicy, type GateState, type LimitOutcome, type NonceResult } from './state.js';
import { takeToken } from './token-bucket.js';

export const GATE_STATE_FILE = 'gate-state.db';
const SCHEMA_VERSION = 1;
/** Expired rows deleted per write: more than the one row a write adds, so the tables never fall behind. */
const SWEEP_PER_WRITE = 4;

export interface SqliteStateOptions {
  /** The database file, usually <home>/gate-state.db. */
  file: string;
  nonceCapacity: number;
  authFailures: AuthFailurePolicy;
  clock?: () => number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS nonces (key_id TEXT NOT NULL, nonce TEXT NOT NULL, expires INTEGER NOT NULL, PRIMARY KEY (key_id, nonce)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonces_expires ON nonces (expires);
CREATE TABLE IF NOT EXISTS buckets (key_id TEXT PRIMARY KEY, tat REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quotas (key_id TEXT NOT NULL, day TEXT NOT NULL, used INTEGER NOT NULL, PRIMARY KEY (key_id, day)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS auth_failures (ip TEXT PRIMARY KEY, count INTEGER NOT NULL, window_end INTEGER NOT NULL, blocked_until INTEGER NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS auth_failures_expires ON auth_failures (expires);
`;

/**
 * The gate's state in an SQLite file of its own (WAL, synchronous=NORMAL): every answer that depends on it is
 * committed before the gate answers, so nonces, token buckets, daily quota counts and blocked addresses survive
 * SIGTERM and kill -9 (a power cut may lose the last transactions; the OS had them, the disk not yet).
 *
 * The file is opened with an exclusive lock: one daemon owns it, which lets the counts the hot path needs (live
 * nonces per key, blocked addresses) live in memory, loaded at start. Concurrency slots stay in memory only: a
 * restart ends every request in flight anyway.
 */
export class SqliteGateState implements GateState {
  private readonly clock: () => number;
  private readonly capacity: number;
  private readonly policy: AuthFailurePolicy;
  /** Live nonces per key and overall, as in the nonces table. */
  private readonly held = new Map<string, number>();
  private total = 0;
  /** Addresses blocked and until when, as in auth_failures. */
  private readonly blocked = new Map<string, number>();
  private readonly slots = new Map<string, number>();
  private quotaSweptFor = '';
  private readonly stmt: ReturnType<typeof prepare>;
  private readonly recordTx: (keyId: string, nonce: string, ttlMs: number, share: number) => NonceResult;
  private readonly rateTx: (keyId: string, rate: number, burst: number) => LimitOutcome;
  private readonly failureTx: (ip: string) => number;

  private constructor(private readonly db: Database.Database, readonly file: string, options: SqliteStateOptions) {
    this.clock = options.clock ?? Date.now;
    this.capacity = options.nonceCapacity;
    this.policy = options.authFailures;
    this.stmt = prepare(db);
    this.recordTx = db.transaction((keyId: string, nonce: string, ttlMs: number, share: number) => this.recordNow(keyId, nonce, ttlMs, share));
    this.rateTx = db.transaction((keyId: string, rate: number, burst: number) => this.rateNow(keyId, rate, burst));
    this.failureTx = db.transaction((ip: string) => this.failureNow(ip));
    this.load();
  }

  /** Opens (or creates, mode 0600) the state file; a damaged or foreign file is a GUARD_E_STATE error. */
  static open(options: SqliteStateOptions): SqliteGateState {
    const file = options.file;
    ensurePrivateDir(path.dirname(file));
    let db: Database.Database | undefined;
    try {
      try {
        fs.closeSync(fs.openSync(file, 'wx', 0o600));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      db = new Database(file, { fileMustExist: true, timeout: 1000 });
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new Error(`integrity check failed: ${String(check)}`);
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new GuardError('GUARD_E_STATE', `the gate state file ${file} was written by a newer guardctl (schema ${version})`, {
          hint: 'run the newer guardctl, or move the file aside to start with an empty state',
        });
      }
      db.exec(SCHEMA);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
      for (const f of [file, `${file}-wal`]) if (fs.existsSync(f) && (fs.statSync(f).mode & 0o077) !== 0) fs.chmodSync(f, 0o600);
      return new SqliteGateState(db, file, options);
    } catch (err) {
      db?.close();
      if (err instanceof GuardError) throw err;
      const busy = (err as { code?: string }).code === 'SQLITE_BUSY';
      throw new GuardError('GUARD_E_STATE', busy
        ? `the gate state file ${file} is in use by another guardctl serve`
        : `cannot open the gate state file ${file}: ${(err as Error).message}`, {
        hint: busy
          ? 'stop the other daemon, or give this one its own --home'
          : `check its permissions; if it is damaged, stop the daemon and move it aside: a new file starts empty (requests captured in the last few minutes could be replayed once, and today's quota counts and address blocks start again)`,
        cause: err,
      });
    }
  }

  recordNonce(keyId: string, nonce: string, ttlMs: number, share: number): NonceResult {
    return this.recordTx(keyId, nonce, ttlMs, share);
  }

  forgetNonce(keyId: string, nonce: string): void {
    if (this.stmt.deleteNonce.run(keyId, nonce).changes > 0) this.dropHeld(keyId);
  }

  consumeRate(keyId: string, rate: number, burst: number): LimitOutcome {
    return this.rateTx(keyId, rate, burst);
  }

  async acquireSlot(keyId: string, max: number): Promise<boolean> {
    const held = this.slots.get(keyId) ?? 0;
    if (held >= max) return false;
    this.slots.set(keyId, held + 1);
    return true;
  }

  async releaseSlot(keyId: string): Promise<void> {
    const held = this.slots.get(keyId) ?? 0;
    if (held <= 1) this.slots.delete(keyId);
    else this.slots.set(keyId, held - 1);
  }

  consumeQuota(keyId: string, daily: number, now: number): LimitOutcome {
    const day = utcDay(now);
    if (this.quotaSweptFor !== day) {
      // Yesterday's counts are dead; a few at a time until none is left.
      if (this.stmt.sweepQuotas.run(day, 64).changes < 64) this.quotaSweptFor = day;
    }
    const resetMs = msUntilUtcMidnight(now);
    const row = daily > 0 ? this.stmt.countQuota.get(keyId, day, daily) as { used: number } | undefined : undefined;
    if (!row) return { allowed: false, limit: daily, remaining: 0, resetMs };
    return { allowed: true, limit: daily, remaining: Math.max(0, daily - row.used), resetMs };
  }

  async recordAuthFailure(ip: string): Promise<number> {
    return this.failureTx(ip);
  }

  authBlockedFor(ip: string): number {
    if (this.blocked.size === 0) return 0;
    const until = this.blocked.get(ip);
    if (until === undefined) return 0;
    const left = until - this.clock();
    if (left <= 0) this.blocked.delete(ip);
    return Math.max(0, left);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** How many live nonces a key holds (for tests and the bench). */
  heldBy(keyId: string): number {
    return this.held.get(keyId) ?? 0;
  }

  private load(): void {
    const now = this.clock();
    this.stmt.db.prepare('DELETE FROM nonces WHERE expires <= ?').run(now);
    this.stmt.db.prepare('DELETE FROM auth_failures WHERE expires <= ?').run(now);
    for (const row of this.stmt.db.prepare('SELECT key_id, COUNT(*) AS n FROM nonces GROUP BY key_id').all() as Array<{ key_id: string; n: number }>) {
      this.held.set(row.key_id, row.n);
      this.total += row.n;
    }
    for (const row of this.stmt.db.prepare('SELECT ip, blocked_until FROM auth_failures WHERE blocked_until > ?').all(now) as Array<{ ip: string; blocked_until: number }>) {
      this.blocked.set(row.ip, row.blocked_until);
    }
  }

  private recordNow(keyId: string, nonce: string, ttlMs: number, share: number): NonceResult {
    const now = this.clock();
    this.sweepNonces(now, SWEEP_PER_WRITE);
    const expires = this.stmt.findNonce.get(keyId, nonce) as number | undefined;
    if (expires !== undefined) {
      if (expires > now) return 'replayed';
      this.forgetNonce(keyId, nonce);
    }
    if (this.total >= this.capacity) {
      this.sweepNonces(now, 1000);
      if (this.total >= this.capacity) return 'full';
    }
    if (this.heldBy(keyId) >= share) return 'key_full';
    this.stmt.insertNonce.run(keyId, nonce, now + ttlMs);
    this.held.set(keyId, this.heldBy(keyId) + 1);
    this.total++;
    return 'ok';
  }

  private sweepNonces(now: number, limit: number): void {
    for (const keyId of this.stmt.sweepNonces.all(now, limit) as string[]) this.dropHeld(keyId);
  }

  private dropHeld(keyId: string): void {
    const left = this.heldBy(keyId) - 1;
    if (left > 0) this.held.set(keyId, left);
    else this.held.delete(keyId);
    this.total--;
  }

  private rateNow(keyId: string, rate: number, burst: number): LimitOutcome {
    const now = this.clock();
    const step = takeToken(this.stmt.getBucket.get(keyId) as number | undefined, now, rate, burst);
    if (step.outcome.allowed) this.stmt.putBucket.run(keyId, step.tat);
    return step.outcome;
  }

  private failureNow(ip: string): number {
    const now = this.clock();
    this.stmt.sweepFailures.run(now, SWEEP_PER_WRITE);
    const prev = this.stmt.getFailure.get(ip) as FailureRow | undefined;
    const row = countFailure(prev, now, this.policy);
    this.stmt.putFailure.run(ip, row.count, row.windowEnd, row.blockedUntil, failureRowExpires(row));
    if (row.blockedUntil > now) this.blocked.set(ip, row.blockedUntil);
    return Math.max(0, row.blockedUntil - now);
  }
}

function prepare(db: Database.Database) {
  return {
    db,
    findNonce: db.prepare('SELECT expires FROM nonces WHERE key_id = ? AND nonce = ?').pluck(),
    insertNonce: db.prepare('INSERT INTO nonces (key_id, nonce, expires) VALUES (?, ?, ?)'),
    deleteNonce: db.prepare('DELETE FROM nonces WHERE key_id = ? AND nonce = ?'),
    sweepNonces: db.prepare(`DELETE FROM nonces WHERE (key_id, nonce) IN
      (SELECT key_id, nonce FROM nonces WHERE expires <= ? ORDER BY expires LIMIT ?) RETURNING key_id`).pluck(),
    getBucket: db.prepare('SELECT tat FROM buckets WHERE key_id = ?').pluck(),
    putBucket: db.prepare('INSERT INTO buckets (key_id, tat) VALUES (?, ?) ON CONFLICT (key_id) DO UPDATE SET tat = excluded.tat'),
    // One statement counts and refuses: no row comes back once the day's count has reached the limit.
    countQuota: db.prepare(`INSERT INTO quotas (key_id, day, used) VALUES (?, ?, 1)
      ON CONFLICT (key_id, day) DO UPDATE SET used = used + 1 WHERE used < ? RETURNING used`),
    sweepQuotas: db.prepare('DELETE FROM quotas WHERE (key_id, day) IN (SELECT key_id, day FROM quotas WHERE day < ? LIMIT ?)'),
    getFailure: db.prepare('SELECT count, window_end AS windowEnd, blocked_until AS blockedUntil FROM auth_failures WHERE ip = ?'),
    putFailure: db.prepare(`INSERT INTO auth_failures (ip, count, window_end, blocked_until, expires) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (ip) DO UPDATE SET count = excluded.count, window_end = excluded.window_end, blocked_until = excluded.blocked_until, expires = excluded.expires`),
    sweepFailures: db.prepare(`DELETE FROM auth_failures WHERE ip IN
      (SELECT ip FROM auth_failures WHERE expires <= ? ORDER BY expires LIMIT ?)`),
  };
}
