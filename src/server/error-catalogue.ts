/**
 * Every error code the daemon answers over HTTP, with its status, default message and a hint for whoever reads
 * docs/errors.md. This is the only place a status is chosen: the gate and the engine name a code, the server
 * looks it up here. docs/errors.md's "HTTP error codes" section is this table printed by catalogueMarkdown()
 * (test/server/error-catalogue.test.ts keeps them equal). To add a code, add a row; nothing else.
 */
export interface HttpErrorDef {
  status: number;
  /** Sent as error.message unless the call site has a more specific one (gate reasons append a detail). */
  message: string;
  /** What the client or operator can do about it (documentation only; not sent). */
  hint: string;
}

export const HTTP_ERRORS = {
  // The gate (src/gate/gate.ts), in the order its checks run.
  auth_throttled: { status: 429, message: 'too many failed authentications from this address; try again later', hint: 'wait for Retry-After; fix the signing that failed first' },
  missing_auth: { status: 401, message: 'missing authentication headers', hint: 'send X-API-Key, X-Timestamp, X-Nonce and X-Signature (docs/signing.md)' },
  malformed_auth: { status: 401, message: 'malformed authentication header', hint: 'the message names the header; a nonce is 8-128 of A-Z a-z 0-9 _ -' },
  keys_unavailable: { status: 503, message: 'the API key store cannot be reached right now; retry shortly', hint: 'operator: check the PostgreSQL key store (--keys, --keys-stale)' },
  unknown_key: { status: 401, message: 'unknown, revoked or expired API key', hint: 'check the key id; `guardctl keys list` shows the keys' },
  revoked_key: { status: 401, message: 'unknown, revoked or expired API key', hint: 'the key was revoked: ask for a new one' },
  expired_key: { status: 401, message: 'unknown, revoked or expired API key', hint: 'the key has expired: ask for a new one' },
  signature_version_required: { status: 401, message: 'this server or tier requires signature version 2 (X-Signature-Version: 2)', hint: 'sign with version 2' },
  ip_denied: { status: 403, message: 'this API key may not be used from this address', hint: "send from an address in the key's allow-list (keys create --allow-ip)" },
  timestamp_skew: { status: 401, message: 'X-Timestamp is outside the allowed window; check the client clock against the Date header', hint: 'synchronise the client clock (NTP)' },
  duplicate_param: { status: 400, message: 'a parameter appears in both the query and the body', hint: 'send each parameter once' },
  content_sha256_mismatch: { status: 401, message: 'X-Content-SHA256 does not match the body', hint: 'hash the exact bytes sent' },
  bad_signature: { status: 401, message: 'signature does not match', hint: 'compare your string to sign with `guardctl sign --explain`' },
  bearer_insecure_transport: { status: 403, message: 'bearer credentials are accepted only over TLS, from this machine, or through a trusted proxy that forwards X-Forwarded-Proto: https', hint: 'use https, or sign the request (docs/signing.md); the secret crossed the network in the clear: rotate the key' },
  bearer_not_allowed: { status: 401, message: 'this API key does not accept bearer credentials', hint: 'sign the request (docs/signing.md), or use a key made with keys create --allow-bearer' },
  bad_bearer: { status: 401, message: "the bearer credential does not match the key's secret", hint: 'the key was rotated: use the bearer printed by keys rotate' },
  v1_unsigned_member: { status: 401, message: 'version 1 signatures do not cover this body; sign it with version 2 (X-Signature-Version: 2)', hint: 'sign with version 2' },
  v1_ambiguous_param: { status: 401, message: 'version 1 cannot sign this value unambiguously; sign it with version 2 (X-Signature-Version: 2)', hint: 'sign with version 2' },
  replayed_nonce: { status: 401, message: 'this nonce was already used; send a fresh X-Nonce with every request', hint: 'a retry needs a new nonce and a new signature' },
  nonce_store_full: { status: 503, message: 'the server cannot record more nonces right now; retry shortly', hint: 'retry with a fresh nonce' },
  model_not_allowed: { status: 403, message: "this model is not available to the API key's tier", hint: "use a model of the key's tier (`guardctl keys tiers`)" },
  rate_limited: { status: 429, message: 'request rate limit exceeded', hint: 'wait for Retry-After (RateLimit-* headers)' },
  concurrency_limited: { status: 429, message: 'too many requests in flight for this API key', hint: 'wait for an answer before sending more' },
  quota_exhausted: { status: 429, message: 'daily quota exhausted; it resets at 00:00 UTC', hint: 'wait for 00:00 UTC or use a higher tier' },
  state_unavailable: { status: 503, message: 'the server cannot check this request right now (its shared state is unreachable); retry shortly', hint: 'operator: check Redis (--state)' },

  // The request itself.
  bad_request: { status: 400, message: 'the request is malformed', hint: 'the message says what; this is HTTP-level (URL, Content-Length)' },
  invalid_json: { status: 400, message: 'the request body is not valid JSON', hint: 'send one JSON object' },
  json_too_deep: { status: 400, message: 'the request body nests arrays and objects too deeply', hint: 'flatten the body' },
  not_found: { status: 404, message: 'no route or file matches this method and path', hint: 'check the method, the path and --base-path' },
  request_timeout: { status: 408, message: 'the request did not arrive in time', hint: 'send the whole request within --receive-timeout' },
  body_too_large: { status: 413, message: 'the request body is larger than this server accepts', hint: 'send less, or raise --max-body' },
  uri_too_long: { status: 414, message: 'the request URL is too long', hint: 'move parameters into the body' },
  unsupported_media_type: { status: 415, message: 'send the body as application/json', hint: 'set Content-Type: application/json' },
  invalid_request: { status: 422, message: 'the request is invalid', hint: 'error.field names the member and the message what it must be' },
  unsupported_language: { status: 422, message: 'the language is not supported', hint: 'GET /api/v1/languages lists the codes' },
  wrong_task: { status: 422, message: 'the model does not serve this route', hint: 'name a model of the route\'s task (GET /api/v1/models)' },
  input_too_long: { status: 422, message: 'the input is longer than the model accepts', hint: 'send less text, or raise --max-input-tokens' },
  headers_too_large: { status: 431, message: 'the request headers are too large', hint: 'send fewer or shorter headers' },
  cancelled: { status: 499, message: 'the client closed the connection before the answer', hint: 'never sent: recorded in metrics and the audit log (nginx\'s 499)' },

  // The server and its models.
  internal_error: { status: 500, message: 'internal error', hint: 'a bug: the log has the details under the request id' },
  engine_failed: { status: 500, message: 'the inference engine failed', hint: 'operator: the log has the details under the request id' },
  ambiguous_candidates: { status: 500, message: 'the inference engine failed', hint: 'the model\'s tokenizer cannot tell the answers apart: use a supported model' },
  bad_model_output: { status: 502, message: 'the moderation model gave an answer that does not parse', hint: 'operator: check that the model is a Qwen3Guard-Gen export' },
  model_not_found: { status: 404, message: 'no such model', hint: 'GET /api/v1/models lists them' },
  not_ready: { status: 503, message: 'the model is not ready', hint: 'retry after Retry-After while it warms up; a failed model needs the operator' },
  queue_full: { status: 503, message: 'the server is busy; retry shortly', hint: 'retry after Retry-After, or raise --max-queue' },
  shutting_down: { status: 503, message: 'the server is shutting down; retry on another instance', hint: 'retry after Retry-After' },
  timeout: { status: 504, message: 'the model did not answer in time', hint: 'send less, or raise --inference-timeout' },
} as const satisfies Record<string, HttpErrorDef>;

export type HttpErrorCode = keyof typeof HTTP_ERRORS;

export function isHttpErrorCode(code: unknown): code is HttpErrorCode {
  return typeof code === 'string' && Object.hasOwn(HTTP_ERRORS, code);
}

/** docs/errors.md's table, in status order (the catalogue's order within a status). */
export function catalogueMarkdown(): string {
  const rows = (Object.entries(HTTP_ERRORS) as [HttpErrorCode, HttpErrorDef][])
    .map(([code, d], i) => ({ code, d, i }))
    .sort((a, b) => a.d.status - b.d.status || a.i - b.i)
    .map(({ code, d }) => `| ${d.status} | \`${code}\` | ${escape(d.message)} | ${escape(d.hint)} |`);
  return ['| status | code | message | hint |', '|---|---|---|---|', ...rows].join('\n') + '\n';
}

function escape(text: string): string {
  return text.replace(/\|/g, '\\|');
}
