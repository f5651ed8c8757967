import pg from 'pg';
import { GuardError } from '../core/errors.js';
import { redactUrl } from './pg-url.js';
import { loadMasterKey } from './master-key.js';
import { checkPgSchema, migratePg, PG_CHANNEL, pgSchemaVersion } from './pg-schema.js';
import { checkGrace, checkRevocable, credentialsOf, notFound, planCreate, planRotate } from './rows.js';
import { type KeyRow, toRecord } from './schema.js';
import { DEFAULT_TIERS } from './tiers.js';
import { selectImport, verifyExportKey, type ImportResult, type StoreDump } from './transfer.js';
import { isWellFormedToken, KEY_ID_PREFIX } from './token.js';
import type { KeyCredentials, KeyRecord, Tier } from './types.js';
import type { CreateKeyInput, KeyEvent, KeyStoreHealth } from './store.js';
import { checkKeyId } from './token.js';

export interface PgKeyStoreOptions {
  url: string;
  home: string;
  env: NodeJS.ProcessEnv;
  now?: () => number;
  tiers?: Record<string, Tier>;
  /** How long a connection attempt may take before the store counts as unreachable (default 5 s). */
  connectTimeoutMs?: number;
}

/** Credentials with the row's revision, which a cache compares to learn whether the row changed. */
export interface RevisedCredentials {
  creds: KeyCredentials;
  revision: number;
}

