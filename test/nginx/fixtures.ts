/** Shared pieces of the nginx tests: the rendered variants, throwaway certificates, file-tree hashes. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { SiteOptions } from '../../src/nginx/render.js';

export interface VariantPaths {
  certFile: string;
  keyFile: string;
  snippetsDir: string;
  acmeWebroot: string;
}

/** Fixed paths for the snapshots (nothing is read from them). */
export const SNAPSHOT_PATHS: VariantPaths = {
  certFile: '/var/lib/guardctl/certs/guard.example.com/fullchain.pem',
  keyFile: '/var/lib/guardctl/certs/guard.example.com/privkey.pem',
  snippetsDir: '/etc/nginx/snippets/guardctl/guard.example.com',
  acmeWebroot: '/var/www/acme',
};

const base = (p: VariantPaths): SiteOptions => ({
  domains: ['guard.example.com', 'api.example.com'],
  upstreams: ['127.0.0.1:7860'],
  certFile: p.certFile,
  keyFile: p.keyFile,
  snippetsDir: p.snippetsDir,
  nginxVersion: '1.22.1',
  opensslVersion: '3.0.19',
});

/** Every variant the snapshots cover: both nginx branches, both profiles, OpenSSL 3.5, bootstrap, options. */
export const VARIANTS: Record<string, (p: VariantPaths) => SiteOptions> = {
  'intermediate-nginx-1.22.1': (p) => base(p),
  'modern-nginx-1.22.1': (p) => ({ ...base(p), tlsProfile: 'modern' }),
  'intermediate-nginx-1.25.1': (p) => ({ ...base(p), nginxVersion: '1.25.1' }),
  'modern-nginx-1.27.4': (p) => ({ ...base(p), tlsProfile: 'modern', nginxVersion: '1.27.4' }),
  'intermediate-nginx-1.27.4-openssl-3.5.0': (p) => ({ ...base(p), nginxVersion: '1.27.4', opensslVersion: '3.5.0' }),
  'subpath-all-options-nginx-1.22.1': (p) => ({
    ...base(p),
    path: '/guard/',
    hsts: true,
    hstsPreload: true,
    rateLimit: '10r/s',
    burst: 5,
    allow: ['10.0.0.0/8', '2001:db8::/32', '127.0.0.1'],
    maxBody: '2m',
    timeout: '600s',
    acmeWebroot: p.acmeWebroot,
    httpPort: 8080,
    httpsPort: 8443,
    listenAddress: '127.0.0.1',
    upstreams: ['127.0.0.1:7860', '127.0.0.1:7861'],
  }),
  'csp-custom-nginx-1.22.1': (p) => ({ ...base(p), csp: "default-src 'none'; img-src 'self'" }),
  'csp-off-nginx-1.22.1': (p) => ({ ...base(p), csp: false }),
  'bootstrap-nginx-1.22.1': (p) => ({ ...base(p), certFile: undefined, keyFile: undefined, acmeWebroot: p.acmeWebroot, path: '/guard/' }),
};

/** The site and its snippets as one text, for a snapshot file. */
export function snapshotText(r: { site: string; snippets: Record<string, string> }): string {
  return [`# ==== site ====\n${r.site}`, ...Object.entries(r.snippets).map(([f, c]) => `# ==== snippets/${f} ====\n${c}`)].join('\n');
}

export interface TestCerts {
  /** Self-signed, no OCSP URL. */
  cert: string;
  key: string;
  /** A leaf with an OCSP URL, its chain (leaf + CA) and key, and the CA. */
  ocspFullchain: string;
  ocspKey: string;
  ca: string;
}

/** Makes throwaway EC certificates with openssl in `dir`. */
export function makeCerts(dir: string): TestCerts {
  const f = (n: string) => path.join(dir, n);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', f('key.pem'), '-out', f('cert.pem'), '-days', '2', '-subj', '/CN=guard.example.com', '-addext', 'subjectAltName=DNS:guard.example.com');
  ossl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=guardctl test CA',
    '-addext', 'basicConstraints=critical,CA:true', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  ossl('req', ...ec, '-keyout', f('leaf.key'), '-out', f('leaf.csr'), '-subj', '/CN=guard.example.com');
  fs.writeFileSync(f('leaf.ext'), 'subjectAltName=DNS:guard.example.com\nauthorityInfoAccess=OCSP;URI:http://127.0.0.1:9/ocsp\n');
  ossl('x509', '-req', '-in', f('leaf.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('leaf.ext'), '-out', f('leaf.pem'));
  fs.writeFileSync(f('fullchain.pem'), fs.readFileSync(f('leaf.pem'), 'utf8') + fs.readFileSync(f('ca.pem'), 'utf8'));
  return { cert: f('cert.pem'), key: f('key.pem'), ocspFullchain: f('fullchain.pem'), ocspKey: f('leaf.key'), ca: f('ca.pem') };
}

/** path -> "file MODE SHA256" | "link TARGET" | "dir MODE" for everything under `root`. */
export function treeHashes(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p);
      const rel = path.relative(root, p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[rel] = `link ${fs.readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[rel] = `dir ${mode}`;
        walk(p);
      } else out[rel] = `file ${mode} ${createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`;
    }
  };
  walk(root);
  return out;
}
