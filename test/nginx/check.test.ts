import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { checkSite, parseProblems } from '../../src/nginx/check.js';
import { detectVersions } from '../../src/nginx/detect.js';
import { renderSite, writeRendered } from '../../src/nginx/render.js';
import { versionAtLeast } from '../../src/nginx/validate.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { haveProgram } from '../helpers/system.js';
import { VARIANTS, makeCerts } from './fixtures.js';

const ready = (t: { skip(m?: string): void }) => haveProgram(t, 'nginx', '-v') && haveProgram(t, 'openssl', 'version');

test('nginx -t (through checkSite) accepts every rendered variant the installed nginx can load', async (t) => {
  if (!ready(t)) return;
  const installed = await detectVersions();
  const dir = tempDir(t);
  const certs = makeCerts(dir);
  for (const [name, variant] of Object.entries(VARIANTS)) {
    const site = path.join(dir, `${name}.conf`);
    const snippetsDir = path.join(dir, 'guardctl-snippets', name);
    const opts = variant({ certFile: certs.cert, keyFile: certs.key, snippetsDir, acmeWebroot: path.join(dir, 'acme') });
    const loadable = versionAtLeast(installed.nginx, opts.nginxVersion) && (!opts.opensslVersion || versionAtLeast(installed.openssl ?? '0.0.0', opts.opensslVersion));
    await t.test(name, { skip: loadable ? false : `rendered for nginx ${opts.nginxVersion} / OpenSSL ${opts.opensslVersion}; installed: ${installed.nginx} / ${installed.openssl}` }, async () => {
      writeRendered(renderSite({ ...opts, name }), site, snippetsDir);
      const r = await checkSite(site);
      assert.deepEqual(r.problems, [], r.output);
      assert.equal(r.ok, true);
    });
  }
  await t.test('OCSP stapling with a certificate that names a responder', async () => {
    const snippetsDir = path.join(dir, 'guardctl-snippets', 'ocsp');
    const opts = { ...VARIANTS['intermediate-nginx-1.22.1']!({ certFile: certs.ocspFullchain, keyFile: certs.ocspKey, snippetsDir, acmeWebroot: '/x' }), nginxVersion: installed.nginx, name: 'ocsp', ocspStapling: true, trustedCertFile: certs.ca };
    const r = renderSite(opts);
    assert.match(r.site, /ssl_stapling on;\n {4}ssl_stapling_verify on;\n {4}ssl_trusted_certificate .*ca\.pem;/);
    writeRendered(r, path.join(dir, 'ocsp.conf'), snippetsDir);
    const checked = await checkSite(path.join(dir, 'ocsp.conf'));
    assert.equal(checked.ok, true, checked.output);
  });
});

test('check: a broken file fails, and the problem points at the user\'s file and line', async (t) => {
  if (!ready(t)) return;
  const dir = tempDir(t);
  const file = path.join(dir, 'broken.conf');
  fs.writeFileSync(file, 'server {\n    listen 127.0.0.1:18080;\n    server_name a.example;\n    proxy_bogus on;\n}\n');
  const r = await checkSite(file);
  assert.equal(r.ok, false);
  assert.equal(r.problems.length, 1);
  assert.deepEqual({ ...r.problems[0], message: undefined }, { level: 'emerg', file, line: 4, message: undefined });
  assert.match(r.problems[0]!.message, new RegExp(`unknown directive "proxy_bogus" in ${file.replace(/[.]/g, '\\.')}:4$`));
  assert.doesNotMatch(r.output, /guardctl-nginx-check-.*site\.conf/, 'the temporary copy is not mentioned');

  const cli = await runCli(['nginx', 'check', file]);
  assert.equal(cli.code, 1);
  assert.match(cli.stdout, new RegExp(`\\[emerg\\] unknown directive "proxy_bogus" in ${file.replace(/[.]/g, '\\.')}:4`));
  const json = (await runCli(['--json', 'nginx', 'check', file])).json();
  assert.equal(json.ok, false);
  assert.equal(json.problems[0].line, 4);
});

