import crypto from 'node:crypto';

/**
 * Tencent Cloud API 3.0 signature v3 (TC3-HMAC-SHA256), as the "Signature v3" page defines it:
 *   CanonicalRequest = METHOD \n URI \n QUERY \n CanonicalHeaders \n SignedHeaders \n hex(sha256(payload))
 *     (each signed header as lowercase-name:lowercase-trimmed-value\n, sorted by name)
 *   StringToSign = "TC3-HMAC-SHA256" \n timestamp \n date/service/tc3_request \n hex(sha256(CanonicalRequest))
 *   key = HMAC(HMAC(HMAC("TC3" + SecretKey, date), service), "tc3_request"); Signature = hex(HMAC(key, StringToSign))
 * where date is the UTC day of the timestamp (a UTC+8 clock would sign the wrong day just after midnight).
 * test/dns/dnspod-sign.test.ts checks Tencent's published DescribeInstances example.
 */
export const ALGORITHM = 'TC3-HMAC-SHA256';

const sha256Hex = (data: string) => crypto.createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key: crypto.BinaryLike, data: string) => crypto.createHmac('sha256', key).update(data, 'utf8').digest();

/** The UTC date of a Unix timestamp in seconds, YYYY-MM-DD. */
export function utcDate(timestampSec: number): string {
  return new Date(timestampSec * 1000).toISOString().slice(0, 10);
}

export interface CanonicalInput {
  method: string;
  /** Header values by lowercase name; must hold every signed header. */
  headers: Record<string, string>;
  signedHeaders: string[];
  payload: string;
  path?: string;
  query?: string;
}

export function canonicalRequest(input: CanonicalInput): string {
  const names = input.signedHeaders.map((h) => h.toLowerCase()).sort();
  const canonicalHeaders = names.map((n) => `${n}:${(input.headers[n] ?? '').trim().toLowerCase()}\n`).join('');
  return [input.method.toUpperCase(), input.path ?? '/', input.query ?? '', canonicalHeaders, names.join(';'), sha256Hex(input.payload)].join('\n');
}

export function stringToSign(timestampSec: number, service: string, canonical: string): string {
  return [ALGORITHM, String(timestampSec), `${utcDate(timestampSec)}/${service}/tc3_request`, sha256Hex(canonical)].join('\n');
}

export function signature(secretKey: string, timestampSec: number, service: string, toSign: string): string {
  const kDate = hmac(`TC3${secretKey}`, utcDate(timestampSec));
  const kService = hmac(kDate, service);
  const kSigning = hmac(kService, 'tc3_request');
  return crypto.createHmac('sha256', kSigning).update(toSign, 'utf8').digest('hex');
}

export interface SignInput extends CanonicalInput {
  secretId: string;
  secretKey: string;
  service: string;
  timestampSec: number;
}

/** The Authorization header value for a request. */
export function authorization(input: SignInput): string {
  const canonical = canonicalRequest(input);
  const sig = signature(input.secretKey, input.timestampSec, input.service, stringToSign(input.timestampSec, input.service, canonical));
  const scope = `${utcDate(input.timestampSec)}/${input.service}/tc3_request`;
  const signed = input.signedHeaders.map((h) => h.toLowerCase()).sort().join(';');
  return `${ALGORITHM} Credential=${input.secretId}/${scope}, SignedHeaders=${signed}, Signature=${sig}`;
}
