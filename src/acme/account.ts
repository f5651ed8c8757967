/**
 * ACME accounts, one per CA: `<home>/acme/accounts/<host-of-directory>/{account.key, account.json}`. The key is
 * generated in memory and written only once the CA has accepted the account, so a failed registration leaves
 * nothing behind; later runs reuse it.
 */
import fs from 'node:fs';
import path from 'node:path';
import acme from 'acme-client';
import { ensurePrivateDir, writeFileAtomic } from '../core/atomic.js';
import { usageError } from '../core/errors.js';
import { accountDirName, fetchDirectory, type AcmeDirectory } from './directory.js';
import { acmeError, storeError } from './errors.js';
import { generatePrivateKey } from './keys.js';

export interface AccountOptions {
  home: string;
  directoryUrl: string;
  /** The directory document when the caller already fetched it. */
  directory?: AcmeDirectory;
  email?: string;
  agreeTos?: boolean;
  eab?: { kid: string; hmacKey: string };
  /** Polling of challenges and orders (acme-client's backoff), milliseconds. */
  pollMinMs?: number;
  pollMaxMs?: number;
  log: (level: 'info' | 'warn', message: string) => void;
}

interface AccountFile {
  url: string;
  directory: string;
  email?: string;
  createdAt: string;
}

export function accountDir(home: string, directoryUrl: string): string {
  return path.join(home, 'acme', 'accounts', accountDirName(directoryUrl));
}

function newClient(opts: AccountOptions, accountKey: string, accountUrl?: string): acme.Client {
  return new acme.Client({
    directoryUrl: opts.directoryUrl,
    accountKey,
    ...(accountUrl ? { accountUrl } : {}),
    ...(opts.eab ? { externalAccountBinding: { kid: opts.eab.kid, hmacKey: opts.eab.hmacKey } } : {}),
    backoffAttempts: 12,
    backoffMin: opts.pollMinMs ?? 1000,
    backoffMax: opts.pollMaxMs ?? 10_000,
  });
}

function readAccount(dir: string): { key: string; file: AccountFile } | null {
  const keyFile = path.join(dir, 'account.key');
  const jsonFile = path.join(dir, 'account.json');
  if (!fs.existsSync(keyFile) || !fs.existsSync(jsonFile)) return null;
  try {
    const file = JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as AccountFile;
    return typeof file.url === 'string' ? { key: fs.readFileSync(keyFile, 'utf8'), file } : null;
  } catch (err) {
    throw storeError(`cannot read the ACME account in ${dir}: ${(err as Error).message}`, err, `remove ${dir} to register a new account`);
  }
}

/** A client logged in to the CA's account, registering the account first when this is the first use. */
export async function openAccount(opts: AccountOptions): Promise<acme.Client> {
  const dir = accountDir(opts.home, opts.directoryUrl);
  const saved = readAccount(dir);
  if (saved) {
    const client = newClient(opts, saved.key, saved.file.url);
    if (opts.email && opts.email !== saved.file.email) {
      await client.updateAccount({ contact: [`mailto:${opts.email}`] });
      writeFileAtomic(path.join(dir, 'account.json'), `${JSON.stringify({ ...saved.file, email: opts.email }, null, 2)}\n`, 0o600);
    }
    return client;
  }
  const key = generatePrivateKey('ec256');
  const client = newClient(opts, key);
  const directory = opts.directory ?? (await fetchDirectory(opts.directoryUrl));
  const tos = directory.meta?.termsOfService;
  const eabRequired = directory.meta?.externalAccountRequired === true;
  if (tos && !opts.agreeTos) throw usageError(`the CA requires agreeing to its terms of service (${tos})`, 'read them, then pass --agree-tos');
  if (eabRequired && !opts.eab) throw usageError('this CA requires External Account Binding credentials', 'get them from the CA\'s dashboard and pass --eab-kid KID --eab-hmac-key KEY');
  try {
    await client.createAccount({ termsOfServiceAgreed: Boolean(opts.agreeTos), ...(opts.email ? { contact: [`mailto:${opts.email}`] } : {}) });
  } catch (err) {
    throw acmeError(`the CA refused to register an account: ${(err as Error).message}`, err, 'check --email, --agree-tos and the EAB credentials');
  }
  ensurePrivateDir(dir);
  writeFileAtomic(path.join(dir, 'account.key'), key, 0o600);
  const file: AccountFile = { url: client.getAccountUrl(), directory: opts.directoryUrl, ...(opts.email ? { email: opts.email } : {}), createdAt: new Date().toISOString() };
  writeFileAtomic(path.join(dir, 'account.json'), `${JSON.stringify(file, null, 2)}\n`, 0o600);
  opts.log('info', `registered a new ACME account at ${opts.directoryUrl}`);
  return client;
}
