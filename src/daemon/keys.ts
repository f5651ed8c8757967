import type { Logger } from '../core/log.js';
import { createKeyLookup } from '../keys/lookup.js';
import { createPgKeyLookup, type KeysBackendHealth } from '../keys/pg-lookup.js';
import { PgKeyStore } from '../keys/pg-store.js';
import { KeyStore } from '../keys/store.js';
import type { KeyLookup } from '../keys/types.js';
import type { ServeSettings } from './settings.js';

export interface DaemonKeys {
  lookup: KeyLookup;
  kind: 'sqlite' | 'postgres';
  /** For /metrics: reachability of the store and refusals so far. */
  health(): KeysBackendHealth;
  /** Run last-in, first-out, like the daemon's other closers. */
  closers: Array<() => Promise<void> | void>;
}

const NO_EMPTY = 'the key store holds no active key: create one with `guardctl keys create --name NAME --tier TIER`';

/** The key store `serve --keys` names, and the gate's cached lookup over it. */
export async function openDaemonKeys(settings: Pick<ServeSettings, 'keys' | 'keysStaleMs'>, home: string, env: NodeJS.ProcessEnv, logger: Logger): Promise<DaemonKeys> {
  const onError = (err: unknown) => logger.error({ err: (err as Error).message }, 'key store');
  if (settings.keys.kind === 'postgres') {
    const store = await PgKeyStore.open({ url: settings.keys.url, home, env });
    const staleS = settings.keysStaleMs / 1000;
    const lookup = await createPgKeyLookup(store, {
      staleMs: settings.keysStaleMs,
      onError,
      onHealth: (up, problem) => {
        if (up) logger.info({ keys: store.path }, 'key store reachable again');
        else logger.error({ keys: store.path, problem, staleSeconds: staleS }, `key store unreachable: cached keys keep working for ${staleS} s after its last answer, other requests get 503 keys_unavailable`);
      },
    });
    logger.info({ keys: store.path, staleSeconds: staleS }, 'key store');
    if ((await store.health()).active === 0) logger.warn(NO_EMPTY);
    // The lookup is closed first: its final flush of last-used times needs the store open.
    return { lookup, kind: 'postgres', health: () => lookup.health(), closers: [() => store.close(), () => lookup.close()] };
  }
  const store = KeyStore.open({ home, env });
  const lookup = createKeyLookup(store, { onError });
  if (store.health().active === 0) logger.warn(NO_EMPTY);
  const since = Date.now();
  return { lookup, kind: 'sqlite', health: () => ({ up: true, lastOkAt: since, refused: 0 }), closers: [() => store.close(), () => lookup.close()] };
}
