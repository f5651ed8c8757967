import { fileURLToPath } from 'node:url';
import { GuardError } from '../core/errors.js';
import type { Task } from '../infer/types.js';

/** What the HTTP side of `guardctl serve` needs to know; the serve command fills it from flags > env > file. */
export interface ServeConfig {
  /** '' or a path prefix such as '/guard' under which every route (API, ops, web page) lives. */
  basePath: string;
  /** Larger bodies get 413 body_too_large. */
  maxBodyBytes: number;
  /** Time to receive a whole request from the client (slow or stalled senders): Node's requestTimeout. */
  requestTimeoutMs: number;
  /**
   * Inactivity allowed on a socket (a client that neither sends nor reads): Node's socket timeout. The socket is
   * also quiet while the engine works, so this must be longer than inferenceTimeoutMs (default: 15 s longer).
   */
  connectionTimeoutMs: number;
  /** How long an idle keep-alive connection stays open. */
  keepAliveTimeoutMs: number;
  /** Time the engine may spend on one request (queue + decode) before 504. */
  inferenceTimeoutMs: number;
  /** Most new tokens per answer, per task. */
  maxNewTokens: Record<Task, number>;
  /** Most texts in one batch moderation request (`text: [...]` or OpenAI `input: [...]`). */
  maxBatchItems: number;
  /** false: no gate on the model routes (`--insecure-no-auth`; the serve command binds loopback only). */
  auth: boolean;
  /** The web page's static files; null: no web page. */
  webDir: string | null;
  /** `--allow-partial`: /readyz is 200 once every model has loaded or failed and one is ready (failed ones listed). */
  allowPartial?: boolean;
}

/** The repository's web/ directory (src/server and dist/server are both two levels below the root). */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../web', import.meta.url));

export const DEFAULT_SERVE_CONFIG: ServeConfig = {
  basePath: '',
  maxBodyBytes: 1024 * 1024,
  requestTimeoutMs: 30_000,
  connectionTimeoutMs: 75_000,
  keepAliveTimeoutMs: 5_000,
  inferenceTimeoutMs: 60_000,
  maxNewTokens: { moderate: 64, translate: 256 },
  maxBatchItems: 32,
  auth: true,
  webDir: DEFAULT_WEB_DIR,
};

/** The defaults with the given fields over them, checked; a bad value is a GUARD_E_CONFIG naming the field. */
export function serveConfig(overrides: Partial<ServeConfig> = {}): ServeConfig {
  const c: ServeConfig = {
    ...DEFAULT_SERVE_CONFIG,
    ...overrides,
    maxNewTokens: { ...DEFAULT_SERVE_CONFIG.maxNewTokens, ...overrides.maxNewTokens },
  };
  if (overrides.connectionTimeoutMs === undefined) c.connectionTimeoutMs = c.inferenceTimeoutMs + 15_000;
  c.basePath = normalizeBasePath(c.basePath);
  const positive = (name: string, value: number) => {
    if (!Number.isInteger(value) || value < 1) {
      throw new GuardError('GUARD_E_CONFIG', `serve.${name} must be a whole number >= 1`, { hint: `got ${JSON.stringify(value)}` });
    }
  };
  positive('maxBodyBytes', c.maxBodyBytes);
  positive('requestTimeoutMs', c.requestTimeoutMs);
  positive('connectionTimeoutMs', c.connectionTimeoutMs);
  positive('keepAliveTimeoutMs', c.keepAliveTimeoutMs);
  positive('inferenceTimeoutMs', c.inferenceTimeoutMs);
  positive('maxBatchItems', c.maxBatchItems);
  if (c.connectionTimeoutMs <= c.inferenceTimeoutMs) {
    throw new GuardError('GUARD_E_CONFIG', 'serve.connectionTimeoutMs must be longer than serve.inferenceTimeoutMs', {
      hint: `a socket is quiet while its request is in the engine; got ${c.connectionTimeoutMs} <= ${c.inferenceTimeoutMs}`,
    });
  }
  positive('maxNewTokens.moderate', c.maxNewTokens.moderate);
  positive('maxNewTokens.translate', c.maxNewTokens.translate);
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
