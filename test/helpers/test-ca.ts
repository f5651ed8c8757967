import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HANG_BOUND_MS } from './wait.js';

/** A throwaway certificate authority and server certificates made with openssl, as files. */
export interface TestCa {
  dir: string;
  /** The CA certificate: curl's --cacert, node's `ca`. */
  caFile: string;
  caKey: string;
  /** EC P-256 server certificate chain (leaf, then the CA) and its key. */
  cert: string;
  key: string;
  /** RSA 2048 server certificate chain and key (with `rsa: true`), for RSA cipher suites. */
  rsaCert?: string;
  rsaKey?: string;
}

export interface TestCaOptions {
  /** DNS names in the server certificate's SAN; the first is also the CN (default guard.test). */
  names?: string[];
  /** IP addresses in the SAN (default 127.0.0.1). */
  ips?: string[];
  /** Also issue an RSA 2048 server certificate. */
  rsa?: boolean;
  /** Where to write (default: a fresh temporary directory, removed when the test ends). */
  dir?: string;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: HANG_BOUND_MS });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}`);
}

/** Creates the CA and the server certificate(s). Needs openssl (check with haveProgram first). */
export function makeTestCa(t: { after(fn: () => void): void }, options: TestCaOptions = {}): TestCa {
  const names = options.names ?? ['guard.test'];
  const ips = options.ips ?? ['127.0.0.1'];
  let dir = options.dir;
  if (dir === undefined) {
    const made = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-ca-'));
    t.after(() => fs.rmSync(made, { recursive: true, force: true }));
    dir = made;
  } else {
    fs.mkdirSync(dir, { recursive: true });
  }
  const at = (f: string) => path.join(dir, f);

  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=guardctl test CA', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);

  const san = [...names.map((n) => `DNS:${n}`), ...ips.map((ip) => `IP:${ip}`)].join(',');
  fs.writeFileSync(at('server.ext'), [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=${san}`,
    '',
  ].join('\n'));

  const issue = (name: string, keyArgs: string[]) => {
    openssl(['req', '-new', '-newkey', ...keyArgs, '-nodes', '-subj', `/CN=${names[0] ?? ips[0]}`,
      '-keyout', `${name}.key`, '-out', `${name}.csr`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
      '-days', '2', '-sha256', '-extfile', 'server.ext', '-out', `${name}.leaf.pem`], dir);
    fs.writeFileSync(at(`${name}.pem`), fs.readFileSync(at(`${name}.leaf.pem`), 'utf8') + fs.readFileSync(at('ca.pem'), 'utf8'));
    fs.chmodSync(at(`${name}.key`), 0o600);
  };
  issue('server', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  const ca: TestCa = { dir, caFile: at('ca.pem'), caKey: at('ca.key'), cert: at('server.pem'), key: at('server.key') };
  if (options.rsa) {
    issue('server-rsa', ['rsa:2048']);
    ca.rsaCert = at('server-rsa.pem');
    ca.rsaKey = at('server-rsa.key');
  }
  return ca;
}
