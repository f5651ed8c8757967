/**
 * The gate's answers: reason code -> HTTP status and a message for the client. The codes are part of the
 * contract in ../shared/signing.md and docs/gate.md; a test keeps that page in sync with this table.
 */
export const REASONS = {
  missing_auth: { status: 401, message: 'missing authentication headers' },
  malformed_auth: { status: 401, message: 'malformed authentication header' },
  auth_throttled: { status: 429, message: 'too many failed authentications from this address; try again later' },
  keys_unavailable: { status: 503, message: 'the API key store cannot be reached right now; retry shortly' },
  unknown_key: { status: 401, message: 'unknown, revoked or expired API key' },
  revoked_key: { status: 401, message: 'unknown, revoked or expired API key' },
  expired_key: { status: 401, message: 'unknown, revoked or expired API key' },
  signature_version_required: { status: 401, message: 'this server or tier requires signature version 2 (X-Signature-Version: 2)' },
  ip_denied: { status: 403, message: 'this API key may not be used from this address' },
  timestamp_skew: { status: 401, message: 'X-Timestamp is outside the allowed window; check the client clock against the Date header' },
  duplicate_param: { status: 400, message: 'a parameter appears in both the query and the body' },
  content_sha256_mismatch: { status: 401, message: 'X-Content-SHA256 does not match the body' },
  bad_signature: { status: 401, message: 'signature does not match' },
  // Bearer credentials (docs/signing.md "Bearer credentials").
  bearer_insecure_transport: { status: 403, message: 'bearer credentials are accepted only over TLS, from this machine, or through a trusted proxy that forwards X-Forwarded-Proto: https; sign the request instead (docs/signing.md)' },
  bearer_not_allowed: { status: 401, message: 'this API key does not accept bearer credentials; sign the request (docs/signing.md), or create a key with keys create --allow-bearer' },
  bad_bearer: { status: 401, message: 'the bearer credential does not match the key\'s secret (was it rotated? use the bearer printed by keys rotate)' },
  v1_unsigned_member: { status: 401, message: 'version 1 signatures do not cover this body; sign it with version 2 (X-Signature-Version: 2)' },
  v1_ambiguous_param: { status: 401, message: 'version 1 cannot sign this value unambiguously; sign it with version 2 (X-Signature-Version: 2)' },
  replayed_nonce: { status: 401, message: 'this nonce was already used; send a fresh X-Nonce with every request' },
  nonce_store_full: { status: 503, message: 'the server cannot record more nonces right now; retry shortly' },
  model_not_allowed: { status: 403, message: "this model is not available to the API key's tier" },
  rate_limited: { status: 429, message: 'request rate limit exceeded' },
  concurrency_limited: { status: 429, message: 'too many requests in flight for this API key' },
  quota_exhausted: { status: 429, message: 'daily quota exhausted; it resets at 00:00 UTC' },
  // Not a verdict on the request: the shared state (Redis) could not be asked, so nothing was let through unchecked.
  state_unavailable: { status: 503, message: 'the server cannot check this request right now (its shared state is unreachable); retry shortly' },
} as const;

export type ReasonCode = keyof typeof REASONS;

/** 401 reasons that count towards an address's failed-authentication throttle. */
export function isAuthFailure(code: ReasonCode): boolean {
  return REASONS[code].status === 401;
}
