import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../helpers/cli.js';
import { haveProgram } from '../helpers/system.js';
import { makeCerts } from './fixtures.js';

const base = ['nginx', 'render', '-d', 'guard.example.com', '--upstream', '127.0.0.1:7860', '--nginx-version', '1.22.1'];

async function fails(args: string[], code: number, message: RegExp, home?: string): Promise<void> {
  const r = await runCli(['--json', ...(home ? ['--home', home] : []), ...args]);
  assert.equal(r.code, code, `${args.join(' ')}\n${r.stdout}${r.stderr}`);
  const err = r.json().error;
  assert.match(`${err.message}\n${err.hint ?? ''}`, message);
}

test('bad values are refused with a message naming the value', async () => {
  await fails([...base, '--tls-profile', 'old'], 2, /--tls-profile "old" is not a profile\n.*intermediate or modern/);
  await fails([...base, '--allow', '10.0.0.0/33'], 2, /--allow "10\.0\.0\.0\/33" is not an IPv4 or IPv6 address or CIDR/);
  await fails([...base, '--allow', 'everyone'], 2, /--allow "everyone"/);
  await fails([...base, '--rate-limit', '10/s'], 2, /--rate-limit "10\/s" is not a rate like 10r\/s/);
  await fails([...base, '--rate-limit', '10r/s', '--burst', 'many'], 2, /--burst "many"/);
  await fails([...base, '--burst', '5'], 2, /--burst needs --rate-limit/);
  await fails(['nginx', 'render', '-d', 'guard.example.com', '--upstream', 'localhost', '--nginx-version', '1.22.1'], 2, /--upstream "localhost" is not HOST:PORT/);
  await fails(['nginx', 'render', '-d', 'guard.example.com', '--upstream', '127.0.0.1:70000', '--nginx-version', '1.22.1'], 2, /--upstream "127\.0\.0\.1:70000"/);
  await fails(['nginx', 'render', '-d', 'guard.example.com', '--nginx-version', '1.22.1'], 2, /which upstream\?/);
  await fails(['nginx', 'render', '--upstream', '127.0.0.1:7860', '--nginx-version', '1.22.1'], 2, /which domain\?/);
  await fails(['nginx', 'render', '-d', 'bad_name!.com', '--upstream', '127.0.0.1:7860', '--nginx-version', '1.22.1'], 2, /--domain "bad_name!\.com" is not a DNS name/);
  await fails([...base, '--path', 'guard/'], 2, /--path "guard\/" must start and end with "\/"\n.*--path \/guard\//);
  await fails([...base, '--path', '/guard'], 2, /--path "\/guard" must start and end with "\/"/);
  await fails([...base, '--path', '/a//b/'], 2, /--path "\/a\/\/b\/" has an empty or invalid segment/);
  await fails([...base, '--max-body', 'lots'], 2, /--max-body "lots"/);
  await fails([...base, '--timeout', '5 minutes'], 2, /--timeout "5 minutes"/);
  await fails([...base, '--https-port', '0'], 2, /--https-port "0" is not a port number/);
  await fails([...base, '--listen-address', 'example.com'], 2, /--listen-address "example\.com"/);
  await fails([...base, '--acme-webroot', 'relative/dir'], 2, /--acme-webroot "relative\/dir" must be an absolute path/);
  await fails([...base, '--acme-webroot', '/srv/a;b'], 2, /--acme-webroot "\/srv\/a;b"/);
  await fails([...base, '--csp', 'default-src "self"'], 2, /--csp "default-src "self"" cannot be used/);
  await fails([...base, '--hsts-preload'], 2, /--hsts-preload needs --hsts/);
  await fails([...base, '--name', '../etc'], 2, /--name "\.\.\/etc" is not a site name/);
  await fails([...base, '--nginx-version', 'latest'], 2, /--nginx-version "latest" is not a version/);
  await fails([...base, '--ocsp-stapling'], 2, /--ocsp-stapling needs a certificate/);
});

test('certificates: a missing lineage, an unreadable file, a mismatched key, no OCSP URL', async (t) => {
  const home = tempDir(t);
  // install reads the certificate files; render does not need them (a site for another host, or before issuance).
  const root = tempDir(t);
  fs.writeFileSync(path.join(root, 'nginx.conf'), 'events {}\nhttp {}\n');
  fs.mkdirSync(path.join(root, 'conf.d'));
  const install = ['nginx', 'install', '--dry-run', '--nginx-root', root, '-d', 'guard.example.com', '--upstream', '127.0.0.1:7860', '--nginx-version', '1.22.1'];
  await fails([...install, '--cert', 'guard.example.com'], 1, /--cert "guard\.example\.com": no certificate of that name in .*\/certs\n.*guardctl cert list/, home);
  await fails([...install, '--cert-file', path.join(home, 'missing.pem'), '--key-file', path.join(home, 'k.pem')], 2, /--cert-file ".*missing\.pem" cannot be read: ENOENT/);
  const lineage = await runCli(['--json', '--home', home, ...base, '--cert', 'guard.example.com']);
  assert.equal(lineage.code, 0, lineage.stdout + lineage.stderr);
  assert.match(lineage.json().site, new RegExp(`ssl_certificate ${home}/certs/guard\\.example\\.com/fullchain\\.pem;`));
  const files = await runCli(['--json', ...base, '--cert-file', '/etc/ssl/other-host/fullchain.pem', '--key-file', '/etc/ssl/other-host/privkey.pem']);
  assert.equal(files.code, 0, files.stdout + files.stderr);
  assert.match(files.json().site, /ssl_certificate \/etc\/ssl\/other-host\/fullchain\.pem;\n {4}ssl_certificate_key \/etc\/ssl\/other-host\/privkey\.pem;/);
  await fails([...base, '--cert-file', 'relative.pem', '--key-file', '/etc/k.pem'], 2, /--cert-file/);
  await fails([...base, '--cert-file', '/etc/hostname'], 2, /--cert-file needs --key-file/);
  await fails([...base, '--cert', 'x', '--cert-file', '/a', '--key-file', '/b'], 2, /not both/);
  fs.writeFileSync(path.join(home, 'junk.pem'), 'not a certificate\n');
  await fails([...base, '--cert-file', path.join(home, 'junk.pem'), '--key-file', path.join(home, 'junk.pem')], 2, /does not hold a PEM certificate/);
  if (!haveProgram(t, 'openssl', 'version')) return;
  const certs = makeCerts(home);
  await fails([...base, '--cert-file', certs.cert, '--key-file', certs.ocspKey], 2, /--key-file ".*leaf\.key" is not the private key of --cert-file/);
  await fails([...base, '--cert-file', certs.cert, '--key-file', certs.key, '--ocsp-stapling'], 2, /names no OCSP responder[\s\S]*Let's Encrypt ended OCSP/);
  const ok = await runCli([...base, '--cert-file', certs.ocspFullchain, '--key-file', certs.ocspKey, '--ocsp-stapling']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /ssl_stapling on;/);
});

test('a store lineage renders with its fullchain and key; stapling verifies against its chain.pem', async (t) => {
  if (!haveProgram(t, 'openssl', 'version')) return;
  const home = tempDir(t);
  const certs = makeCerts(home);
  const dir = path.join(home, 'certs', 'guard.example.com');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'meta.json'), '{}');
  await fails([...base, '--cert', 'guard.example.com'], 2, /--cert "guard\.example\.com":.*fullchain\.pem" cannot be read: ENOENT/, home);
  fs.copyFileSync(certs.ocspFullchain, path.join(dir, 'fullchain.pem'));
  fs.copyFileSync(certs.ocspKey, path.join(dir, 'privkey.pem'));
  fs.copyFileSync(certs.ca, path.join(dir, 'chain.pem'));
  const r = await runCli(['--json', '--home', home, ...base, '--cert', 'guard.example.com']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const out = r.json();
  assert.match(out.site, new RegExp(`ssl_certificate ${dir}/fullchain\\.pem;\\n {4}ssl_certificate_key ${dir}/privkey\\.pem;`));
  assert.equal(out.snippets_dir, '/etc/nginx/snippets/guardctl/guard.example.com');
  assert.deepEqual(Object.keys(out.snippets), ['http.conf', 'tls.conf', 'security.conf', 'proxy.conf'].map((f) => `${out.snippets_dir}/${f}`));
  const stapled = await runCli(['--home', home, ...base, '--cert', 'guard.example.com', '--ocsp-stapling']);
  assert.equal(stapled.code, 0, stapled.stderr);
  assert.match(stapled.stdout, new RegExp(`ssl_stapling_verify on;\\n {4}ssl_trusted_certificate ${dir}/chain\\.pem;`));
});

test('render reads the installed nginx when no --nginx-version is given', async (t) => {
  if (!haveProgram(t, 'nginx', '-v')) return;
  const r = await runCli(['nginx', 'render', '-d', 'guard.example.com', '--upstream', '127.0.0.1:7860']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /BOOTSTRAP/);
  const missing = await runCli(['nginx', 'render', '-d', 'guard.example.com', '--upstream', '127.0.0.1:7860', '--nginx-bin', '/nonexistent/nginx']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read the nginx version[\s\S]*--nginx-version X\.Y\.Z/);
  const json = await runCli(['--json', 'nginx', 'render', '-d', 'guard.example.com', '--upstream', '127.0.0.1:7860', '--nginx-bin', '/nonexistent/nginx']);
  assert.deepEqual([json.code, json.json().error.code], [1, 'GUARD_E_NGINX']);
});
