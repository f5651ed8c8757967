import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ensurePrivateDir } from '../core/atomic.js';
import { GuardError } from '../core/errors.js';
import { FailureTable, failureRowExpires, type FailureRow } from './auth-failures.js';
import { DailyCounts, ProcessSlots } from './counters.js';
import { type AuthFailurePolicy, type GateState, type LimitOutcome, type NonceResult } from './state.js';
import { NonceCache } from './nonce-cache.js';
import { takeToken } from './token-bucket.js';

export const GATE_STATE_FILE = 'gate-state.db';
const SCHEMA_VERSION = 1;
/** Expired nonces deleted per nonce written: more than one, so the table never falls behind. */
const SWEEP_PER_WRITE = 4;
/**
 * Expired nonces leave the file at most this often, all those due at once: a sweep in every commit cost as much
 * as the commit's inserts however little it found, and most commits hold only a few nonces.
 */
export const SWEEP_EVERY_MS = 1000;

export interface SqliteStateOptions {
  /** The database file, usually <home>/gate-state.db. */
  file: string;
  nonceCapacity: number;
  authFailures: AuthFailurePolicy;
  clock?: () => number;
}

// Nonces are kept in insertion order (id), which is expiry order since every nonce lives as long: expired rows
// are always at the head, and both the table and its one index (expires) only grow at the end, so a commit writes
// a few pages however many nonces it holds. Replays are looked up in memory (NonceCache), loaded at start.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS nonces (id INTEGER PRIMARY KEY, key_id TEXT NOT NULL, nonce TEXT NOT NULL, expires INTEGER NOT NULL);
DROP INDEX IF EXISTS nonces_key_nonce;
CREATE INDEX IF NOT EXISTS nonces_expires ON nonces (expires);
CREATE TABLE IF NOT EXISTS buckets (key_id TEXT PRIMARY KEY, tat REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quotas (key_id TEXT NOT NULL, day TEXT NOT NULL, used INTEGER NOT NULL, PRIMARY KEY (key_id, day)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS auth_failures (ip TEXT PRIMARY KEY, count INTEGER NOT NULL, window_end INTEGER NOT NULL, blocked_until INTEGER NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS auth_failures_expires ON auth_failures (expires);
`;

interface NonceRow {
  keyId: string;
  nonce: string;
  expires: number;
}

/**
 * The gate's state in an SQLite file of its own (WAL, synchronous=NORMAL), so that nonces, token buckets, daily
 * quota counts and blocked addresses survive SIGTERM and kill -9 (a power cut may lose the last transactions:
 * the OS had them, the disk not yet).
 *
 * One daemon owns the file (an exclusive lock), so what the hot path reads lives in memory, loaded at start:
 * live nonces (as in --state memory, with the same bounds), buckets, today's counts, failure counts.
 * Writes are grouped: everything changed during one turn of the event loop is committed in one transaction
 * (a commit per request cost several times the whole gate), and the gate lets a request through only once
 * `durable()` says its nonce, token and quota count are committed, so a crash cannot forget them. A request
 * refused by a limit forgets its nonce before the commit and so writes nothing: a flood costs no disk writes.
 * Failed authentications are written the same way without being waited for (a crash can lose one turn).
 * Concurrency slots stay in memory only: a restart ends every request in flight.
 */
export class SqliteGateState extends ProcessSlots implements GateState {
  private readonly clock: () => number;
  private readonly nonces: NonceCache;
  /** Nonces recorded since the last commit. */
  private readonly pendingNonces = new Map<string, NonceRow>();
  /** Committed nonces forgotten since the last commit. */
  private readonly dropped: NonceRow[] = [];
  private readonly buckets = new Map<string, number>();
  private readonly dirtyBuckets = new Set<string>();
  private readonly quotas = new DailyCounts((day) => this.startDay(day));
  private readonly dirtyQuotas = new Set<string>();
  private readonly failures: FailureTable;
  private readonly dirtyFailures = new Set<string>();
  private commitTurn: Promise<void> | undefined;
  /** Nonces written since the last sweep, and when the next may run. */
  private unswept = 0;
  private nextSweep = 0;
  private broken: unknown;
  private readonly stmt: ReturnType<typeof prepare>;
  private readonly writeAll: () => void;

  private constructor(private readonly db: Database.Database, readonly file: string, options: SqliteStateOptions) {
    super();
    this.clock = options.clock ?? Date.now;
    this.nonces = new NonceCache(options.nonceCapacity, this.clock);
    this.failures = new FailureTable(options.authFailures);
    this.stmt = prepare(db);
    this.writeAll = db.transaction(() => this.write());
    this.load();
  }

  /** Opens (or creates, mode 0600) the state file; a damaged, foreign or busy file is a GUARD_E_STATE error. */
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
    this.usable();
    const seen = this.nonces.record(keyId, nonce, ttlMs, share);
    if (seen !== 'ok') return seen;
    this.pendingNonces.set(`${keyId}\n${nonce}`, { keyId, nonce, expires: this.nonces.lastExpires });
    // Committed at the end of this turn even if nobody waits for it (a request refused after its nonce was spent);
    // one refused by a limit forgets it before then, and writes nothing.
    void this.durable().catch(() => {});
    return 'ok';
  }

  forgetNonce(keyId: string, nonce: string): void {
    const expires = this.nonces.forget(keyId, nonce);
    if (expires === undefined || this.pendingNonces.delete(`${keyId}\n${nonce}`)) return;
    this.dropped.push({ keyId, nonce, expires });
    void this.durable().catch(() => {});
  }

  consumeRate(keyId: string, rate: number, burst: number): LimitOutcome {
    this.usable();
    const step = takeToken(this.buckets.get(keyId), this.clock(), rate, burst);
    if (step.outcome.allowed) {
      this.buckets.set(keyId, step.tat);
      this.dirtyBuckets.add(keyId);
    }
    return step.outcome;
  }

  consumeQuota(keyId: string, daily: number, now: number): LimitOutcome {
    this.usable();
    const outcome = this.quotas.consume(keyId, daily, now);
    if (outcome.allowed) this.dirtyQuotas.add(keyId);
    return outcome;
  }

  async recordAuthFailure(ip: string): Promise<number> {
    this.usable();
    const blocked = this.failures.count(ip, this.clock());
    this.dirtyFailures.add(ip);
    void this.durable().catch(() => {});
    return blocked;
  }

  authBlockedFor(ip: string): number {
    return this.failures.blockedFor(ip, this.clock);
  }

  /** Commits what is pending, then closes the file. */
  close(): void {
    if (!this.db.open) return;
    if (this.broken === undefined) this.writeAll();
    this.db.close();
  }

  /** How many live nonces a key holds (for tests). */
  heldBy(keyId: string): number {
    return this.nonces.held(keyId);
  }

  /** How many nonce rows the file holds (for tests: the daemon's exclusive lock keeps other readers out). */
  storedNonces(): number {
    return this.db.prepare('SELECT COUNT(*) FROM nonces').pluck().get() as number;
  }

  /** One transaction per turn of the event loop for everything changed in it. */
  durable(): Promise<void> {
    if (this.commitTurn === undefined && !this.dirty()) return this.broken === undefined ? Promise.resolve() : Promise.reject(this.writeError());
    return (this.commitTurn ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.commitTurn = undefined;
        try {
          // close() has already written everything.
          if (this.db.open && this.dirty()) this.writeAll();
          resolve();
        } catch (err) {
          // What memory holds is no longer what the file holds: refuse from now on rather than guess.
          this.broken = err;
          reject(this.writeError());
        }
      });
    }));
  }

  private dirty(): boolean {
    return this.pendingNonces.size > 0 || this.dropped.length > 0 || this.dirtyBuckets.size > 0 || this.dirtyQuotas.size > 0 || this.dirtyFailures.size > 0;
  }

  /** Throws once a commit has failed (disk full, file damaged). */
  private usable(): void {
    if (this.broken !== undefined) throw this.writeError();
  }

  private writeError(): GuardError {
    return new GuardError('GUARD_E_STATE', `the gate state file ${this.file} could not be written: ${(this.broken as Error).message}`, {
      hint: 'check the disk; restart the daemon once fixed (requests are refused until then)',
      cause: this.broken,
    });
  }

  private write(): void {
    const now = this.clock();
    const s = this.stmt;
    for (const d of this.dropped) s.deleteNonce.run(d.expires, d.keyId, d.nonce);
    this.dropped.length = 0;
    this.unswept += this.pendingNonces.size;
    for (const p of this.pendingNonces.values()) s.insertNonce.run(p.keyId, p.nonce, p.expires);
    this.pendingNonces.clear();
    // Memory forgets expired nonces by itself; the file a few per nonce written, once a second (rows stuck behind a
    // straggler wait). A clock set back does not hold the sweep off for as long.
    if (this.unswept > 0 && (now >= this.nextSweep || now < this.nextSweep - SWEEP_EVERY_MS)) {
      s.sweepNonces.run(SWEEP_PER_WRITE * this.unswept, now);
      this.unswept = 0;
      this.nextSweep = now + SWEEP_EVERY_MS;
    }
    for (const keyId of this.dirtyBuckets) s.putBucket.run(keyId, this.buckets.get(keyId)!);
    this.dirtyBuckets.clear();
    for (const keyId of this.dirtyQuotas) s.putQuota.run(keyId, this.quotas.day, this.quotas.used(keyId));
    this.dirtyQuotas.clear();
    if (this.dirtyFailures.size > 0) {
      for (const ip of this.dirtyFailures) {
        const row = this.failures.rows.get(ip)!;
        s.putFailure.run(ip, row.count, row.windowEnd, row.blockedUntil, failureRowExpires(row));
      }
      this.dirtyFailures.clear();
      // Finished addresses go from memory and file alike, a few per write.
      for (const ip of s.sweepFailures.all(now, SWEEP_PER_WRITE) as string[]) this.failures.rows.delete(ip);
    }
  }

  private load(): void {
    const now = this.clock();
    const db = this.db;
    db.prepare('DELETE FROM nonces WHERE expires <= ?').run(now);
    db.prepare('DELETE FROM auth_failures WHERE expires <= ?').run(now);
    for (const row of db.prepare('SELECT key_id, nonce, expires FROM nonces ORDER BY id').iterate() as Iterable<{ key_id: string; nonce: string; expires: number }>) {
      this.nonces.restore(row.key_id, row.nonce, row.expires);
    }
    for (const row of db.prepare('SELECT key_id, tat FROM buckets').all() as Array<{ key_id: string; tat: number }>) {
      if (row.tat > now) this.buckets.set(row.key_id, row.tat);
    }
    db.prepare('DELETE FROM buckets WHERE tat <= ?').run(now);
    for (const row of db.prepare('SELECT ip, count, window_end AS windowEnd, blocked_until AS blockedUntil FROM auth_failures').all() as Array<FailureRow & { ip: string }>) {
      this.failures.rows.set(row.ip, { count: row.count, windowEnd: row.windowEnd, blockedUntil: row.blockedUntil });
    }
  }

  /** At start and at 00:00 UTC: yesterday's counts are written, then dropped; the file's counts for `day` apply. */
  private startDay(day: string): Map<string, number> {
    if (this.dirtyQuotas.size > 0) this.writeAll();
    this.stmt.dropOldQuotas.run(day);
    const counts = new Map<string, number>();
    for (const row of this.stmt.quotasOf.all(day) as Array<{ key_id: string; used: number }>) counts.set(row.key_id, row.used);
    return counts;
  }
}

function prepare(db: Database.Database) {
  return {
    insertNonce: db.prepare('INSERT INTO nonces (key_id, nonce, expires) VALUES (?, ?, ?)'),
    deleteNonce: db.prepare('DELETE FROM nonces WHERE expires = ? AND key_id = ? AND nonce = ?'),
    sweepNonces: db.prepare('DELETE FROM nonces WHERE id IN (SELECT id FROM nonces ORDER BY id LIMIT ?) AND expires <= ?'),
    putBucket: db.prepare('INSERT INTO buckets (key_id, tat) VALUES (?, ?) ON CONFLICT (key_id) DO UPDATE SET tat = excluded.tat'),
    quotasOf: db.prepare('SELECT key_id, used FROM quotas WHERE day = ?'),
    dropOldQuotas: db.prepare('DELETE FROM quotas WHERE day < ?'),
    putQuota: db.prepare('INSERT INTO quotas (key_id, day, used) VALUES (?, ?, ?) ON CONFLICT (key_id, day) DO UPDATE SET used = excluded.used'),
    putFailure: db.prepare(`INSERT INTO auth_failures (ip, count, window_end, blocked_until, expires) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (ip) DO UPDATE SET count = excluded.count, window_end = excluded.window_end, blocked_until = excluded.blocked_until, expires = excluded.expires`),
    sweepFailures: db.prepare('DELETE FROM auth_failures WHERE ip IN (SELECT ip FROM auth_failures WHERE expires <= ? LIMIT ?) RETURNING ip').pluck(),
  };
}
