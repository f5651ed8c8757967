import fs from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import { GuardError } from '../core/errors.js';

export interface TlsFiles {
  cert: string;
  key: string;
}

export function readTls(files: TlsFiles): { cert: Buffer; key: Buffer } {
  try {
    return { cert: fs.readFileSync(files.cert), key: fs.readFileSync(files.key) };
  } catch (err) {
    throw new GuardError('GUARD_E_CONFIG', `cannot read the TLS files: ${(err as Error).message}`, {
      hint: 'check --tls-cert and --tls-key (readable by the daemon\'s user; the key stays 0600)',
      cause: err,
    });
  }
}

/**
 * Swaps the server's certificate in place (new connections get it, open ones keep theirs), on SIGHUP and when
 * the files change, as certbot/guardctl renewals replace them. A bad new pair is logged and the old one kept.
 */
export function watchTls(server: HttpsServer, files: TlsFiles, log: (level: 'info' | 'error', msg: string) => void): { reload(): boolean; close(): void } {
  const reload = (): boolean => {
    try {
      server.setSecureContext(readTls(files));
      log('info', 'TLS certificate reloaded');
      return true;
    } catch (err) {
      log('error', `TLS certificate not reloaded, keeping the current one: ${(err as Error).message}`);
      return false;
    }
  };
  let timer: NodeJS.Timeout | undefined;
  // Renewals write the cert and key one after the other: wait for both before reloading.
  const onChange = () => {
    clearTimeout(timer);
    timer = setTimeout(reload, 500);
    timer.unref();
  };
  for (const f of [files.cert, files.key]) fs.watchFile(f, { interval: 1000 }, onChange);
  return {
    reload,
    close() {
      clearTimeout(timer);
      for (const f of [files.cert, files.key]) fs.unwatchFile(f, onChange);
    },
  };
}
