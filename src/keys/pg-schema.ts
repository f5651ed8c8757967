import type pg from 'pg';
import { GuardError } from '../core/errors.js';
import { newCheckValue, verifyCheck } from './schema.js';

/**
 * The PostgreSQL key store's schema: the SQLite store's tables (same columns, JSON kept as text so rows move
 * between the two unchanged) under guardctl_ names, plus a per-row revision that a daemon's cache compares.
 * Migrations run only through `guardctl keys migrate`; every other command and the daemon refuse a store whose
 * version is not exactly this guardctl's.
 */
export const PG_SCHEMA_VERSION = 2;

/** NOTIFY channel: the payload is the id of the key that changed. */
export const PG_CHANNEL = 'guardctl_keys';

const MIGRATIONS: Record<number, string> = {
  1: `
    CREATE TABLE guardctl_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE guardctl_keys (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      tier TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      expires_at BIGINT,
      revoked_at BIGINT,
      last_used_at BIGINT,
      allow_ips TEXT NOT NULL DEFAULT '[]',
      overrides TEXT NOT NULL DEFAULT '{}',
      secret TEXT NOT NULL,
      previous_secret TEXT,
      previous_valid_until BIGINT,
      revision BIGINT NOT NULL DEFAULT 1
    );
    CREATE TABLE guardctl_key_events (
      seq BIGSERIAL PRIMARY KEY,
      at BIGINT NOT NULL,
      key_id TEXT NOT NULL,
      action TEXT NOT NULL,
      detail TEXT
    );
    CREATE INDEX guardctl_key_events_by_key ON guardctl_key_events (key_id, seq);
    INSERT INTO guardctl_meta (name, value) VALUES ('generation', '0');
  `,
  // Opt-in bearer credentials (docs/signing.md); INTEGER like SQLite's, so rows move between the stores unchanged.
  2: `ALTER TABLE guardctl_keys ADD COLUMN allow_bearer INTEGER NOT NULL DEFAULT 0;`,
};

// Any fixed number: two `keys migrate` runs at once take turns instead of both creating the tables.
const MIGRATE_LOCK = 0x6775_6172;

export type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

/** The version a database holds: 0 when it has no guardctl tables at all. */
export async function pgSchemaVersion(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ t: string | null }>(`SELECT to_regclass('guardctl_meta')::text AS t`);
  if (rows[0]?.t == null) return 0;
  const v = await db.query<{ value: string }>(`SELECT value FROM guardctl_meta WHERE name = 'schema_version'`);
  return v.rows[0] ? Number(v.rows[0].value) : 0;
}

/** Refuses a store this guardctl cannot use as it is, saying which command fixes it. */
export async function checkPgSchema(db: Queryable, where: string, masterKey: () => Buffer): Promise<Buffer> {
  const version = await pgSchemaVersion(db);
  if (version === 0) {
    throw new GuardError('GUARD_E_KEYSTORE', `${where} holds no guardctl key store yet`, { hint: 'create its tables with guardctl keys migrate (run once, from one host)' });
  }
  if (version > PG_SCHEMA_VERSION) {
    throw new GuardError('GUARD_E_KEYSTORE', `${where} has key store schema ${version}, newer than this guardctl's ${PG_SCHEMA_VERSION}`, { hint: 'upgrade guardctl on this host to the version that migrated it' });
  }
  if (version < PG_SCHEMA_VERSION) {
    throw new GuardError('GUARD_E_KEYSTORE', `${where} has key store schema ${version}, older than this guardctl's ${PG_SCHEMA_VERSION}`, { hint: 'run guardctl keys migrate once (daemons of the older version keep working until then)' });
  }
  const check = await db.query<{ value: string }>(`SELECT value FROM guardctl_meta WHERE name = 'check'`);
  if (!check.rows[0]) throw new GuardError('GUARD_E_KEYSTORE', `${where} has no master-key check value`, { hint: 'restore the database from a backup' });
  // Loaded only now: a store that is missing or of another version is reported as such, not as a missing key.
  const key = masterKey();
  verifyCheck(key, check.rows[0].value, where, 'restore the database from a backup');
  return key;
}

/** Applies the missing migrations in one transaction; returns the versions before and after. */
export async function migratePg(client: pg.PoolClient, where: string, masterKey: () => Buffer): Promise<{ from: number; to: number }> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATE_LOCK]);
    const from = await pgSchemaVersion(client);
    if (from > PG_SCHEMA_VERSION) {
      throw new GuardError('GUARD_E_KEYSTORE', `${where} has key store schema ${from}, newer than this guardctl's ${PG_SCHEMA_VERSION}`, { hint: 'upgrade guardctl; an older one never migrates a store down' });
    }
    for (let v = from + 1; v <= PG_SCHEMA_VERSION; v++) {
      await client.query(MIGRATIONS[v]!);
      if (v === 1) await client.query(`INSERT INTO guardctl_meta (name, value) VALUES ('check', $1)`, [newCheckValue(masterKey())]);
      await client.query(`INSERT INTO guardctl_meta (name, value) VALUES ('schema_version', $1) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`, [String(v)]);
    }
    if (from === PG_SCHEMA_VERSION) {
      const check = await client.query<{ value: string }>(`SELECT value FROM guardctl_meta WHERE name = 'check'`);
      verifyCheck(masterKey(), check.rows[0]?.value ?? '', where, 'restore the database from a backup');
    }
    await client.query('COMMIT');
    return { from, to: PG_SCHEMA_VERSION };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}
