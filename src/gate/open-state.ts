import path from 'node:path';
import { MemoryGateState } from './memory-state.js';
import type { GateOptions } from './options.js';
import { RedisGateState } from './redis-state.js';
import { isRedisUrl, parseRedisStateUrl } from './redis-url.js';
import { GATE_STATE_FILE, SqliteGateState } from './sqlite-state.js';
import type { GateState } from './state.js';

/** sqlite, memory, or a redis:// / rediss:// URL (Redis or Valkey, shared by several daemons). */
export type StateKind = 'sqlite' | 'memory' | `redis://${string}` | `rediss://${string}`;

/** The gate state `guardctl serve --state KIND` runs with; the file lives next to keys.db, not in it. */
export function openGateState(kind: StateKind, home: string, options: Pick<GateOptions, 'nonceCapacity' | 'authFailures'>, warn: (message: string) => void): GateState & { describe: string } {
  if (kind === 'memory') {
    warn('--state memory: nonces, rate buckets, daily quotas and address blocks are lost on restart (captured requests could be replayed, quotas start again); for tests and experiments only');
    return Object.assign(new MemoryGateState(options), { describe: 'memory' });
  }
  if (isRedisUrl(kind)) return new RedisGateState({ ...parseRedisStateUrl(kind, '--state'), ...options });
  const file = path.join(home, GATE_STATE_FILE);
  return Object.assign(SqliteGateState.open({ file, ...options }), { describe: file });
}
