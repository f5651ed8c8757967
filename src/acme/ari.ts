/**
 * ACME Renewal Information (RFC 9773). acme-client 5.4 does not speak ARI, so this module computes the
 * certificate's ARI identifier, fetches the CA's suggested renewal window and picks a time inside it.
 */
import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { getJson } from './http.js';

/** ARI state kept in meta.json. Times are epoch milliseconds. */
export interface AriState {
  certId: string;
  windowStart: number;
  windowEnd: number;
  /** The random moment inside the window this client chose (re-chosen only when the window changes). */
  selectedAt: number;
  /** Not before this time may the CA be asked again (Retry-After). */
  nextCheckAt: number;
  explanationUrl?: string;
}

export interface CertIdParts {
  /** The keyIdentifier of the Authority Key Identifier extension, or null when absent. */
  authorityKeyId: Buffer | null;
  /** The serial number's DER INTEGER content bytes, leading zero included (node:crypto gives only the hex value). */
  serial: Buffer;
}

const { asn1 } = forge;
const AKI_OID = '2.5.29.35';
const bytes = (value: unknown): Buffer => Buffer.from(value as string, 'binary');
const isContext = (node: forge.asn1.Asn1 | undefined, tag: number) => node?.tagClass === asn1.Class.CONTEXT_SPECIFIC && node.type === tag;

/** Reads the serial and the AKI keyIdentifier from a DER certificate with forge's ASN.1 reader. */
export function certIdParts(der: Buffer): CertIdParts {
  const cert = asn1.fromDer(forge.util.createBuffer(der.toString('binary')));
  const tbs = (cert.value as forge.asn1.Asn1[])[0];
  if (!tbs || !Array.isArray(tbs.value)) throw new Error('DER: no tbsCertificate');
  const fields = tbs.value;
  const serialNode = fields[isContext(fields[0], 0) ? 1 : 0]; // after the optional [0] version
  if (serialNode?.type !== asn1.Type.INTEGER || serialNode.tagClass !== asn1.Class.UNIVERSAL) throw new Error('DER: no serial number');
  let authorityKeyId: Buffer | null = null;
  const extensions = (fields.find((f) => isContext(f, 3))?.value as forge.asn1.Asn1[] | undefined)?.[0]?.value;
  for (const ext of Array.isArray(extensions) ? extensions : []) {
    const parts = ext.value as forge.asn1.Asn1[];
    if (parts[0]?.type !== asn1.Type.OID || asn1.derToOid(parts[0].value as string) !== AKI_OID) continue;
    const aki = asn1.fromDer(parts[parts.length - 1]!.value as string); // extnValue, after the optional critical flag
    const keyId = (aki.value as forge.asn1.Asn1[]).find((c) => isContext(c, 0)); // [0] IMPLICIT keyIdentifier
    if (keyId) authorityKeyId = bytes(keyId.value);
  }
  return { authorityKeyId, serial: bytes(serialNode.value) };
}

/** RFC 9773 section 4.1: base64url(AKI keyIdentifier) "." base64url(serial DER content bytes). */
export function certIdFrom(authorityKeyId: Buffer, serial: Buffer): string {
  return `${authorityKeyId.toString('base64url')}.${serial.toString('base64url')}`;
}

/** The ARI certID of a PEM certificate (the leaf, when given a chain); null when it has no AKI. */
export function certIdOf(certPem: string): string | null {
  const der = new X509Certificate(certPem).raw;
  const { authorityKeyId, serial } = certIdParts(der);
  return authorityKeyId ? certIdFrom(authorityKeyId, serial) : null;
}

/** Six hours, the RFC's suggestion when the CA sends no Retry-After. */
export const DEFAULT_ARI_RETRY_MS = 6 * 3_600_000;
const MIN_RETRY_MS = 60_000;
const MAX_RETRY_MS = 7 * 86_400_000;

export interface RenewalInfo {
  windowStart: number;
  windowEnd: number;
  explanationUrl?: string;
  retryAfterMs: number;
}

/** Retry-After as seconds or an HTTP date, bounded to something sane; the default when absent or odd. */
export function parseRetryAfter(header: string | undefined, now: number): number {
  if (header === undefined || header.trim() === '') return DEFAULT_ARI_RETRY_MS;
  const text = header.trim();
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
  if (!Number.isFinite(ms)) return DEFAULT_ARI_RETRY_MS;
  return Math.min(Math.max(ms, MIN_RETRY_MS), MAX_RETRY_MS);
}

/** Validates a renewalInfo response body. */
export function parseRenewalInfo(body: unknown, retryAfter: string | undefined, now: number): RenewalInfo {
  const win = (body as { suggestedWindow?: { start?: unknown; end?: unknown } } | null)?.suggestedWindow;
  const start = typeof win?.start === 'string' ? Date.parse(win.start) : NaN;
  const end = typeof win?.end === 'string' ? Date.parse(win.end) : NaN;
  if (Number.isNaN(start) || Number.isNaN(end) || end < start) {
    throw new Error('renewalInfo has no valid suggestedWindow {start, end}');
  }
  const url = (body as { explanationURL?: unknown }).explanationURL;
  return { windowStart: start, windowEnd: end, retryAfterMs: parseRetryAfter(retryAfter, now), ...(typeof url === 'string' ? { explanationUrl: url } : {}) };
}

/** GET <renewalInfo>/<certID> (unauthenticated, RFC 9773 section 4.2). */
export async function fetchRenewalInfo(baseUrl: string, certId: string, now: number): Promise<RenewalInfo> {
  const url = `${baseUrl.replace(/\/+$/, '')}/${certId}`;
  const res = await getJson(url);
  if (res.status !== 200) throw new Error(`renewalInfo ${url} answered HTTP ${res.status}`);
  const retryAfter = res.headers['retry-after'];
  return parseRenewalInfo(res.body, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, now);
}

/**
 * Folds a fresh renewalInfo answer into the saved state: a new window gets a new uniformly random moment inside
 * it; an unchanged window keeps the moment already chosen, so repeated checks do not drift the schedule.
 */
export function updateAriState(previous: AriState | undefined, certId: string, info: RenewalInfo, now: number, random = Math.random): AriState {
  const same = previous && previous.certId === certId && previous.windowStart === info.windowStart && previous.windowEnd === info.windowEnd;
  const selectedAt = same ? previous.selectedAt : Math.floor(info.windowStart + random() * (info.windowEnd - info.windowStart));
  return {
    certId,
    windowStart: info.windowStart,
    windowEnd: info.windowEnd,
    selectedAt,
    nextCheckAt: now + info.retryAfterMs,
    ...(info.explanationUrl ? { explanationUrl: info.explanationUrl } : {}),
  };
}
