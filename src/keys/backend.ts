import fs from 'node:fs';
import path from 'node:path';
import { redactUrl } from './pg-url.js';
import type { KeyStoreSpec } from './store-spec.js';
import { type CreateKeyInput, type KeyEvent, KEYSTORE_FILE, KeyStore, type KeyStoreHealth } from './store.js';
import type { ImportResult, StoreDump } from './transfer.js';
import type { KeyRecord, Tier } from './types.js';

/**
 * The seam between `guardctl keys` and where keys live: the SQLite file of one host, or PostgreSQL shared by many.
 * Asynchronous because PostgreSQL is; the SQLite store stays synchronous underneath (the daemon's hot path uses it
 * directly through lookup.ts), and this adapter only wraps its answers.
 */
export interface KeyBackend {
  readonly kind: 'sqlite' | 'postgres';
  /** The file, or the URL without its password. */
  readonly path: string;
  create(input: CreateKeyInput): Promise<{ record: KeyRecord; secret: string }>;
  list(): Promise<KeyRecord[]>;
  get(id: string): Promise<KeyRecord>;
  revoke(id: string): Promise<KeyRecord>;
  rotate(id: string, graceMs: number): Promise<{ record: KeyRecord; secret: string }>;
  events(id: string): Promise<KeyEvent[]>;
  health(): Promise<KeyStoreHealth>;
  dump(): Promise<StoreDump>;
  restore(dump: StoreDump, merge: boolean): Promise<ImportResult>;
  close(): Promise<void>;
}

export type { KeyStoreSpec } from './store-spec.js';

export function describeKeyStore(spec: KeyStoreSpec, home: string): string {
  return spec.kind === 'sqlite' ? path.join(home, KEYSTORE_FILE) : redactUrl(spec.url);
}

/** For SQLite: whether the file exists yet (reading commands answer "none" rather than create one). */
export function keyStoreExists(spec: KeyStoreSpec, home: string): boolean {
  return spec.kind === 'postgres' || fs.existsSync(path.join(home, KEYSTORE_FILE));
}

export interface OpenBackendOptions {
  home: string;
  env: NodeJS.ProcessEnv;
  now?: () => number;
  tiers?: Record<string, Tier>;
  readonly?: boolean;
}

export async function openKeyBackend(spec: KeyStoreSpec, opts: OpenBackendOptions): Promise<KeyBackend> {
  if (spec.kind === 'postgres') {
    // Loaded only here: the pg driver costs every SQLite command tens of milliseconds at start-up.
    const { PgKeyStore } = await import('./pg-store.js');
    const store = await PgKeyStore.open({ url: spec.url, home: opts.home, env: opts.env, now: opts.now, tiers: opts.tiers });
    return Object.assign(store, { kind: 'postgres' as const });
  }
  return sqliteBackend(KeyStore.open({ home: opts.home, env: opts.env, now: opts.now, tiers: opts.tiers, readonly: opts.readonly }));
}

export function sqliteBackend(store: KeyStore): KeyBackend {
  return {
    kind: 'sqlite',
    path: store.path,
    create: async (input) => store.create(input),
    list: async () => store.list(),
    get: async (id) => store.get(id),
    revoke: async (id) => store.revoke(id),
    rotate: async (id, graceMs) => store.rotate(id, graceMs),
    events: async (id) => store.events(id),
    health: async () => store.health(),
    dump: async () => store.dump(),
    restore: async (dump, merge) => store.restore(dump, merge),
    close: async () => store.close(),
  };
}
