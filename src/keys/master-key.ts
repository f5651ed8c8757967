import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir, writeFileAtomic } from '../core/atomic.js';
import { GuardError } from '../core/errors.js';

export const MASTER_KEY_BYTES = 32;
export const MASTER_KEY_FILE = 'master.key';

export interface MasterKeyOptions {
  home: string;
  env: NodeJS.ProcessEnv;
  /** Create `<home>/master.key` when no source exists (default true). False for read-only opens and for an
   * existing key store, where a fresh key could never open the secrets already sealed. */
  create?: boolean;
}

const SOURCES_HINT = 'set GUARDCTL_MASTER_KEY (base64 or 64 hex characters of 32 bytes) or GUARDCTL_MASTER_KEY_FILE';

/** Where the master key comes from, for messages: never the key itself. */
export function masterKeySource({ home, env }: MasterKeyOptions): string {
  if (nonEmpty(env.GUARDCTL_MASTER_KEY)) return 'GUARDCTL_MASTER_KEY';
  const file = nonEmpty(env.GUARDCTL_MASTER_KEY_FILE);
  return file ? `GUARDCTL_MASTER_KEY_FILE (${path.resolve(file)})` : path.join(home, MASTER_KEY_FILE);
}

/** The 32-byte key that seals API-key secrets at rest: env value, then env-named file, then `<home>/master.key`. */
export function loadMasterKey({ home, env, create = true }: MasterKeyOptions): Buffer {
  const inline = nonEmpty(env.GUARDCTL_MASTER_KEY);
  if (inline) return decodeMasterKey(inline, 'GUARDCTL_MASTER_KEY');
  const named = nonEmpty(env.GUARDCTL_MASTER_KEY_FILE);
  if (named) {
    const file = path.resolve(named);
    const text = readKeyFile(file, `GUARDCTL_MASTER_KEY_FILE (${file})`);
    if (text === undefined) {
      throw new GuardError('GUARD_E_MASTER_KEY', `the master key file ${file} named by GUARDCTL_MASTER_KEY_FILE does not exist`, {
        hint: 'check the path, or unset GUARDCTL_MASTER_KEY_FILE to use the key in the data directory',
      });
    }
    return decodeMasterKey(text, `GUARDCTL_MASTER_KEY_FILE (${file})`);
  }
  const file = path.join(home, MASTER_KEY_FILE);
  const text = readKeyFile(file, file);
  if (text !== undefined) return decodeMasterKey(text, file);
  if (!create) {
    throw new GuardError('GUARD_E_MASTER_KEY', `the master key file ${file} is missing`, {
      hint: `restore ${file} from your backup, or ${SOURCES_HINT}`,
    });
  }
  return createKeyFile(home, file);
}

/** Accepts base64 (standard or URL-safe) or hex of exactly 32 bytes; the error names the source, never the value. */
export function decodeMasterKey(text: string, source: string): Buffer {
  const value = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(value)) key = Buffer.from(value, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(value)) key = Buffer.from(value, 'base64');
  if (!key || key.length !== MASTER_KEY_BYTES) {
    throw new GuardError('GUARD_E_MASTER_KEY', `the master key from ${source} is malformed: expected 32 bytes as base64 (44 characters) or hex (64 characters)`, {
      hint: 'generate one with: openssl rand -base64 32',
    });
  }
  return key;
}

function readKeyFile(file: string, source: string): string | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unreadable(source, file, err);
  }
  // Windows has no POSIX modes to check; everywhere else a key others can read is as good as published.
  if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
    throw new GuardError('GUARD_E_MASTER_KEY', `the master key file ${file} is readable by other users (mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')})`, {
      hint: `chmod 600 ${file}`,
    });
  }
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw unreadable(source, file, err);
  }
}

function unreadable(source: string, file: string, err: unknown): GuardError {
  return new GuardError('GUARD_E_MASTER_KEY', `cannot read the master key from ${source}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, {
    hint: `check that ${file} is a file owned and readable by this user`,
    cause: err,
  });
}

function createKeyFile(home: string, file: string): Buffer {
  ensurePrivateDir(home);
  const key = randomBytes(MASTER_KEY_BYTES);
  // Written under a private name, then hard-linked into place: link() fails if another process won the race,
  // so two first runs can never end up with different keys.
  const staged = path.join(home, `.${MASTER_KEY_FILE}.${randomBytes(6).toString('hex')}.new`);
  writeFileAtomic(staged, `${key.toString('base64')}\n`, 0o600);
  try {
    fs.linkSync(staged, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new GuardError('GUARD_E_HOME', `cannot create the master key file ${file}: ${(err as Error).message}`, {
        hint: `check that ${home} is writable by this user`,
        cause: err,
      });
    }
    const text = readKeyFile(file, file);
    if (text === undefined) throw new GuardError('GUARD_E_MASTER_KEY', `the master key file ${file} vanished while being created`, { hint: 'run the command again' });
    return decodeMasterKey(text, file);
  } finally {
    fs.rmSync(staged, { force: true });
  }
  return key;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
