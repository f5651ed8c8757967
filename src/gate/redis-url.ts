import { usageError } from '../core/errors.js';
import { parseDuration } from '../core/duration.js';

/** What `--state redis://...` says: where Redis is, and the few settings of the shared state. */
export interface RedisStateUrl {
  /** The URL ioredis connects to (credentials included), without guardctl's own parameters. */
  connect: string;
  /** The same without credentials: for logs, /readyz and errors. */
  describe: string;
  /** A daemon that dies holding a concurrency slot holds it at most this long (renewed while a request runs). */
  leaseMs: number;
  /** Longest wait for one Redis command before the request is refused with 503 state_unavailable. */
  timeoutMs: number;
  /** Prefix of every Redis key, so that several deployments can share one Redis. */
  prefix: string;
}

export const REDIS_STATE_DEFAULTS = { leaseMs: 30_000, timeoutMs: 2_000, prefix: 'guardctl:' } as const;

const FORM = 'redis://[user:pass@]host:port[/db][?lease=30s&timeout=2s&prefix=guardctl:] (rediss:// for TLS)';

export function isRedisUrl(text: string): boolean {
  return /^rediss?:\/\//i.test(text);
}

/**
 * Parses a state URL; errors name `where` (the flag, variable or config key) and never echo the password.
 * Valkey speaks the same protocol: its URL is a redis:// one.
 */
export function parseRedisStateUrl(text: string, where: string): RedisStateUrl {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError(`${where} is not a valid URL`, `write it as ${FORM}`);
  }
  const scheme = url.protocol.toLowerCase();
  if (scheme !== 'redis:' && scheme !== 'rediss:') throw usageError(`${where} must start with redis:// or rediss://`, `write it as ${FORM}`);
  if (!url.hostname) throw usageError(`${where} names no host`, `write it as ${FORM}`);
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,2}$/.test(db)) throw usageError(`${where}: the database must be a number (/0 to /15), got "/${db}"`, `write it as ${FORM}`);
  const out: RedisStateUrl = { connect: '', describe: '', ...REDIS_STATE_DEFAULTS };
  for (const [name, value] of url.searchParams) {
    if (name === 'lease') out.leaseMs = duration(value, `${where} lease`, 1_000);
    else if (name === 'timeout') out.timeoutMs = duration(value, `${where} timeout`, 10);
    else if (name === 'prefix') {
      if (!/^[A-Za-z0-9:._-]{1,64}$/.test(value)) throw usageError(`${where} prefix must be 1-64 characters of A-Z a-z 0-9 : . _ -`);
      out.prefix = value;
    } else throw usageError(`${where} has an unknown parameter "${name}"`, 'known: lease, timeout, prefix');
  }
  url.search = '';
  out.connect = url.toString();
  const port = url.port || '6379';
  out.describe = `${scheme}//${url.hostname}:${port}${db ? `/${db}` : ''}`;
  return out;
}

function duration(value: string, where: string, minMs: number): number {
  const ms = /^\d+$/.test(value) ? Number(value) * 1000 : parseDuration(value, where);
  if (!(ms >= minMs)) throw usageError(`${where} must be at least ${minMs} ms, got "${value}"`);
  return ms;
}
