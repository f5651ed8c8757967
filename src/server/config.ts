import { fileURLToPath } from 'node:url';
import { GuardError } from '../core/errors.js';

/**
 * The serve settings the HTTP side reads, named as `guardctl serve` names them (--max-body -> maxBodyBytes, see
 * docs/serve.md#settings): the daemon hands its validated settings over as they are.
 */
export interface ServerSettings {
  /** '' or a path prefix such as '/guard' under which every route (API, ops, web page) lives. */
  basePath: string;
  /** Larger bodies get 413 body_too_large. */
  maxBodyBytes: number;
  /** Time to receive a whole request from the client (slow or stalled senders: 408): Node's requestTimeout. */
  receiveTimeoutMs: number;
  /** Time the engine may spend on one request (queue + decode) before 504. */
  inferenceTimeoutMs: number;
  /** Most new tokens per answer (a translation's cap; moderation stops at MODERATION_MAX_NEW_TOKENS). */
  maxNewTokens: number;
  /** true: no gate on the model routes (the serve command binds loopback only). */
  insecureNoAuth: boolean;
  /** `--allow-partial`: /readyz is 200 once every model has loaded or failed and one is ready (failed ones listed). */
  allowPartial: boolean;
}

/** What buildServer needs: the settings, and server knobs that have no flag (tests set them). */
export interface ServeConfig extends ServerSettings {
  /**
   * Inactivity allowed on a socket (a client that neither sends nor reads): Node's socket timeout. The socket is
   * also quiet while the engine works, so this must be longer than inferenceTimeoutMs (default: 15 s longer).
   */
  connectionTimeoutMs: number;
  /** How long an idle keep-alive connection stays open. */
  keepAliveTimeoutMs: number;
  /** Most texts in one batch moderation request (`text: [...]` or OpenAI `input: [...]`). */
  maxBatchItems: number;
  /** The web page's static files; null: no web page. */
  webDir: string | null;
}

/** A Qwen3Guard verdict with categories fits in far fewer; a longer answer is a model going astray. */
export const MODERATION_MAX_NEW_TOKENS = 64;

/** The repository's web/ directory (src/server and dist/server are both two levels below the root). */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../web', import.meta.url));

/** The settings' defaults here are those of `guardctl serve` (test/daemon/settings.test.ts keeps them equal). */
export const DEFAULT_SERVE_CONFIG: ServeConfig = {
  basePath: '',
  maxBodyBytes: 1024 * 1024,
  receiveTimeoutMs: 30_000,
  inferenceTimeoutMs: 60_000,
  maxNewTokens: 256,
  insecureNoAuth: false,
  allowPartial: false,
  connectionTimeoutMs: 75_000,
  keepAliveTimeoutMs: 5_000,
  maxBatchItems: 32,
  webDir: DEFAULT_WEB_DIR,
};

/**
 * The defaults with the given fields over them, checked. Values from the command line were validated by the
 * serve settings (src/daemon/settings.ts, naming the flag, variable or config key); this guards programmatic
 * callers, naming the field.
 */
export function serveConfig(overrides: Partial<ServeConfig> = {}): ServeConfig {
  const c: ServeConfig = { ...DEFAULT_SERVE_CONFIG, ...overrides };
  if (overrides.connectionTimeoutMs === undefined) c.connectionTimeoutMs = c.inferenceTimeoutMs + 15_000;
  c.basePath = normalizeBasePath(c.basePath);
  const positive = (name: keyof ServeConfig) => {
    const value = c[name];
    if (!Number.isInteger(value) || (value as number) < 1) {
      throw new GuardError('GUARD_E_CONFIG', `serveConfig: ${name} must be a whole number >= 1`, { hint: `got ${JSON.stringify(value)}` });
    }
  };
  for (const name of ['maxBodyBytes', 'receiveTimeoutMs', 'inferenceTimeoutMs', 'maxNewTokens', 'connectionTimeoutMs', 'keepAliveTimeoutMs', 'maxBatchItems'] as const) positive(name);
  if (c.connectionTimeoutMs <= c.inferenceTimeoutMs) {
    throw new GuardError('GUARD_E_CONFIG', 'serveConfig: connectionTimeoutMs must be longer than inferenceTimeoutMs', {
      hint: `a socket is quiet while its request is in the engine; got ${c.connectionTimeoutMs} <= ${c.inferenceTimeoutMs}`,
    });
  }
  return c;
}

/** '' stays ''; 'guard', '/guard/' and '/guard' become '/guard'; anything but path segments is refused. */
export function normalizeBasePath(value: string): string {
  const trimmed = value.trim().replace(/\/+$/, '');
  if (trimmed === '') return '';
  const withSlash = trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(withSlash) || withSlash.split('/').some((s) => s === '.' || s === '..')) {
    throw new GuardError('GUARD_E_CONFIG', `invalid base path "${value}"`, { hint: 'use path segments of letters, digits, . _ ~ -, for example /guard' });
  }
  return withSlash;
}