test('check: a [warn] fails it (conflicting server_name)', async (t) => {
  if (!ready(t)) return;
  const dir = tempDir(t);
  const file = path.join(dir, 'dup.conf');
  const server = 'server {\n    listen 127.0.0.1:18080;\n    server_name dup.example;\n    return 204;\n}\n';
  fs.writeFileSync(file, server + server);
  const r = await checkSite(file);
  assert.equal(r.exitCode, 0, 'nginx itself accepts it');
  assert.equal(r.ok, false);
  assert.equal(r.problems[0]?.level, 'warn');
  assert.match(r.problems[0]!.message, /conflicting server name "dup\.example"/);
  assert.equal((await checkSite(file, { allowWarnings: true })).ok, true);
  const cli = await runCli(['nginx', 'check', file]);
  assert.equal(cli.code, 1);
  assert.match(cli.stdout, /\[warn\] conflicting server name/);
});

test('check: a good file passes on the command line; an unreadable one is a clear error', async (t) => {
  if (!ready(t)) return;
  const dir = tempDir(t);
  const file = path.join(dir, 'ok.conf');
  fs.writeFileSync(file, 'server {\n    listen 127.0.0.1:18080;\n    return 204;\n}\n');
  const ok = await runCli(['nginx', 'check', file]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /nginx -t accepts it/);
  const missing = await runCli(['nginx', 'check', path.join(dir, 'nope.conf')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read .*nope\.conf: ENOENT/);
  // Not a usage error: the command line was right, the file is not there (exit 2 is for flag misuse only).
  const json = await runCli(['--json', 'nginx', 'check', path.join(dir, 'nope.conf')]);
  assert.deepEqual([json.code, json.json().error.code], [1, 'GUARD_E_NGINX']);
});

test('parseProblems reads both nginx log formats and the http2 deprecation warning', () => {
  const out = [
    'nginx: [warn] the "listen ... http2" directive is deprecated, use the "http2" directive instead in /etc/nginx/sites-enabled/a.conf:31',
    '2026/01/01 00:00:00 [emerg] 123#123: cannot load certificate "/x.pem": BIO_new_file() failed',
    '2026/01/01 00:00:00 [notice] 123#123: signal process started',
    'nginx: configuration file /etc/nginx/nginx.conf test failed',
  ].join('\n');
  assert.deepEqual(parseProblems(out), [
    { level: 'warn', message: 'the "listen ... http2" directive is deprecated, use the "http2" directive instead in /etc/nginx/sites-enabled/a.conf:31', file: '/etc/nginx/sites-enabled/a.conf', line: 31 },
    { level: 'emerg', message: 'cannot load certificate "/x.pem": BIO_new_file() failed' },
  ]);
});

test('nginx check takes what nginx render printed (site and snippets in one stream), and maps problems to its sections', async (t) => {
  if (!ready(t)) return;
  const dir = tempDir(t);
  const certs = makeCerts(dir);
  const printed = await runCli(['nginx', 'render', '-d', 'guard.example.com', '--upstream', '127.0.0.1:7860', '--cert-file', certs.cert, '--key-file', certs.key, '--hsts']);
  assert.equal(printed.code, 0, printed.stderr);
  assert.match(printed.stdout, /^# ---- site guard\.example\.com ----\n/);
  assert.match(printed.stdout, /include \/etc\/nginx\/snippets\/guardctl\/guard\.example\.com\/tls\.conf;/, 'the snippets live elsewhere: check must bring them along');
  const file = path.join(dir, 'printed.conf');
  fs.writeFileSync(file, printed.stdout);
  const checked = await runCli(['nginx', 'check', file]);
  assert.equal(checked.code, 0, checked.stdout + checked.stderr);
  assert.match(checked.stdout, /nginx -t accepts it/);
  // A fault inside a snippet is reported at the bundle file and its section, not at a temporary path.
  fs.writeFileSync(file, printed.stdout.replace(/(# ---- \/etc\/nginx\/snippets\/guardctl\/guard\.example\.com\/security\.conf ----\n)/, '$1no_such_directive on;\n'));
  const broken = await runCli(['nginx', 'check', file]);
  assert.equal(broken.code, 1, broken.stdout);
  assert.match(broken.stdout, new RegExp(`unknown directive "no_such_directive" in ${file.replace(/[.]/g, '\\.')} \\(section /etc/nginx/snippets/guardctl/guard\\.example\\.com/security\\.conf\\)`));
  assert.doesNotMatch(broken.stdout, /guardctl-nginx-check-/);
});