// BIGINT columns hold epoch milliseconds and revisions, all far below 2^53: numbers, not pg's default strings.
const types = {
  getTypeParser: ((oid: number, format?: string) => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser,
};

/**
 * API keys in PostgreSQL, shared by every host: the SQLite store's rows and rules (rows.ts), with writes that
 * bump a store-wide generation and NOTIFY the changed id, which running daemons listen for (pg-lookup.ts).
 * The master key stays on the hosts (env or file); the database holds only sealed secrets and a check value.
 */
export class PgKeyStore {
  readonly path: string;
  private constructor(
    private readonly pool: pg.Pool,
    private readonly masterKey: Buffer,
    private readonly opts: PgKeyStoreOptions,
    private readonly tiers: Record<string, Tier>,
  ) {
    this.path = redactUrl(opts.url);
  }

  static pool(opts: Pick<PgKeyStoreOptions, 'url' | 'connectTimeoutMs'>): pg.Pool {
    const pool = new pg.Pool({ connectionString: opts.url, connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000, max: 4, idleTimeoutMillis: 30_000, types });
    // An idle connection cut by a server restart is reported here; without a listener it would end the process.
    pool.on('error', () => {});
    return pool;
  }

  /** Opens an existing store: refuses a database with no schema, another schema version, or another master key. */
  static async open(opts: PgKeyStoreOptions): Promise<PgKeyStore> {
    const pool = PgKeyStore.pool(opts);
    try {
      const masterKey = await reach(() => checkPgSchema(pool, `the PostgreSQL key store ${redactUrl(opts.url)}`, () => loadMasterKey({ home: opts.home, env: opts.env, create: false })), opts.url);
      return new PgKeyStore(pool, masterKey, opts, opts.tiers ?? DEFAULT_TIERS);
    } catch (err) {
      await pool.end().catch(() => {});
      throw err;
    }
  }

  /**
   * `guardctl keys migrate`: creates or upgrades the tables. Only a database with no guardctl tables yet may make a
   * new master key (in the data directory): every other host must then be given that same key.
   */
  static async migrate(opts: PgKeyStoreOptions): Promise<{ from: number; to: number; store: string }> {
    const pool = PgKeyStore.pool(opts);
    const where = `the PostgreSQL key store ${redactUrl(opts.url)}`;
    try {
      return await reach(async () => {
        const fresh = (await pgSchemaVersion(pool)) === 0;
        const client = await pool.connect();
        try {
          const r = await migratePg(client, where, () => loadMasterKey({ home: opts.home, env: opts.env, create: fresh }));
          return { ...r, store: redactUrl(opts.url) };
        } finally {
          client.release();
        }
      }, opts.url);
    } finally {
      await pool.end().catch(() => {});
    }
  }

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }

  async create(input: CreateKeyInput): Promise<{ record: KeyRecord; secret: string }> {
    const now = this.now;
    const { row, secret, detail } = planCreate(input, now, this.tiers, this.masterKey);
    await this.write(row.id, async (c) => {
      await insertRow(c, row);
      await audit(c, now, row.id, 'create', detail);
    });
    return { record: await this.get(row.id), secret };
  }

  async list(): Promise<KeyRecord[]> {
    const { rows } = await this.query<KeyRow>('SELECT * FROM guardctl_keys ORDER BY created_at, id');
    return rows.map(toRecord);
  }

  async get(id: string): Promise<KeyRecord> {
    return toRecord(await this.row(this.pool, id));
  }

  async revoke(id: string): Promise<KeyRecord> {
    const now = this.now;
    await this.write(id, async (c) => {
      const row = await this.row(c, id, true);
      checkRevocable(row);
      await c.query('UPDATE guardctl_keys SET revoked_at = $1, previous_secret = NULL, previous_valid_until = NULL, revision = revision + 1 WHERE id = $2', [now, id]);
      await audit(c, now, id, 'revoke', { tier: row.tier });
    });
    return this.get(id);
  }

  async rotate(id: string, graceMs: number): Promise<{ record: KeyRecord; secret: string }> {
    checkGrace(graceMs);
    const now = this.now;
    let secret = '';
    await this.write(id, async (c) => {
      const plan = planRotate(await this.row(c, id, true), graceMs, now, this.masterKey);
      await c.query('UPDATE guardctl_keys SET secret = $1, previous_secret = $2, previous_valid_until = $3, revision = revision + 1 WHERE id = $4', [plan.sealed, plan.previous, plan.until, id]);
      await audit(c, now, id, 'rotate', plan.detail);
      secret = plan.secret;
    });
    return { record: await this.get(id), secret };
  }

  async events(id: string): Promise<KeyEvent[]> {
    await this.row(this.pool, id);
    const { rows } = await this.query<{ at: number; action: string; detail: string | null }>('SELECT at, action, detail FROM guardctl_key_events WHERE key_id = $1 ORDER BY seq', [id]);
    return rows.map((r) => (r.detail === null ? { at: r.at, action: r.action } : { at: r.at, action: r.action, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }

  /** The credentials and the row's revision; undefined for an unknown id. Connection failures are thrown as is. */
  async credentials(id: string): Promise<RevisedCredentials | undefined> {
    if (!isWellFormedToken(id, KEY_ID_PREFIX)) return undefined;
    const { rows } = await this.pool.query<KeyRow & { revision: number }>('SELECT * FROM guardctl_keys WHERE id = $1', [id]);
    const row = rows[0];
    if (!row) return undefined;
    return { creds: credentialsOf(row, toRecord(row), this.now, this.masterKey), revision: row.revision };
  }

  /** The row's revision (undefined: no such key), for the gate's one re-check before refusing a signature. */
  async revision(id: string): Promise<number | undefined> {
    const { rows } = await this.pool.query<{ revision: number }>('SELECT revision FROM guardctl_keys WHERE id = $1', [id]);
    return rows[0]?.revision;
  }

  /** Bumped by every create, rotate, revoke and import: the polling fallback compares it. */
  async generation(): Promise<number> {
    const { rows } = await this.pool.query<{ value: string }>(`SELECT value FROM guardctl_meta WHERE name = 'generation'`);
    return Number(rows[0]?.value ?? 0);
  }

  /** Last-used times in one statement; never moves a time backwards and bumps no revision (no credential changed). */
  async touchMany(entries: Iterable<readonly [string, number]>): Promise<void> {
    const list = [...entries];
    if (list.length === 0) return;
    await this.pool.query(`UPDATE guardctl_keys k SET last_used_at = GREATEST(coalesce(k.last_used_at, 0), v.at)
      FROM unnest($1::text[], $2::bigint[]) AS v(id, at) WHERE k.id = v.id`, [list.map(([id]) => id), list.map(([, at]) => at)]);
  }

  /**
   * A dedicated connection LISTENing for changed key ids. `onLost` is called once if it drops (the server
   * stopped, the network failed); the caller decides when to listen again.
   */
  async listen(onChange: (id: string) => void, onLost: (err: Error) => void): Promise<() => Promise<void>> {
    const client = new pg.Client({ connectionString: this.opts.url, connectionTimeoutMillis: this.opts.connectTimeoutMs ?? 5000, types });
    let lost = false;
    const lose = (err: Error) => {
      if (lost) return;
      lost = true;
      onLost(err);
    };
    client.on('error', lose);
    client.on('end', () => lose(new Error('the connection ended')));
    client.on('notification', (msg) => onChange(msg.payload ?? ''));
    try {
      await client.connect();
      await client.query(`LISTEN ${PG_CHANNEL}`);
    } catch (err) {
      lost = true;
      await client.end().catch(() => {});
      throw err;
    }
    return async () => {
      lost = true;
      await client.end().catch(() => {});
    };
  }

  async health(): Promise<KeyStoreHealth> {
    const base = { ok: false, keys: 0, active: 0, path: this.path };
    try {
      const { rows } = await this.pool.query<{ keys: number; active: number }>(`SELECT count(*)::bigint AS keys,
        count(*) FILTER (WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1))::bigint AS active FROM guardctl_keys`, [this.now]);
      return { ...base, ...rows[0]!, ok: true };
    } catch (err) {
      return { ...base, problem: unreachableMessage(err) };
    }
  }

  async dump(): Promise<StoreDump> {
    const c = await this.pool.connect();
    try {
      // One snapshot: keys and events exported together are consistent even while daemons write last-used times.
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const check = await c.query<{ value: string }>(`SELECT value FROM guardctl_meta WHERE name = 'check'`);
      const keys = await c.query<KeyRow & { revision?: number }>('SELECT * FROM guardctl_keys ORDER BY created_at, id');
      const events = await c.query<StoreDump['events'][number]>('SELECT at, key_id, action, detail FROM guardctl_key_events ORDER BY seq');
      await c.query('COMMIT');
      return { check: check.rows[0]!.value, keys: keys.rows.map(({ revision: _r, ...row }) => row), events: events.rows };
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  async restore(dump: StoreDump, merge: boolean): Promise<ImportResult> {
    verifyExportKey(this.masterKey, dump);
    let result: ImportResult = { keys: 0, events: 0, skipped: [] };
    await this.write('', async (c) => {
      const existing = new Set((await c.query<{ id: string }>('SELECT id FROM guardctl_keys')).rows.map((r) => r.id));
      const chosen = selectImport(dump, existing, merge, `the PostgreSQL key store ${this.path}`);
      for (const row of chosen.keys) await insertRow(c, row);
      for (const e of chosen.events) await c.query('INSERT INTO guardctl_key_events (at, key_id, action, detail) VALUES ($1, $2, $3, $4)', [e.at, e.key_id, e.action, e.detail]);
      result = { keys: chosen.keys.length, events: chosen.events.length, skipped: chosen.skipped };
    });
    return result;
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => {});
  }

  private async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    return reach(() => this.pool.query<R>(sql, params), this.opts.url);
  }

  private async row(db: pg.Pool | pg.PoolClient, id: string, forUpdate = false): Promise<KeyRow> {
    checkKeyId(id);
    const { rows } = await reach(() => db.query<KeyRow>(`SELECT * FROM guardctl_keys WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]), this.opts.url);
    if (!rows[0]) throw notFound(id);
    return rows[0];
  }

  /** One transaction that bumps the generation and notifies listeners of `id` (all keys when empty) at commit. */
  private async write(id: string, fn: (c: pg.PoolClient) => Promise<void>): Promise<void> {
    const c = await reach(() => this.pool.connect(), this.opts.url);
    try {
      await c.query('BEGIN');
      await c.query(`UPDATE guardctl_meta SET value = (value::bigint + 1)::text WHERE name = 'generation'`);
      await fn(c);
      await c.query('SELECT pg_notify($1, $2)', [PG_CHANNEL, id]);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      if (err instanceof GuardError) throw err;
      throw unreachable(err, this.opts.url);
    } finally {
      c.release();
    }
  }
}

async function insertRow(c: pg.PoolClient, r: KeyRow): Promise<void> {
  await c.query(`INSERT INTO guardctl_keys (id, name, tier, created_at, expires_at, revoked_at, last_used_at, allow_ips, overrides, secret, previous_secret, previous_valid_until, allow_bearer)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, [r.id, r.name, r.tier, r.created_at, r.expires_at, r.revoked_at, r.last_used_at, r.allow_ips, r.overrides, r.secret, r.previous_secret, r.previous_valid_until, r.allow_bearer ?? 0]);
}

async function audit(c: pg.PoolClient, at: number, id: string, action: string, detail: Record<string, unknown>): Promise<void> {
  await c.query('INSERT INTO guardctl_key_events (at, key_id, action, detail) VALUES ($1, $2, $3, $4)', [at, id, action, JSON.stringify(detail)]);
}

/** Why the database did not answer, without the URL's password (pg messages never include it). */
export function unreachableMessage(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { errors?: Error[] };
  const inner = e.errors?.[0] as NodeJS.ErrnoException | undefined;
  return inner?.code ?? e.code ?? e.message ?? String(err);
}

function unreachable(err: unknown, url: string): GuardError {
  return new GuardError('GUARD_E_KEYSTORE', `the PostgreSQL key store ${redactUrl(url)} failed: ${unreachableMessage(err)}`, {
    hint: 'check that PostgreSQL runs and accepts this host, and that GUARDCTL_KEYS / --keys / keys.store names it',
    cause: err,
  });
}

/** Runs `fn`, turning driver and connection errors into GUARD_E_KEYSTORE (our own errors pass unchanged). */
async function reach<T>(fn: () => Promise<T>, url: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof GuardError) throw err;
    throw unreachable(err, url);
  }
}
