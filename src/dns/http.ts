import { describeCause, dnsError, scrub } from './errors.js';
import type { ProviderContext, ProviderEnvVar } from './types.js';

/**
 * The one HTTP path of the API providers: a timeout per request, and bounded retries with exponential backoff and
 * jitter on 429, 5xx, network errors and the provider's own "slow down" answers. The request is rebuilt for every
 * try because signed requests carry a timestamp and a nonce (Aliyun refuses a reused SignatureNonce). Answers that
 * retrying cannot fix (400, 401, 403, 404) come back to the provider, which turns them into its own error.
 */
export const HTTP_ENV: ProviderEnvVar[] = [
  { name: 'GUARDCTL_DNS_HTTP_TRIES', required: false, secret: false, description: 'Tries per API request before giving up (default 4).' },
  { name: 'GUARDCTL_DNS_HTTP_BACKOFF_MS', required: false, secret: false, description: 'Delay before the first retry in milliseconds, doubled for each further retry, with jitter, at most 8 s (default 500).' },
  { name: 'GUARDCTL_DNS_HTTP_TIMEOUT_MS', required: false, secret: false, description: 'Timeout of one API request in milliseconds (default 30000).' },
];

export interface RetryPolicy {
  tries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  timeoutMs: number;
}

export interface ApiRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body, or undefined when it is not JSON. */
  json: unknown;
}

export interface HttpOptions {
  provider: string;
  ctx: ProviderContext;
  /** Secret values to scrub from messages. */
  secrets: readonly string[];
  /** A provider-level "try again" carried by a non-5xx answer (Tencent Cloud answers RequestLimitExceeded with 200). */
  retryable?: (res: ApiResponse) => boolean;
  /** The provider's error code and message in an answer, for messages ("InternalError: ..."). */
  describe: (res: ApiResponse) => string;
  /** Injected by tests. */
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export type ApiCall = (action: string, build: () => ApiRequest) => Promise<ApiResponse>;

function positiveInt(provider: string, env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw dnsError(provider, `${name} must be a positive whole number, not "${raw}"`, { hint: `unset ${name} to use the default` });
  return n;
}

export function retryPolicy(provider: string, env: NodeJS.ProcessEnv): RetryPolicy {
  return {
    tries: positiveInt(provider, env, 'GUARDCTL_DNS_HTTP_TRIES', 4),
    baseDelayMs: positiveInt(provider, env, 'GUARDCTL_DNS_HTTP_BACKOFF_MS', 500),
    maxDelayMs: 8000,
    timeoutMs: positiveInt(provider, env, 'GUARDCTL_DNS_HTTP_TIMEOUT_MS', 30_000),
  };
}

/** Delay before retry number `retry` (1-based): base * 2^(retry-1), capped, then "equal jitter" (half fixed, half random) so that several guardctl runs hitting one rate limit do not retry in lockstep. */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number, retryAfterSec?: number): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  const jittered = exp / 2 + random() * (exp / 2);
  const floor = retryAfterSec !== undefined ? Math.min(policy.maxDelayMs, retryAfterSec * 1000) : 0;
  return Math.round(Math.max(jittered, floor));
}

function retryAfter(res: ApiResponse): number | undefined {
  const n = Number(res.headers.get('retry-after'));
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

async function send(doFetch: typeof fetch, req: ApiRequest, timeoutMs: number): Promise<ApiResponse> {
  const res = await doFetch(req.url, { method: req.method, headers: req.headers, body: req.body, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** An endpoint override (GUARDCTL_*_ENDPOINT), checked once at create() rather than failing every request. */
export function endpointUrl(provider: string, variable: string, raw: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw dnsError(provider, `${variable} is not an http(s) URL: "${raw}"`, { hint: `unset ${variable} to use the provider's public API` });
  }
  return url;
}

export function createHttp(opts: HttpOptions): ApiCall {
  const policy = retryPolicy(opts.provider, opts.ctx.env);
  const doFetch = opts.fetch ?? fetch;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = opts.random ?? Math.random;
  return async (action, build) => {
    let last = '';
    let lastStatus: number | undefined;
    for (let attempt = 1; ; attempt++) {
      let res: ApiResponse | undefined;
      const req = build(); // outside the try: a bug in building a request is not a network error to retry
      try {
        res = await send(doFetch, req, policy.timeoutMs);
      } catch (err) {
        last = `network error: ${describeCause(err)}`;
        lastStatus = undefined;
      }
      if (res) {
        const transient = res.status === 429 || res.status >= 500 || (opts.retryable?.(res) ?? false);
        if (!transient) return res;
        last = statusText(opts, res);
        lastStatus = res.status;
      }
      if (attempt >= policy.tries) break;
      const delay = backoffMs(policy, attempt, random, res ? retryAfter(res) : undefined);
      opts.ctx.log('warn', scrub(`${opts.provider}: ${action}: ${last}; retrying in ${(delay / 1000).toFixed(1)}s (try ${attempt + 1} of ${policy.tries})`, opts.secrets));
      await sleep(delay);
    }
    throw dnsError(opts.provider, `${action} failed after ${policy.tries} ${policy.tries === 1 ? 'try' : 'tries'}: ${last}`, {
      hint: lastStatus === undefined
        ? 'check that this machine can reach the provider\'s API (DNS, proxy, firewall), then run the command again'
        : 'the provider\'s API kept failing or rate-limiting; wait a few minutes and run the command again (GUARDCTL_DNS_HTTP_TRIES allows more tries)',
      details: { action, status: lastStatus },
    }, opts.secrets);
  };
}

/** "HTTP 503 (InternalError: ...)"; just the provider's code and message when it answered 200 (Tencent Cloud's errors). */
function statusText(opts: Pick<HttpOptions, 'describe'>, res: ApiResponse): string {
  const d = opts.describe(res);
  if (res.status === 200) return d || 'HTTP 200 with an unexpected body';
  return d ? `HTTP ${res.status} (${d})` : `HTTP ${res.status}`;
}

/** The error for an answer that retrying cannot fix: names the provider, the action, the status and the provider's own code. */
export function apiFailure(opts: Pick<HttpOptions, 'provider' | 'describe' | 'secrets'>, action: string, res: ApiResponse, hint: string, code?: string) {
  return dnsError(opts.provider, `${action} failed: ${statusText(opts, res)}`, {
    hint,
    details: { action, status: res.status, providerCode: code },
  }, opts.secrets);
}
