import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { bearerAllowed, effectiveLimits, modelAllowed } from '../keys/tiers.js';
import { isWellFormedToken, KEY_ID_PREFIX, parseBearer } from '../keys/token.js';
import type { KeyCredentials, KeyLookup, KeyRecord, ModelRef, Tier } from '../keys/types.js';
import { KeysUnavailableError } from '../keys/unavailable.js';
import {
  DuplicateParamError, hmac, parseQuery, sha256Hex, v1Params, v1StringToSign, v2CanonicalQuery, v2StringToSign,
} from './canonical.js';
import { clientIp, isLoopback, normalizeIp, parseCidrList } from './ip.js';
import type { GateOptions } from './options.js';
import type { ReasonCode } from './reasons.js';
import { nonceShare } from './nonce-share.js';
import { Admission } from './admission.js';
import type { GateState } from './state.js';
import { denial, refusal, seconds, type DenialExtra, type GateDenial, type GateResult } from './verdict.js';
import { v1Problem } from './v1-coverage.js';

export type { GateDenial, GatePass, GateResult } from './verdict.js';

/** A request as the gate sees it, independent of the HTTP framework. */
export interface GateRequest {
  method: string;
  /** The path the client requested, without the query string. */
  path: string;
  rawQuery: string;
  headers: IncomingHttpHeaders;
  /** Raw body bytes (absent or empty when there is none). */
  body?: Buffer;
  /** The parsed JSON body, when the body is JSON. */
  json?: unknown;
  peerIp: string;
  /** The request arrived over TLS on this socket (bearer credentials need it, or a local or proxied-TLS client). */
  tls?: boolean;
  /** The model the request asks for; only called once the signature has verified. */
  model?: () => ModelRef | undefined;
  /** The query and body member names the route reads (version 1's `&NAME=` rule); absent: any name. */
  accepts?: ReadonlySet<string>;
}

/** What the header stage needs: it runs before the body is read. */
export type GateHeaderRequest = Pick<GateRequest, 'headers' | 'peerIp' | 'tls'>;

/** The header stage's verdict on a request, handed to check() so that nothing is looked up or parsed twice. */
export interface GateHeaderPass {
  ok: true;
  /** How the request authenticates: an HMAC signature (the default), or a bearer credential (opt-in per key). */
  scheme: 'hmac' | 'bearer';
  /** scheme 'bearer': the secret it carries, compared in check(); the HMAC fields below are then empty. */
  bearerSecret?: string;
  clientIp: string;
  keyId: string;
  timestamp: string;
  nonce: string;
  signature: string;
  version: '1' | '2';
  contentSha?: string;
  creds: KeyCredentials;
}

export interface GateDeps {
  keys: KeyLookup;
  state: GateState;
  tiers: Record<string, Tier>;
  options: GateOptions;
  now?: () => number;
  /** Where failures of fire-and-forget work (slot release) are reported. */
  onError?: (err: unknown) => void;
}

