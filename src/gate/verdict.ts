/**
 * The gate's verdicts: a pass, or a refusal by reason code that the server turns into an HTTP answer. Shared by the
 * gate's checks (gate.ts) and its limits (admission.ts).
 */
import type { KeyRecord, Limits } from '../keys/types.js';
import { isAuthFailure, type ReasonCode } from './reasons.js';
import type { GateState } from './state.js';

/** A refusal, by reason code; the server turns it into an HTTP answer (status and message from its catalogue). */
export interface GateDenial {
  ok: false;
  code: ReasonCode;
  /** What exactly was wrong (a header's name, the model asked for), appended to the reason's message. */
  detail?: string;
  headers: Record<string, string>;
  clientIp: string;
  keyId?: string;
  tier?: string;
  /** Only with the debug option and a bad signature: what the server signed. */
  stringToSign?: string;
}

export interface GatePass {
  ok: true;
  key: KeyRecord;
  limits: Limits;
  clientIp: string;
  headers: Record<string, string>;
  /** Frees the concurrency slot; safe to call more than once. */
  release(): void;
  /**
   * With a state that groups its writes (SQLite): settles once this request's nonce, token and quota count are
   * committed. The answer must wait for it (the fastify binding's onSend does); the request need not.
   */
  committed?: Promise<void>;
}

export type GateResult = GatePass | GateDenial;

export interface DenialExtra {
  keyId?: string;
  tier?: string;
  detail?: string;
  stringToSign?: string;
}

/** A refusal. */
export function denial(code: ReasonCode, ip: string, headers: Record<string, string>, extra: DenialExtra = {}): GateDenial {
  return {
    ok: false,
    code,
    ...(extra.detail ? { detail: extra.detail } : {}),
    headers,
    clientIp: ip,
    keyId: extra.keyId,
    tier: extra.tier,
    stringToSign: extra.stringToSign,
  };
}

/** A refusal that, when its reason is an authentication failure, counts towards the address block first. */
export async function refusal(state: GateState, code: ReasonCode, ip: string, extra: DenialExtra & { headers?: Record<string, string> }): Promise<GateDenial> {
  if (isAuthFailure(code)) await state.recordAuthFailure(ip);
  return denial(code, ip, extra.headers ?? {}, extra);
}

/** A Retry-After or reset value: whole seconds, at least 1. */
export function seconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}
