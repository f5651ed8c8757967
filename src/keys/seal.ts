import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { GuardError } from '../core/errors.js';

/**
 * Secrets at rest: AES-256-GCM under the master key, as `v1.<iv>.<ciphertext>.<tag>` (base64url parts). The
 * AAD binds a sealed value to where it belongs (the key id), so a value copied into another row does not open.
 */
const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export function seal(masterKey: Buffer, plaintext: string, aad: string): string {
  // A fresh random 96-bit IV per call: GCM must never reuse an IV under one key.
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', masterKey, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [VERSION, iv, body, cipher.getAuthTag()].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
}

export function open(masterKey: Buffer, sealed: string, aad: string): string {
  const parts = sealed.split('.');
  if (parts.length !== 4 || parts[0] !== VERSION) {
    throw new GuardError('GUARD_E_KEYSTORE', `a sealed value in the key store has an unknown format (${parts[0] === undefined ? 'empty' : `"${parts[0].slice(0, 8)}"`})`, {
      hint: 'the key store was changed by hand or by a newer guardctl; restore it from a backup',
    });
  }
  const [, iv, body, tag] = parts.map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer, Buffer];
  try {
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new Error('bad lengths');
    const decipher = createDecipheriv('aes-256-gcm', masterKey, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  } catch (err) {
    throw new GuardError('GUARD_E_MASTER_KEY', 'the master key does not open the key store (wrong key, or a sealed value was altered)', {
      hint: 'use the master key this key store was created with: GUARDCTL_MASTER_KEY, GUARDCTL_MASTER_KEY_FILE or master.key in the data directory',
      cause: err,
    });
  }
}