const NONCE = /^[A-Za-z0-9_-]{8,128}$/;
/** 64 lowercase hex digits; a loop, since the regexp test showed in the profile of every request. */
function isHex64(s: string): boolean {
  if (s.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** The request gate of ../shared/signing.md: every check in its order, the first failure answers. */
export class Gate {
  private readonly now: () => number;
  private readonly admission: Admission;

  constructor(private readonly deps: GateDeps) {
    this.now = deps.now ?? Date.now;
    this.admission = new Admission(deps);
  }

  /**
   * Steps 1-4 and the address block: everything the headers allow, run before the body is read so that a sender
   * without a valid key id and timestamp costs no body parsing. Its failures count towards the address block.
   */
  async checkHeaders(req: GateHeaderRequest): Promise<GateHeaderPass | GateDenial> {
    const { options, state } = this.deps;
    const ip = clientIp(req.peerIp, header(req.headers, 'x-forwarded-for'), options.trustedProxies);
    const blockedOrPromise = state.authBlockedFor(ip);
    const blocked = typeof blockedOrPromise === 'number' ? blockedOrPromise : await blockedOrPromise;
    if (blocked > 0) return this.deny('auth_throttled', ip, { 'Retry-After': seconds(blocked) });

    // 1. headers present and well formed
    const keyId = header(req.headers, 'x-api-key');
    const timestamp = header(req.headers, 'x-timestamp');
    const nonce = header(req.headers, 'x-nonce');
    const signature = header(req.headers, 'x-signature');
    // A bearer credential only when no signing header is present: a signed request never falls back to it.
    const authorization = header(req.headers, 'authorization');
    if (!keyId && !timestamp && !nonce && !signature && authorization !== undefined && /^bearer(\s|$)/i.test(authorization)) {
      return this.checkBearer(req, ip, authorization.slice(6).trim());
    }
    if (!keyId || !timestamp || !nonce || !signature) {
      const missing = [['X-API-Key', keyId], ['X-Timestamp', timestamp], ['X-Nonce', nonce], ['X-Signature', signature]]
        .filter(([, v]) => !v).map(([n]) => n);
      return this.fail('missing_auth', ip, { detail: `missing ${missing.join(', ')}` });
    }
    const version = header(req.headers, 'x-signature-version') ?? '1';
    const contentSha = header(req.headers, 'x-content-sha256');
    const malformed = !this.knownGoodId(keyId!) ? 'X-API-Key (not a guardctl key id, or its checksum does not match)'
      : !/^\d{1,12}$/.test(timestamp!) ? 'X-Timestamp (Unix seconds, decimal)'
      : !NONCE.test(nonce!) ? 'X-Nonce (8 to 128 characters of A-Z a-z 0-9 _ -)'
      : !isHex64(signature!) ? 'X-Signature (64 lowercase hex characters)'
      : version !== '1' && version !== '2' ? 'X-Signature-Version (1 or 2)'
      : version === '2' && !(contentSha && isHex64(contentSha)) ? 'X-Content-SHA256 (64 lowercase hex characters, required with version 2)'
      : undefined;
    if (malformed) return this.fail('malformed_auth', ip, { detail: `malformed ${malformed}` });

    // 2. key exists, active, not expired
    const found = await this.activeKey(keyId!, ip);
    if (!('record' in found)) return found;
    const creds = found;
    const { record } = creds;
    const now = this.now();
    const tier = record.tier;
    if (version !== '2' && (options.requireV2 || this.deps.tiers[tier]?.requireV2)) return this.fail('signature_version_required', ip, { keyId, tier });

    // 3. client address allowed
    const denied = await this.addressDenied(record, ip);
    if (denied) return denied;

    // 4. clock within the window
    const skew = Math.abs(Math.floor(now / 1000) - Number(timestamp));
    if (skew > options.windowSec) return this.fail('timestamp_skew', ip, { keyId, tier, headers: { Date: new Date(now).toUTCString() } });
    return { ok: true, scheme: 'hmac', clientIp: ip, keyId: keyId!, timestamp: timestamp!, nonce: nonce!, signature: signature!, version: version as '1' | '2', contentSha, creds };
  }

  /**
   * The header stage for `Authorization: Bearer <id>.<secret>` (docs/signing.md): accepted only where the secret
   * cannot have crossed a network in the clear, and only for a key (or tier) that opted in. No timestamp, nonce or
   * body hash: what it lacks against a signature is said in docs/signing.md.
   */
  private async checkBearer(req: GateHeaderRequest, ip: string, token: string): Promise<GateHeaderPass | GateDenial> {
    const parsed = parseBearer(token);
    if (!parsed) return this.fail('malformed_auth', ip, { detail: 'malformed Authorization (a bearer credential is the "bearer" value printed by keys create --allow-bearer: gk_....gs_...)' });
    const { keyId, secret } = parsed;
    // Before the key is looked up: the refusal must not depend on whether the key exists.
    if (!this.bearerTransportSafe(req, ip)) return this.deny('bearer_insecure_transport', ip, {}, { keyId });
    const found = await this.activeKey(keyId, ip);
    if (!('record' in found)) return found;
    const { record } = found;
    const tier = record.tier;
    if (!bearerAllowed(record, this.deps.tiers)) return this.fail('bearer_not_allowed', ip, { keyId, tier });
    const denied = await this.addressDenied(record, ip);
    if (denied) return denied;
    return { ok: true, scheme: 'bearer', bearerSecret: secret, clientIp: ip, keyId, timestamp: '', nonce: '', signature: '', version: '2', creds: found };
  }

  /**
   * Where a bearer secret may arrive: over TLS to this socket; through a proxy that says the client used https
   * (X-Forwarded-Proto, believed from a trusted proxy or a local one); or from this machine itself, with no
   * proxy in between. A proxy that says http is refused even on loopback: the secret crossed a network in the
   * clear before reaching it. Without X-Forwarded-Proto it is the socket's peer that must be local, never the
   * address a proxy names, and a request a proxy forwarded (X-Forwarded-For or Forwarded present) is refused:
   * whoever sent it to that proxy may have done so in the clear.
   */
  private bearerTransportSafe(req: GateHeaderRequest, ip: string): boolean {
    if (req.tls) return true;
    const peer = normalizeIp(req.peerIp);
    const proto = header(req.headers, 'x-forwarded-proto');
    if (proto !== undefined) {
      const last = proto.split(',').pop()!.trim().toLowerCase();
      return last === 'https' && (isLoopback(peer) || this.deps.options.trustedProxies?.has(peer) === true);
    }
    return isLoopback(peer) && header(req.headers, 'x-forwarded-for') === undefined && header(req.headers, 'forwarded') === undefined;
  }

  /** Step 2 for either scheme: the contract names each reason; message and work are the same for all three. */
  private async activeKey(keyId: string, ip: string): Promise<KeyCredentials | GateDenial> {
    let creds: KeyCredentials | undefined;
    try {
      const found = this.deps.keys.lookup(keyId);
      creds = found instanceof Promise ? await found : found;
    } catch (err) {
      // A shared key store (PostgreSQL) that cannot answer: neither "unknown key" nor a pass, and no auth failure.
      if (err instanceof KeysUnavailableError) return this.deny('keys_unavailable', ip, { 'Retry-After': '1' }, { keyId });
      throw err;
    }
    if (!creds) return this.fail('unknown_key', ip, { keyId });
    const { record } = creds;
    if (record.status === 'revoked') return this.fail('revoked_key', ip, { keyId });
    if (record.expiresAt !== null && record.expiresAt <= this.now()) return this.fail('expired_key', ip, { keyId });
    return creds;
  }

  /** Step 3: the key's address allow-list. */
  private async addressDenied(record: KeyRecord, ip: string): Promise<GateDenial | undefined> {
    if (!record.allowIps.length || this.allowList(record).has(ip)) return undefined;
    // A 403, yet a key tried from elsewhere counts like a failed authentication.
    await this.deps.state.recordAuthFailure(ip);
    return this.deny('ip_denied', ip, {}, { keyId: record.id, tier: record.tier });
  }

  /** Failed authentication by a sender whose body was refused (invalid JSON, too deep) before its signature was checked. */
  async recordBodyFailure(ip: string): Promise<void> {
    await this.deps.state.recordAuthFailure(ip);
  }

  /**
   * Every check, in order; with the header stage's pass (checkHeaders), from step 5 on. `refreshed` is for the
   * gate's own second pass after the key store changed (see the signature check).
   */
  async check(req: GateRequest, headerPass?: GateHeaderPass, refreshed = false): Promise<GateResult> {
    const { options, state } = this.deps;
    const passed = headerPass ?? await this.checkHeaders(req);
    if (!passed.ok) return passed;
    const { clientIp: ip, keyId, timestamp, nonce, signature, version, contentSha, creds } = passed;
    const { record } = creds;
    const tier = record.tier;
    const now = this.now();
    if (passed.scheme === 'bearer') return this.checkBearerSecret(req, passed, refreshed);

    // 5. signature
    let stringToSign: string;
    const query = parseQuery(req.rawQuery);
    const v1Body = version === '1' && req.json !== undefined && req.body ? req.body.toString('utf8') : undefined;
    if (version === '2') {
      const actual = sha256Hex(req.body ?? Buffer.alloc(0));
      if (actual !== contentSha) return this.fail('content_sha256_mismatch', ip, { keyId, tier });
      stringToSign = v2StringToSign(req.method, req.path, v2CanonicalQuery(query), actual, timestamp!, nonce!);
    } else {
      let params: string;
      try {
        params = v1Params(query, v1Body === undefined ? undefined : { raw: v1Body, parsed: req.json });
      } catch (err) {
        if (err instanceof DuplicateParamError) return this.deny('duplicate_param', ip, {}, { keyId, tier, detail: err.message });
        throw err;
      }
      stringToSign = v1StringToSign(req.method, req.path, params, timestamp!, nonce!);
    }
    const given = Buffer.from(signature!, 'hex');
    const verified = creds.secrets.some((s) => (s.notAfter === null || s.notAfter > now)
      && timingSafeEqual(hmac(s.value, stringToSign), given));
    if (!verified) {
      return (await this.afterRotation(req, keyId!, refreshed))
        ?? this.fail('bad_signature', ip, { keyId, tier, stringToSign: options.debug ? stringToSign : undefined });
    }

    // 6. nonce, recorded only now so unsigned requests cannot burn a client's nonces. A request that admit() refuses
    // forgets it again: it never ran, so its replay may count as new, and a key's refused flood holds no room.
    const limits = effectiveLimits(record, this.deps.tiers);
    const ttlMs = (options.windowSec * 2 + 1) * 1000;
    const share = nonceShare(limits, ttlMs, options.nonceCapacity);
    // 6b and 7 depend on the request alone: a networked state that can take steps 6 to 8 at once learns them first
    // (the model is asked for only then: it is what the audit record names).
    const v1 = version === '1' ? v1Problem(query, { json: req.json, present: (req.body?.length ?? 0) > 0 }, req.accepts) : undefined;
    let model: ModelRef | undefined;
    let modelRefused: boolean | undefined;
    const modelCheck = () => {
      model = req.model?.();
      return (modelRefused = model !== undefined && !modelAllowed(limits.models, model));
    };
    if (state.admit && !v1 && !modelCheck()) return this.admission.atOnce(state.admit.bind(state), record, limits, ip, nonce!, ttlMs, share, now);

    const recorded = state.recordNonce(record.id, nonce!, ttlMs, share);
    const seen = typeof recorded === 'string' ? recorded : await recorded;
    if (seen === 'replayed') return this.fail('replayed_nonce', ip, { keyId, tier });
    if (seen === 'full') return this.deny('nonce_store_full', ip, { 'Retry-After': '1' }, { keyId, tier });
    // Its share is all its own limits admit within a nonce's lifetime: more is a flood, refused by its rate.
    if (seen === 'key_full') return this.deny('rate_limited', ip, { 'Retry-After': '1' }, { keyId, tier });

    // 6b. version 1 covers everything the server will act on. Checked once the nonce is spent (and not forgotten
    // like the refusals of admit()), so that the signature of a refused request cannot be replayed with a body
    // that reads its string another way.
    if (v1) return this.deny(v1.code, ip, {}, { keyId, tier, detail: v1.detail });

    // 7. model allowed for the tier
    const admitted = (modelRefused ?? modelCheck()) ? this.modelNotAllowed(model!, ip, record.id, tier) : await this.admission.stepByStep(record, limits, ip, now);
    if (!admitted.ok) await state.forgetNonce(record.id, nonce!);
    return this.admission.committing(admitted);
  }

  /** Step 5 for a bearer credential: its secret against the key's; then straight to the limits (no nonce). */
  private async checkBearerSecret(req: GateRequest, passed: GateHeaderPass, refreshed: boolean): Promise<GateResult> {
    const { clientIp: ip, keyId, creds } = passed;
    const { record } = creds;
    const now = this.now();
    const given = Buffer.from(passed.bearerSecret!, 'utf8');
    const verified = creds.secrets.some((s) => (s.notAfter === null || s.notAfter > now) && s.value.length === given.length && timingSafeEqual(s.value, given));
    if (!verified) return (await this.afterRotation(req, keyId, refreshed)) ?? this.fail('bad_bearer', ip, { keyId, tier: record.tier });
    // 7. model allowed for the tier, then 8 step by step (a bearer request has no nonce to fold in)
    const limits = effectiveLimits(record, this.deps.tiers);
    const model = req.model?.();
    if (model && !modelAllowed(limits.models, model)) return this.modelNotAllowed(model, ip, keyId, record.tier);
    return this.admission.committing(await this.admission.stepByStep(record, limits, ip, now));
  }

  /**
   * A rotation made by another process reaches the cached lookup only at its next poll: before refusing (and
   * counting a failure), check once whether the store changed, and if so answer from what it holds now, from the
   * header stage again (the key's status, expiry and allow-list may have changed too). Undefined: refuse.
   */
  private async afterRotation(req: GateRequest, keyId: string, refreshed: boolean): Promise<GateResult | undefined> {
    if (refreshed || !this.deps.keys.refresh) return undefined;
    const changed = this.deps.keys.refresh(keyId);
    if (changed === true || (changed instanceof Promise && (await changed))) return this.check(req, undefined, true);
    return undefined;
  }

  private modelNotAllowed(model: ModelRef, ip: string, keyId: string, tier: string): GateDenial {
    return this.deny('model_not_allowed', ip, {}, { keyId, tier, detail: `model "${model.name}" is not in this key's tier "${tier}"` });
  }

  private readonly goodIds = new Set<string>();
  /** Checksum verdicts are remembered (bounded) since the same few ids arrive over and over. */
  private knownGoodId(id: string): boolean {
    if (this.goodIds.has(id)) return true;
    if (!isWellFormedToken(id, KEY_ID_PREFIX)) return false;
    if (this.goodIds.size >= 10_000) this.goodIds.clear();
    this.goodIds.add(id);
    return true;
  }

  private readonly allowLists = new WeakMap<KeyRecord, { has(ip: string): boolean }>();
  private allowList(record: KeyRecord): { has(ip: string): boolean } {
    let list = this.allowLists.get(record);
    if (!list) {
      // Records are cached by the lookup, so each key's list is parsed once per change.
      // An entry the store should never have accepted denies everything rather than nothing.
      try {
        list = parseCidrList(record.allowIps);
      } catch {
        list = { has: () => false };
      }
      this.allowLists.set(record, list);
    }
    return list;
  }

  private fail(code: ReasonCode, ip: string, extra: DenialExtra & { headers?: Record<string, string> }): Promise<GateDenial> {
    return refusal(this.deps.state, code, ip, extra);
  }

  private deny(code: ReasonCode, ip: string, headers: Record<string, string>, extra: DenialExtra = {}): GateDenial {
    return denial(code, ip, headers, extra);
  }
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
