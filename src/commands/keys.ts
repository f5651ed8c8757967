import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { ContextFactory } from '../cli.js';
import { section } from '../core/config.js';
import type { Context } from '../core/context.js';
import { parseDuration, parseExpiry, parsePositiveInt, parseRate } from '../core/duration.js';
import { table } from '../core/output.js';
import type { KeyBackend } from '../keys/backend.js';
import { keyStatusAt as keyStatus } from '../keys/status.js';
import { resolveKeyStore, type KeyStoreSpec } from '../keys/store-spec.js';
import { bearerToken, checkKeyId } from '../keys/token.js';
import { writeFileAtomic } from '../core/atomic.js';
import { GuardError } from '../core/errors.js';
import { bearerAllowed, effectiveLimits, loadTiers, validateSelector } from '../keys/tiers.js';
import type { KeyRecord, Limits, Tier } from '../keys/types.js';
import { validateAllowIps, validateKeyName, validateTier } from '../keys/validate.js';
import { count } from '../core/plural.js';
import { collect } from './flag-lists.js';

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
const show = (t: number | null, none = '-'): string => iso(t) ?? none;
const limit = (n: number | null, unit = ''): string => (n === null ? 'unlimited' : `${Number(n.toFixed(3))}${unit}`);

function tiersOf(ctx: Context): Record<string, Tier> {
  return loadTiers(section(ctx.config, 'tiers', ctx.locations.configFile), ctx.locations.configFile);
}

/** The store `--keys` (on `guardctl keys`), GUARDCTL_KEYS or the config file's keys.store names. */
function storeSpec(ctx: Context, cmd: Command): KeyStoreSpec {
  const flag = cmd.optsWithGlobals<{ keys?: string }>().keys;
  return resolveKeyStore(flag, ctx.env, section(ctx.config, 'keys', ctx.locations.configFile).store, ctx.locations.configFile);
}

/** Opens the store for one command; `ifMissing` answers instead when there is no store yet, so that reading
 * commands never create a master key or an empty database as a side effect. */
async function withStore<T>(ctx: Context, cmd: Command, tiers: Record<string, Tier> | undefined, fn: (store: KeyBackend) => T | Promise<T>, ifMissing?: () => T): Promise<T> {
  const spec = storeSpec(ctx, cmd);
  // The store's modules (SQLite, pg) load here, when a command opens one.
  const { keyStoreExists, openKeyBackend } = await import('../keys/backend.js');
  if (ifMissing && !keyStoreExists(spec, ctx.locations.home)) return ifMissing();
  const store = await openKeyBackend(spec, { home: ctx.locations.home, env: ctx.env, now: () => ctx.now(), tiers });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** A limit flag: a positive value, or "unlimited"/"none" to lift the tier's limit for this key. */
function limitFlag(value: string | undefined, parse: (v: string) => number): number | null | undefined {
  if (value === undefined) return undefined;
  return value === 'unlimited' || value === 'none' ? null : parse(value);
}

/** Audit details keep epoch times (…At, …Until); people and JSON readers get ISO strings. */
function isoDetail(detail: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!detail) return undefined;
  return Object.fromEntries(Object.entries(detail).map(([k, v]) => [k, /(At|Until)$/.test(k) && typeof v === 'number' ? iso(v) : v]));
}

function limitsJson(l: Limits): Record<string, unknown> {
  return { models: l.models, concurrency: l.concurrency, daily: l.daily, rate: l.rate, burst: l.burst };
}

function limitsText(l: Limits): string[] {
  return [
    `  models:      ${l.models.join(', ') || '(none)'}`,
    `  rate:        ${limit(l.rate, '/s')}`,
    `  burst:       ${limit(l.burst)}`,
    `  concurrency: ${limit(l.concurrency)}`,
    `  daily:       ${limit(l.daily)}`,
  ];
}

function recordJson(r: KeyRecord, now: number): Record<string, unknown> {
  return {
    id: r.id, name: r.name, tier: r.tier, status: keyStatus(r, now), created_at: iso(r.createdAt), expires_at: iso(r.expiresAt),
    revoked_at: iso(r.revokedAt), last_used_at: iso(r.lastUsedAt), allow_ips: r.allowIps, previous_valid_until: iso(r.previousValidUntil),
    allow_bearer: r.allowBearer,
  };
}

