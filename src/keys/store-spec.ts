import { pick } from '../core/config.js';
import { usageError } from '../core/errors.js';
import { isPostgresUrl, redactUrl } from './pg-url.js';

// Naming the store is apart from opening it (backend.ts), so that flags and settings load no database driver.
/** Where keys live: `sqlite` (`<home>/keys.db`, the default) or a postgres:// URL. */
export type KeyStoreSpec = { kind: 'sqlite' } | { kind: 'postgres'; url: string };

/** --keys > GUARDCTL_KEYS > the config file's `keys.store` > sqlite. */
export function resolveKeyStore(flag: string | undefined, env: NodeJS.ProcessEnv, fromConfig: unknown, source: string): KeyStoreSpec {
  const where = flag ? '--keys' : env.GUARDCTL_KEYS ? 'GUARDCTL_KEYS' : `keys.store in ${source}`;
  const value = pick<string>(flag, env.GUARDCTL_KEYS, fromConfig === undefined || fromConfig === null ? undefined : String(fromConfig));
  return parseKeyStore(value, where);
}

export function parseKeyStore(value: string | undefined, where: string): KeyStoreSpec {
  if (value === undefined || value === 'sqlite') return { kind: 'sqlite' };
  if (isPostgresUrl(value)) {
    try {
      new URL(value);
    } catch {
      throw usageError(`${where} is not a valid URL (${redactUrl(value)})`, 'write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE');
    }
    return { kind: 'postgres', url: value };
  }
  throw usageError(`${where} must be "sqlite" or a postgres:// URL, got "${value.slice(0, 40)}"`, 'for example GUARDCTL_KEYS=postgres://guardctl:PASSWORD@db.internal:5432/guardctl');
}
