import crypto from 'node:crypto';

/**
 * Alibaba Cloud's RPC signature, "signature version 1.0" (HMAC-SHA1), as its signature-mechanism page defines it:
 * RFC 3986 percent-encoding of names and values (only A-Z a-z 0-9 - _ . ~ stay bare, a space is %20, never +),
 * parameters sorted by name (case-sensitive, byte order), joined with & into the canonical query;
 * StringToSign = METHOD & percentEncode("/") & percentEncode(canonicalQuery); key = AccessKeySecret + "&";
 * Signature = base64(HMAC-SHA1(key, StringToSign)). The fake API in the tests recomputes it with this file's
 * rules written out again, and test/dns/aliyun-sign.test.ts checks Alibaba's published example.
 */
export function percentEncode(value: string): string {
  // encodeURIComponent leaves ! ' ( ) * bare; RFC 3986 (and Alibaba) encode them.
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function canonicalQuery(params: Record<string, string>): string {
  return Object.keys(params)
    .filter((k) => k !== 'Signature')
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((k) => `${percentEncode(k)}=${percentEncode(params[k] ?? '')}`)
    .join('&');
}

export function stringToSign(method: string, params: Record<string, string>): string {
  return `${method.toUpperCase()}&${percentEncode('/')}&${percentEncode(canonicalQuery(params))}`;
}

export function signature(method: string, params: Record<string, string>, accessKeySecret: string): string {
  return crypto.createHmac('sha1', `${accessKeySecret}&`).update(stringToSign(method, params)).digest('base64');
}

/** ISO 8601 in UTC without milliseconds, the only Timestamp format the API accepts. */
export function timestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The query string of a signed GET: the canonical query plus the Signature. */
export function signedQuery(params: Record<string, string>, accessKeySecret: string): string {
  return `${canonicalQuery(params)}&Signature=${percentEncode(signature('GET', params, accessKeySecret))}`;
}
