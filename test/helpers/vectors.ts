import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The worked examples of ../shared/signing.md (the `shared` folder beside the repository). */
export interface V1Vector {
  secret: string;
  method: string;
  path: string;
  params: Record<string, string>;
  timestamp: string;
  nonce: string;
  string_to_sign: string;
  signature: string;
}

export interface V2Vector {
  secret: string;
  method: string;
  path: string;
  query: [string, string][];
  body: string;
  content_sha256: string;
  timestamp: string;
  nonce: string;
  string_to_sign: string;
  signature: string;
}

export interface SigningVectors {
  v1: V1Vector[];
  v2: V2Vector[];
}

export const VECTORS_PATH = fileURLToPath(new URL('../../../shared/signing-vectors.json', import.meta.url));

export function loadVectors(): SigningVectors {
  const vectors = JSON.parse(fs.readFileSync(VECTORS_PATH, 'utf8')) as SigningVectors;
  if (!vectors.v1?.length || !vectors.v2?.length) throw new Error(`${VECTORS_PATH} holds no v1 or no v2 vectors`);
  return vectors;
}

/** RFC 3986 percent-encoding, written independently of src/gate/canonical.ts so tests do not check the code against itself. */
export function encodeRfc3986(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** `?a=1&b=2` with every name and value RFC 3986-encoded, in the given order ('' for no pairs). */
export function queryString(pairs: [string, string][]): string {
  return pairs.length ? `?${pairs.map(([n, v]) => `${encodeRfc3986(n)}=${encodeRfc3986(v)}`).join('&')}` : '';
}
