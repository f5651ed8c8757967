import { current } from './lookup.js';
import type { PgKeyStore } from './pg-store.js';
import { unreachableMessage } from './pg-store.js';
import { isWellFormedToken, KEY_ID_PREFIX } from './token.js';
import type { KeyCredentials, KeyLookup } from './types.js';
import { KeysUnavailableError } from './unavailable.js';

export interface PgKeyLookupOptions {
  /** The polling fallback: how often the store's generation is read (default 1 s; NOTIFY is usually sooner). */
  pollMs?: number;
  /** How long cached keys keep working after the last successful contact with PostgreSQL (default 60 s; 0: none). */
  staleMs?: number;
  flushEveryMs?: number;
  maxEntries?: number;
  now?: () => number;
  /** Called once per change of reachability, with the reason when it is lost (the daemon logs it). */
  onHealth?: (up: boolean, problem?: string) => void;
  /** Called when a batched write of last-used times fails; the batch is kept for the next try. */
  onError?: (err: unknown) => void;
}

export interface KeysBackendHealth {
  up: boolean;
  /** When PostgreSQL last answered (epoch ms). */
  lastOkAt: number;
  problem?: string;
  /** Requests refused with keys_unavailable so far. */
  refused: number;
}

export interface PgKeyLookup extends KeyLookup {
  health(): KeysBackendHealth;
  /** Writes the pending last-used times now. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

interface Entry {
  creds: KeyCredentials | null;
  revision: number;
}

/**
 * The daemon's view of a PostgreSQL key store. Answers from a cache (a hit costs no round trip and stays
 * synchronous); a miss asks PostgreSQL. Changes arrive by LISTEN/NOTIFY (the changed id is dropped from the
 * cache) and, should a notification be lost or the listening connection be down, by polling the store's
 * generation every pollMs, which drops the whole cache when it moved. While PostgreSQL is unreachable, cached
 * keys keep working until staleMs after its last answer; unknown keys, and then every key, are refused with
 * KeysUnavailableError (503 keys_unavailable), never guessed.
 */
export async function createPgKeyLookup(store: PgKeyStore, opts: PgKeyLookupOptions = {}): Promise<PgKeyLookup> {
  const pollMs = opts.pollMs ?? 1000;
  const staleMs = opts.staleMs ?? 60_000;
  const maxEntries = opts.maxEntries ?? 10_000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, Entry>();
  const inflight = new Map<string, Promise<Entry>>();
  const pending = new Map<string, number>();
  // Bumped by every invalidation: a read that started before one must not fill the cache with what it saw.
  let epoch = 0;
  let up = true;
  let lastOkAt = now();
  let problem: string | undefined;
  let refused = 0;
  let seen = await store.generation();
  let unlisten: (() => Promise<void>) | undefined;
  let closed = false;
  let polling: Promise<void> | undefined;

  const invalidate = (id?: string) => {
    epoch++;
    if (id) cache.delete(id);
    else cache.clear();
  };
  const markUp = () => {
    lastOkAt = now();
    if (up) return;
    up = true;
    problem = undefined;
    // Notifications sent while it was away are lost: nothing cached before can be trusted.
    invalidate();
    opts.onHealth?.(true);
  };
  const markDown = (err: unknown) => {
    problem = unreachableMessage(err);
    if (!up) return;
    up = false;
    opts.onHealth?.(false, problem);
  };
  const usable = () => up || (staleMs > 0 && now() - lastOkAt < staleMs);
  const refuse = (why: string): never => {
    refused++;
    throw new KeysUnavailableError(why);
  };

  async function listen(): Promise<void> {
    if (closed || unlisten) return;
    try {
      unlisten = await store.listen((id) => invalidate(id || undefined), () => {
        unlisten = undefined;
        // Only the listener, or the whole server? The poll finds out now, not at its next turn; until the listener
        // is back (the poll starts it again) notifications may be lost, which the generation covers.
        void poll();
      });
      if (closed) await unlisten();
    } catch (err) {
      markDown(err);
    }
  }

  function poll(): Promise<void> {
    polling ??= (async () => {
      try {
        const generation = await store.generation();
        markUp();
        if (generation !== seen) {
          seen = generation;
          invalidate();
        }
        if (!unlisten) await listen();
      } catch (err) {
        markDown(err);
      } finally {
        polling = undefined;
      }
    })();
    return polling;
  }

  async function fetch(id: string): Promise<Entry> {
    let p = inflight.get(id);
    if (!p) {
      const started = epoch;
      p = store.credentials(id).then((found) => {
        markUp();
        const entry: Entry = found ? { creds: found.creds, revision: found.revision } : { creds: null, revision: 0 };
        if (epoch === started) {
          if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
          cache.set(id, entry);
        }
        return entry;
      }, (err: unknown) => {
        markDown(err);
        return refuse(`the key store is unreachable (${unreachableMessage(err)})`);
      }).finally(() => inflight.delete(id));
      inflight.set(id, p);
    }
    return p;
  }

  async function flush(): Promise<void> {
    if (pending.size === 0) return;
    const batch = [...pending];
    pending.clear();
    try {
      await store.touchMany(batch);
    } catch (err) {
      for (const [id, at] of batch) if ((pending.get(id) ?? 0) < at) pending.set(id, at);
      opts.onError?.(err);
    }
  }

  await listen();
  const poller = setInterval(() => void poll(), pollMs);
  const flusher = setInterval(() => void flush(), opts.flushEveryMs ?? 5000);
  // Neither may keep the process alive: close() is what ends them.
  poller.unref();
  flusher.unref();

  return {
    lookup(id) {
      if (!usable()) return refuse(`the key store has been unreachable for ${Math.round((now() - lastOkAt) / 1000)} s (${problem ?? 'no answer'})`);
      const entry = cache.get(id);
      if (entry) return entry.creds === null ? undefined : current(entry.creds, now());
      if (!isWellFormedToken(id, KEY_ID_PREFIX)) return undefined;
      if (!up) return refuse(`the key store is unreachable (${problem ?? 'no answer'}) and this key is not cached`);
      return fetch(id).then((e) => (e.creds === null ? undefined : current(e.creds, now())));
    },
    async refresh(id) {
      const entry = cache.get(id);
      if (!entry || !up) return false;
      try {
        const revision = await store.revision(id);
        markUp();
        if (revision === entry.revision) return false;
        invalidate(id);
        return true;
      } catch (err) {
        markDown(err);
        return false;
      }
    },
    touch(id, at) {
      if (closed) return;
      if ((pending.get(id) ?? 0) < at) pending.set(id, at);
    },
    health: () => ({ up, lastOkAt, problem, refused }),
    flush,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(poller);
      clearInterval(flusher);
      await polling;
      await unlisten?.();
      await flush();
    },
  };
}
