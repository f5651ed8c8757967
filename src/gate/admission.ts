/**
 * Step 8 of the gate (../shared/signing.md), for a request whose signature has verified: its key's rate, then
 * concurrency, then daily quota, with the RateLimit headers of the answer. Taken step by step on a local state, or
 * at once with the nonce record on a networked one (GateState.admit), and, with a state that groups its writes,
 * answered only once committed.
 */
import type { KeyLookup, KeyRecord, Limits } from '../keys/types.js';
import { bucketSize } from './nonce-share.js';
import type { GateState, LimitOutcome } from './state.js';
import { denial, refusal, seconds, type GateResult } from './verdict.js';

export interface AdmissionDeps {
  keys: Pick<KeyLookup, 'touch'>;
  state: GateState;
  /** Where failures of fire-and-forget work (slot release) are reported. */
  onError?: (err: unknown) => void;
}

export class Admission {
  constructor(private readonly deps: AdmissionDeps) {}

  /**
   * The answer waits for the durable state's commit, not the request: a commit waits one turn of the event loop,
   * which the model needs far longer than, so the answer rarely waits at all, while waiting here cost the served
   * path about 5% of its throughput. A crash before the commit loses only requests that were never answered.
   */
  committing(admitted: GateResult): GateResult {
    if (admitted.ok && this.deps.state.durable) {
      const committed = this.deps.state.durable();
      committed.catch(() => admitted.release());
      admitted.committed = committed;
    }
    return admitted;
  }

  /** Step 8, for a request whose nonce is recorded. */
  async stepByStep(record: KeyRecord, limits: Limits, ip: string, now: number): Promise<GateResult> {
    const { state } = this.deps;
    const keyId = record.id;
    const tier = record.tier;
    // 8. rate, then concurrency, then the daily quota
    const headers: Record<string, string> = {};
    if (limits.rate !== null) {
      const burst = bucketSize(limits);
      const bucket = await state.consumeRate(record.id, limits.rate, burst);
      Object.assign(headers, rateLimitHeaders(bucket, ratePolicy(burst, limits.rate)));
      if (!bucket.allowed) return denial('rate_limited', ip, { ...headers, 'Retry-After': seconds(bucket.resetMs) }, { keyId, tier });
    }
    let holdsSlot = false;
    if (limits.concurrency !== null) {
      holdsSlot = await state.acquireSlot(record.id, limits.concurrency);
      if (!holdsSlot) return denial('concurrency_limited', ip, { ...headers, 'Retry-After': '1' }, { keyId, tier });
    }
    const release = this.releaser(record.id, holdsSlot);
    if (limits.daily !== null) {
      let quota: LimitOutcome;
      try {
        quota = await state.consumeQuota(record.id, limits.daily, now);
      } catch (err) {
        // A shared state that stopped answering: the request is refused (503), and must not keep its slot.
        release();
        throw err;
      }
      if (limits.rate === null) Object.assign(headers, rateLimitHeaders(quota, quotaPolicy(limits.daily)));
      if (!quota.allowed) {
        release();
        return denial('quota_exhausted', ip, { ...rateLimitHeaders(quota, quotaPolicy(limits.daily)), 'Retry-After': seconds(quota.resetMs) }, { keyId, tier });
      }
    }
    this.deps.keys.touch?.(record.id, now);
    return { ok: true, key: record, limits, clientIp: ip, headers, release };
  }

  /**
   * Steps 6 and 8 (and the address block again) in one call to a networked state (GateState.admit): the same
   * verdicts and headers as recordNonce and admit() step by step, for one round trip instead of up to five.
   */
  async atOnce(
    admit: NonNullable<GateState['admit']>, record: KeyRecord, limits: Limits, ip: string, nonce: string, ttlMs: number, share: number, now: number,
  ): Promise<GateResult> {
    const keyId = record.id;
    const tier = record.tier;
    const burst = limits.rate === null ? 0 : bucketSize(limits);
    const out = await admit({
      keyId, ip, nonce, ttlMs, nonceShare: share, rate: limits.rate === null ? null : { rate: limits.rate, burst },
      concurrency: limits.concurrency, daily: limits.daily, now,
    });
    switch (out.outcome) {
      case 'blocked': return denial('auth_throttled', ip, { 'Retry-After': seconds(out.blockedMs) }, { keyId, tier });
      case 'replayed': return refusal(this.deps.state, 'replayed_nonce', ip, { keyId, tier });
      case 'full': return denial('nonce_store_full', ip, { 'Retry-After': '1' }, { keyId, tier });
      case 'key_full': return denial('rate_limited', ip, { 'Retry-After': '1' }, { keyId, tier });
    }
    const headers: Record<string, string> = out.rate ? rateLimitHeaders(out.rate, ratePolicy(burst, limits.rate!)) : {};
    const quotaHeaders = out.quota && rateLimitHeaders(out.quota, quotaPolicy(limits.daily!));
    switch (out.outcome) {
      case 'rate_limited': return denial('rate_limited', ip, { ...headers, 'Retry-After': seconds(out.rate!.resetMs) }, { keyId, tier });
      case 'concurrency_limited': return denial('concurrency_limited', ip, { ...headers, 'Retry-After': '1' }, { keyId, tier });
      case 'quota_exhausted': return denial('quota_exhausted', ip, { ...quotaHeaders, 'Retry-After': seconds(out.quota!.resetMs) }, { keyId, tier });
    }
    if (!out.rate && quotaHeaders) Object.assign(headers, quotaHeaders);
    this.deps.keys.touch?.(keyId, now);
    return { ok: true, key: record, limits, clientIp: ip, headers, release: this.releaser(keyId, limits.concurrency !== null) };
  }

  /** Frees the concurrency slot a request holds (none: a no-op); safe to call more than once. */
  private releaser(keyId: string, holdsSlot: boolean): () => void {
    return once(() => {
      if (holdsSlot) this.deps.state.releaseSlot(keyId).catch((err) => this.deps.onError?.(err));
    });
  }
}

/** The RateLimit-Policy of a token bucket: its size, over the seconds it takes to refill. */
function ratePolicy(burst: number, rate: number): string {
  return `${burst};w=${Math.max(1, Math.round(burst / rate))}`;
}

/** The RateLimit-Policy of a daily quota. */
function quotaPolicy(daily: number): string {
  return `${daily};w=86400`;
}

function rateLimitHeaders(outcome: LimitOutcome, policy: string): Record<string, string> {
  return {
    'RateLimit-Limit': String(outcome.limit),
    'RateLimit-Remaining': String(outcome.remaining),
    'RateLimit-Reset': String(Math.ceil(outcome.resetMs / 1000)),
    'RateLimit-Policy': policy,
  };
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      fn();
    }
  };
}
