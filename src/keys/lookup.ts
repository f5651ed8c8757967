import type { KeyStore } from './store.js';
import { isWellFormedToken, KEY_ID_PREFIX } from './token.js';
import type { KeyCredentials, KeyLookup } from './types.js';

export interface KeyLookupOptions {
  /** How often, at most, to ask SQLite whether another process changed the store (default 500 ms). */
  checkEveryMs?: number;
  /** How often batched last-used times are written (default 5 s). */
  flushEveryMs?: number;
  /** Cached ids (positive and negative) before the oldest are dropped (default 10 000). */
  maxEntries?: number;
  now?: () => number;
  /** Called when a batched write of last-used times fails; the batch is kept for the next try. */
  onError?: (err: unknown) => void;
}

/** A KeyLookup (synchronous, touch always present) that must be closed. */
export interface CachedKeyLookup extends KeyLookup {
  lookup(id: string): KeyCredentials | undefined;
  touch(id: string, at: number): void;
  refresh(id: string): boolean;
  /** Writes the pending last-used times now. */
  flush(): void;
  /** Stops the timer and flushes; the store stays open (its owner closes it). */
  close(): void;
}

/**
 * The daemon's hot-path view of the key store: credentials cached per id, including "no such key", and the
 * whole cache dropped when `PRAGMA data_version` moves, which is how a `guardctl keys revoke` run in another
 * process reaches a running daemon within checkEveryMs, without a restart or any signal.
 */
export function createKeyLookup(store: KeyStore, opts: KeyLookupOptions = {}): CachedKeyLookup {
  const checkEveryMs = opts.checkEveryMs ?? 500;
  const maxEntries = opts.maxEntries ?? 10_000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, KeyCredentials | null>();
  const pending = new Map<string, number>();
  let seen = version();
  let checkedAt = now();
  let closed = false;

  function version(): string {
    return `${store.dataVersion()}:${store.localWrites()}`;
  }

  function freshen(t: number): void {
    if (t - checkedAt < checkEveryMs && t >= checkedAt) return;
    checkedAt = t;
    revalidate();
  }

  /** Drops the cache if the store moved since it was filled; true if it did. */
  function revalidate(): boolean {
    const v = version();
    if (v === seen) return false;
    seen = v;
    cache.clear();
    return true;
  }

  function flush(): void {
    if (pending.size === 0) return;
    const batch = [...pending];
    pending.clear();
    try {
      store.touchMany(batch);
    } catch (err) {
      for (const [id, at] of batch) if ((pending.get(id) ?? 0) < at) pending.set(id, at);
      opts.onError?.(err);
    }
  }

  const timer = setInterval(flush, opts.flushEveryMs ?? 5000);
  // Last-used times are a convenience: they must never keep the process alive.
  timer.unref();

  return {
    lookup(id) {
      const t = now();
      freshen(t);
      let entry = cache.get(id);
      if (entry === undefined) {
        // Malformed ids never reach SQLite, and never fill the cache: so a cached id needs no checksum (a CRC32
        // per request) again.
        if (!isWellFormedToken(id, KEY_ID_PREFIX)) return undefined;
        entry = store.credentials(id) ?? null;
        if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
        cache.set(id, entry);
      }
      return entry === null ? undefined : current(entry, t);
    },
    refresh(id) {
      if (!cache.has(id)) return false;
      checkedAt = now();
      return revalidate();
    },
    touch(id, at) {
      if (closed) return;
      if ((pending.get(id) ?? 0) < at) pending.set(id, at);
    },
    flush,
    close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      flush();
    },
  };
}

/** Cached credentials as of time t: a rotation grace or the key's own expiry may have ended since caching. */
export function current(entry: KeyCredentials, t: number): KeyCredentials {
  const { record } = entry;
  if (record.status !== 'active' || (record.expiresAt !== null && record.expiresAt <= t)) {
    return entry.secrets.length === 0 ? entry : { record, secrets: [] };
  }
  if (entry.secrets.every((s) => s.notAfter === null || s.notAfter > t)) return entry;
  return { record, secrets: entry.secrets.filter((s) => s.notAfter === null || s.notAfter > t) };
}