/** For commands on one key: a bad id is reported as such, and an id on a machine with no store as not found. */
function noStore(ctx: Context, id: string): never {
  checkKeyId(id);
  throw new GuardError('GUARD_E_KEY_NOT_FOUND', `no key has the id ${id}: there is no key store in ${ctx.locations.home} yet`, {
    hint: 'check --home / GUARDCTL_HOME, or create a key with guardctl keys create',
  });
}

const ONCE = 'Store this secret now: it will not be shown again. Clients sign requests with it; guardctl keeps it only encrypted.';

export function registerKeys(program: Command, contextFor: ContextFactory): void {
  const keys = program.command('keys').description('create, list, rotate and revoke the API keys clients sign requests with')
    .option('--keys <store>', 'where keys live: sqlite (<home>/keys.db, the default) or postgres://USER:PASSWORD@HOST:PORT/DB (env GUARDCTL_KEYS, config keys.store)');

  keys.command('create')
    .description('mint a new API key and print its secret once')
    .requiredOption('--name <name>', 'a label for people, 1-64 characters (for example the customer)')
    .requiredOption('--tier <tier>', 'the tier whose limits apply (see guardctl keys tiers)')
    .option('--models <patterns>', 'comma-separated model patterns or size:small/size:large, replacing the tier\'s list')
    .option('--allow-ip <cidr>', 'only accept requests from this address or CIDR (repeatable, or comma-separated)', collect)
    .option('--expires <when>', 'expiry as a duration (90d) or an ISO date (2027-01-31)')
    .option('--rate <rate>', 'requests per second for this key (5, 5/s, 300/m), or "unlimited"')
    .option('--burst <n>', 'token-bucket capacity for this key, or "unlimited"')
    .option('--concurrency <n>', 'requests in flight at once for this key, or "unlimited"')
    .option('--daily <n>', 'requests per UTC day for this key, or "unlimited"')
    .option('--allow-bearer', 'also accept the key as a bearer credential (Authorization: Bearer, for clients that only send an API key; weaker than signing: see docs/signing.md)')
    .action(async (opts: { name: string; tier: string; models?: string; allowIp?: string[]; expires?: string; rate?: string; burst?: string; concurrency?: string; daily?: string; allowBearer?: boolean }, cmd: Command) => {
      const ctx = contextFor(cmd);
      const tiers = tiersOf(ctx);
      // Everything is checked before the store is opened, so bad input never creates files.
      validateKeyName(opts.name);
      validateTier(opts.tier, tiers);
      const allowIps = validateAllowIps(opts.allowIp ?? []);
      const overrides: Partial<Limits> = {};
      if (opts.models !== undefined) {
        overrides.models = collect(opts.models, []);
        for (const m of overrides.models) validateSelector(m, '--models');
      }
      const set = <K extends 'rate' | 'burst' | 'concurrency' | 'daily'>(field: K, value: number | null | undefined) => {
        if (value !== undefined) overrides[field] = value;
      };
      set('rate', limitFlag(opts.rate, parseRate));
      set('burst', limitFlag(opts.burst, (v) => parsePositiveInt(v, '--burst')));
      set('concurrency', limitFlag(opts.concurrency, (v) => parsePositiveInt(v, '--concurrency')));
      set('daily', limitFlag(opts.daily, (v) => parsePositiveInt(v, '--daily')));
      const expiresAt = opts.expires === undefined ? null : parseExpiry(opts.expires, ctx.now());

      const { record, secret } = await withStore(ctx, cmd, tiers, (store) => store.create({ name: opts.name, tier: opts.tier, overrides, allowIps, expiresAt, allowBearer: opts.allowBearer === true }));
      const limits = effectiveLimits(record, tiers);
      const bearer = bearerAllowed(record, tiers) ? bearerToken(record.id, secret) : undefined;
      ctx.out.result({
        id: record.id, secret, ...(bearer ? { bearer } : {}), name: record.name, tier: record.tier, created_at: iso(record.createdAt), expires_at: iso(record.expiresAt),
        allow_ips: record.allowIps, allow_bearer: record.allowBearer, ...limitsJson(limits),
      }, () => [
        `Created key "${record.name}" (tier ${record.tier}, expires ${show(record.expiresAt, 'never')})`,
        `  id:     ${record.id}`,
        `  secret: ${secret}`,
        ...(bearer ? [`  bearer: ${bearer}`] : []),
        ONCE,
      ].join('\n'));
    });

  keys.command('list')
    .description('list keys (never their secrets)')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextFor(cmd);
      const records = await withStore(ctx, cmd, undefined, (store) => store.list(), () => []);
      const now = ctx.now();
      ctx.out.result({ keys: records.map((r) => recordJson(r, now)) }, () => records.length === 0
        ? 'No keys yet: create one with guardctl keys create --name NAME --tier TIER'
        : table(['ID', 'NAME', 'TIER', 'STATUS', 'CREATED', 'LAST USED', 'EXPIRES'], records.map((r) => {
          const status = keyStatus(r, now);
          const cells = [r.id, r.name, r.tier, status, show(r.createdAt), show(r.lastUsedAt), show(r.expiresAt, 'never')];
          // Keys that no longer open anything recede, so the working ones stand out.
          return status === 'active' ? cells : cells.map((c) => ctx.out.paint.dim(c));
        })));
    });

  keys.command('show')
    .description('show one key: its record, effective limits and history')
    .argument('<id>', 'the key id (gk_...)')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = contextFor(cmd);
      const tiers = tiersOf(ctx);
      const { record, events } = await withStore(ctx, cmd, tiers, async (store) => ({ record: await store.get(id), events: await store.events(id) }), () => noStore(ctx, id));
      const limits = effectiveLimits(record, tiers);
      const now = ctx.now();
      ctx.out.result({ ...recordJson(record, now), overrides: record.overrides, limits: limitsJson(limits), events: events.map((e) => ({ ...e, at: iso(e.at), ...(e.detail ? { detail: isoDetail(e.detail) } : {}) })) }, () => [
        `${record.id}  "${record.name}"`,
        `  tier:        ${record.tier}${tiers[record.tier] ? '' : ' (no longer defined: only its own overrides apply)'}`,
        `  status:      ${keyStatus(record, now)}`,
        `  created:     ${show(record.createdAt)}`,
        `  expires:     ${show(record.expiresAt, 'never')}`,
        `  last used:   ${show(record.lastUsedAt, 'never')}`,
        ...(record.revokedAt !== null ? [`  revoked:     ${show(record.revokedAt)}`] : []),
        ...(record.previousValidUntil !== null && record.previousValidUntil > now ? [`  old secret valid until ${show(record.previousValidUntil)}`] : []),
        `  allowed IPs: ${record.allowIps.join(', ') || 'any'}`,
        `  bearer:      ${bearerAllowed(record, tiers) ? `allowed${record.allowBearer ? '' : ` (tier ${record.tier})`}` : 'no (signed requests only)'}`,
        'Effective limits:',
        ...limitsText(limits),
        'Events:',
        ...events.map((e) => `  ${show(e.at)}  ${e.action}${e.detail ? `  ${JSON.stringify(isoDetail(e.detail))}` : ''}`),
      ].join('\n'));
    });

  keys.command('revoke')
    .description('revoke a key: requests signed with it are refused from now on')
    .argument('<id>', 'the key id (gk_...)')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = contextFor(cmd);
      const record = await withStore(ctx, cmd, undefined, (store) => store.revoke(id), () => noStore(ctx, id));
      ctx.out.result({ id: record.id, status: 'revoked', revoked_at: iso(record.revokedAt) }, () => `Revoked key ${record.id} ("${record.name}") at ${show(record.revokedAt)}; running daemons refuse it within 2 seconds.`);
    });

  keys.command('rotate')
    .description('give a key a new secret; the old one keeps working for a grace period')
    .argument('<id>', 'the key id (gk_...)')
    .option('--grace <duration>', 'how long the old secret keeps working (0 to stop it at once)', '24h')
    .action(async (id: string, opts: { grace: string }, cmd: Command) => {
      const ctx = contextFor(cmd);
      const graceMs = opts.grace.trim() === '0' ? 0 : parseDuration(opts.grace, '--grace');
      const tiers = tiersOf(ctx);
      const { record, secret } = await withStore(ctx, cmd, tiers, (store) => store.rotate(id, graceMs), () => noStore(ctx, id));
      const bearer = bearerAllowed(record, tiers) ? bearerToken(record.id, secret) : undefined;
      ctx.out.result({ id: record.id, secret, ...(bearer ? { bearer } : {}), previous_valid_until: iso(record.previousValidUntil) }, () => [
        `Rotated key ${record.id} ("${record.name}")`,
        `  secret: ${secret}`,
        ...(bearer ? [`  bearer: ${bearer}`] : []),
        record.previousValidUntil === null ? 'The old secret stopped working now.' : `The old secret keeps working until ${show(record.previousValidUntil)}.`,
        ONCE,
      ].join('\n'));
    });

  keys.command('tiers')
    .description('show the effective tier table (built-ins merged with the config file)')
    .action((_opts: unknown, cmd: Command) => {
      const ctx = contextFor(cmd);
      const tiers = Object.values(tiersOf(ctx));
      ctx.out.result({ tiers: tiers.map((t) => ({ name: t.name, ...limitsJson(t) })) }, () => table(
        ['TIER', 'MODELS', 'RATE', 'BURST', 'CONCURRENCY', 'DAILY'],
        tiers.map((t) => [t.name, t.models.join(',') || '(none)', limit(t.rate, '/s'), limit(t.burst), limit(t.concurrency), limit(t.daily)]),
      ));
    });

  keys.command('migrate')
    .description('create or upgrade the key store\'s tables (PostgreSQL: run once, from one host, before serve)')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextFor(cmd);
      const spec = storeSpec(ctx, cmd);
      let r: { from: number; to: number; store: string };
      if (spec.kind === 'postgres') {
        const { PgKeyStore } = await import('../keys/pg-store.js');
        r = await PgKeyStore.migrate({ url: spec.url, home: ctx.locations.home, env: ctx.env });
      } else {
        // SQLite migrates on every open (one host, one file): opening it is the migration.
        const { describeKeyStore, keyStoreExists } = await import('../keys/backend.js');
        const { KeyStore } = await import('../keys/store.js');
        const { SCHEMA_VERSION } = await import('../keys/schema.js');
        const existed = keyStoreExists(spec, ctx.locations.home);
        KeyStore.open({ home: ctx.locations.home, env: ctx.env }).close();
        r = { from: existed ? SCHEMA_VERSION : 0, to: SCHEMA_VERSION, store: describeKeyStore(spec, ctx.locations.home) };
      }
      ctx.out.result({ store: r.store, from: r.from, to: r.to }, () => (r.from === r.to ? `${r.store} is at schema ${r.to}, this guardctl's` : `${r.store}: schema ${r.from} -> ${r.to}`));
    });

  keys.command('export')
    .description('write every key (secrets still sealed) and its history to a JSON-lines file, for keys import')
    .requiredOption('--out <file>', 'the file to write (mode 0600; it opens only with this store\'s master key)')
    .action(async (opts: { out: string }, cmd: Command) => {
      const ctx = contextFor(cmd);
      const dump = await withStore(ctx, cmd, undefined, (store) => store.dump());
      const { dumpToLines } = await import('../keys/transfer.js');
      writeFileAtomic(path.resolve(opts.out), dumpToLines(dump), 0o600);
      ctx.out.result({ file: path.resolve(opts.out), keys: dump.keys.length, events: dump.events.length }, () => `Exported ${count(dump.keys.length, 'key')} and ${count(dump.events.length, 'event')} to ${path.resolve(opts.out)}`);
    });

  keys.command('import')
    .description('add the keys of a keys export file to this store, sealed secrets unchanged (same master key)')
    .argument('<file>', 'a file written by guardctl keys export')
    .option('--merge', 'import into a store that already has keys: add the ids it does not hold, leave the others', false)
    .action(async (file: string, opts: { merge: boolean }, cmd: Command) => {
      const ctx = contextFor(cmd);
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (err) {
        throw new GuardError('GUARD_E_USAGE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { hint: 'give the path of a file written by guardctl keys export' });
      }
      const { linesToDump } = await import('../keys/transfer.js');
      const dump = linesToDump(text, file);
      const r = await withStore(ctx, cmd, undefined, (store) => store.restore(dump, opts.merge));
      ctx.out.result({ keys: r.keys, events: r.events, skipped: r.skipped }, () => [
        `Imported ${count(r.keys, 'key')} and ${count(r.events, 'event')}`,
        ...(r.skipped.length ? [`Left ${count(r.skipped.length, 'key')} the store already held: ${r.skipped.join(', ')}`] : []),
      ].join('\n'));
    });
}
