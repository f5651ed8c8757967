import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { GuardError } from '../core/errors.js';

/**
 * Copy-friendly tokens in the style of GitHub's: a fixed prefix naming the kind, base62 random characters, and
 * a 6-character base62 CRC32 of everything before it, so a mistyped or truncated token is caught offline (by
 * guardctl and by secret scanners) before any lookup.
 */
export const KEY_ID_PREFIX = 'gk_';
export const SECRET_PREFIX = 'gs_';
/** 16 base62 characters: about 95 bits, enough for an id that is public anyway. */
export const KEY_ID_RANDOM_CHARS = 16;
/** 32 base62 characters: about 190 bits, well above the 128 the secret needs. */
export const SECRET_RANDOM_CHARS = 32;
const CHECKSUM_CHARS = 6;

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 * 62: bytes above it are skipped so every character is equally likely.
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62];
    }
  }
  return out;
}

export function checksum(body: string): string {
  let n = crc32(Buffer.from(body, 'utf8'));
  let out = '';
  for (let i = 0; i < CHECKSUM_CHARS; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

export function makeToken(prefix: string, randomChars: number): string {
  const body = prefix + randomBase62(randomChars);
  return body + checksum(body);
}

export const newKeyId = (): string => makeToken(KEY_ID_PREFIX, KEY_ID_RANDOM_CHARS);
export const newSecret = (): string => makeToken(SECRET_PREFIX, SECRET_RANDOM_CHARS);

const SHAPES: Record<string, RegExp> = {
  [KEY_ID_PREFIX]: new RegExp(`^${KEY_ID_PREFIX}[0-9A-Za-z]{${KEY_ID_RANDOM_CHARS + CHECKSUM_CHARS}}$`),
  [SECRET_PREFIX]: new RegExp(`^${SECRET_PREFIX}[0-9A-Za-z]{${SECRET_RANDOM_CHARS + CHECKSUM_CHARS}}$`),
};

/** Shape and checksum both right. */
export function isWellFormedToken(token: string, prefix: typeof KEY_ID_PREFIX | typeof SECRET_PREFIX): boolean {
  if (!SHAPES[prefix]!.test(token)) return false;
  const cut = token.length - CHECKSUM_CHARS;
  return checksum(token.slice(0, cut)) === token.slice(cut);
}

/** Why a token is not well formed, for error messages (never echoes the token itself). */
export function describeTokenProblem(token: string, prefix: string): string | undefined {
  const expected = prefix.length + (prefix === KEY_ID_PREFIX ? KEY_ID_RANDOM_CHARS : SECRET_RANDOM_CHARS) + CHECKSUM_CHARS;
  if (!token.startsWith(prefix)) return `it does not start with "${prefix}"`;
  if (token.length !== expected) return `it has ${token.length} characters where ${expected} are expected (truncated or padded?)`;
  if (!/^[0-9A-Za-z]+$/.test(token.slice(prefix.length))) return 'it holds characters outside A-Z a-z 0-9 after the prefix';
  if (!isWellFormedToken(token, prefix as typeof KEY_ID_PREFIX)) return 'its checksum does not match (a mistyped character?)';
  return undefined;
}

/** A key id as typed by a person: a clear GUARD_E_TOKEN naming what is wrong with it. */
export function checkKeyId(id: string): void {
  const problem = describeTokenProblem(id, KEY_ID_PREFIX);
  if (problem) throw new GuardError('GUARD_E_TOKEN', `that key id is not valid: ${problem}`, { hint: 'copy the id again from guardctl keys list' });
}

/**
 * The bearer credential of a key that allows one (docs/signing.md): its id and its secret, joined by a dot. Both
 * halves keep their checksums, so a mangled bearer is refused offline like a mangled id.
 */
export function bearerToken(keyId: string, secret: string): string {
  return `${keyId}.${secret}`;
}

/** The id and secret of a bearer credential, or undefined when it is not one (wrong shape or checksum). */
export function parseBearer(token: string): { keyId: string; secret: string } | undefined {
  const dot = token.indexOf('.');
  if (dot < 0) return undefined;
  const keyId = token.slice(0, dot);
  const secret = token.slice(dot + 1);
  if (!isWellFormedToken(keyId, KEY_ID_PREFIX) || !isWellFormedToken(secret, SECRET_PREFIX)) return undefined;
  return { keyId, secret };
}
