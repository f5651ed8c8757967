/**
 * Why the gate refuses a request: its reason codes, part of the contract in ../shared/signing.md and
 * docs/signing.md. The gate names a reason; the server gives it a status and a message from its error catalogue
 * (src/server/error-catalogue.ts), where every one of these codes has a row. `authFailure`: the reason counts
 * towards an address's failed-authentication throttle (auth_throttled).
 */
export const REASONS = {
  missing_auth: { authFailure: true },
  malformed_auth: { authFailure: true },
  auth_throttled: { authFailure: false },
  keys_unavailable: { authFailure: false },
  unknown_key: { authFailure: true },
  revoked_key: { authFailure: true },
  expired_key: { authFailure: true },
  signature_version_required: { authFailure: true },
  ip_denied: { authFailure: false },
  timestamp_skew: { authFailure: true },
  duplicate_param: { authFailure: false },
  content_sha256_mismatch: { authFailure: true },
  bad_signature: { authFailure: true },
  // Bearer credentials (docs/signing.md "Bearer credentials"). Plain HTTP from elsewhere is refused before the key
  // is looked up and says nothing about the sender's key: not a failed authentication.
  bearer_insecure_transport: { authFailure: false },
  bearer_not_allowed: { authFailure: true },
  bad_bearer: { authFailure: true },
  v1_unsigned_member: { authFailure: true },
  v1_ambiguous_param: { authFailure: true },
  replayed_nonce: { authFailure: true },
  nonce_store_full: { authFailure: false },
  model_not_allowed: { authFailure: false },
  rate_limited: { authFailure: false },
  concurrency_limited: { authFailure: false },
  quota_exhausted: { authFailure: false },
  // Not a verdict on the request: the shared state (Redis) could not be asked, so nothing was let through unchecked.
  state_unavailable: { authFailure: false },
} as const satisfies Record<string, { authFailure: boolean }>;

export type ReasonCode = keyof typeof REASONS;

/** Reasons that count towards an address's failed-authentication throttle (every 401 of the contract). */
export function isAuthFailure(code: ReasonCode): boolean {
  return REASONS[code].authFailure;
}
