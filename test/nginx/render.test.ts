import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { renderSite, writeRendered, DEFAULT_CSP } from '../../src/nginx/render.js';
import { INTERMEDIATE_CIPHERS } from '../../src/nginx/tls.js';
import { tempDir } from '../helpers/cli.js';
import { SNAPSHOT_PATHS, VARIANTS, snapshotText } from './fixtures.js';

const SNAPSHOTS = new URL('./snapshots/', import.meta.url);
const update = process.env.GUARDCTL_UPDATE_SNAPSHOTS === '1';

for (const [name, variant] of Object.entries(VARIANTS)) {
  test(`snapshot: ${name}`, () => {
    const text = snapshotText(renderSite(variant(SNAPSHOT_PATHS)));
    const file = new URL(`${name}.conf.snap`, SNAPSHOTS);
    if (update) {
      fs.mkdirSync(SNAPSHOTS, { recursive: true });
      fs.writeFileSync(file, text);
      return;
    }
    assert.ok(fs.existsSync(file), `no snapshot ${file.pathname}: run with GUARDCTL_UPDATE_SNAPSHOTS=1`);
    assert.equal(text, fs.readFileSync(file, 'utf8'), `${name} differs from its snapshot (GUARDCTL_UPDATE_SNAPSHOTS=1 rewrites it)`);
  });
}

test('every snapshot file belongs to a variant', { skip: update }, () => {
  const files = fs.readdirSync(SNAPSHOTS).filter((f) => f.endsWith('.snap')).map((f) => f.replace(/\.conf\.snap$/, ''));
  assert.deepEqual(files.sort(), Object.keys(VARIANTS).sort());
});

const render = (name: string, extra: object = {}) => renderSite({ ...VARIANTS[name]!(SNAPSHOT_PATHS), ...extra });

test('http2: "listen ... ssl http2" before nginx 1.25.1, "http2 on" from it', () => {
  const old = render('intermediate-nginx-1.22.1').site;
  assert.match(old, /listen 443 ssl http2;/);
  assert.match(old, /listen \[::\]:443 ssl http2;/);
  assert.doesNotMatch(old, /http2 on;/);
  const recent = render('intermediate-nginx-1.25.1').site;
  assert.match(recent, /listen 443 ssl;\n/);
  assert.match(recent, /\n {4}http2 on;\n/);
  assert.doesNotMatch(recent, /ssl http2/);
  assert.doesNotMatch(render('intermediate-nginx-1.22.1', { nginxVersion: '1.25.0' }).site, /http2 on/);
});

test('TLS profiles follow Mozilla; X25519MLKEM768 only with OpenSSL 3.5+', () => {
  const inter = render('intermediate-nginx-1.22.1').snippets['tls.conf']!;
  assert.match(inter, /^ssl_protocols TLSv1\.2 TLSv1\.3;$/m);
  assert.match(inter, new RegExp(`^ssl_ciphers ${INTERMEDIATE_CIPHERS.join(':')};$`, 'm'));
  assert.equal(INTERMEDIATE_CIPHERS.length, 6);
  assert.match(inter, /^ssl_prefer_server_ciphers off;$/m);
  assert.match(inter, /^ssl_ecdh_curve X25519:prime256v1:secp384r1;$/m);
  assert.match(inter, /^ssl_session_cache shared:SSL:10m;$/m);
  assert.match(inter, /^ssl_session_timeout 1d;$/m);
  assert.match(inter, /^ssl_session_tickets off;$/m);
  assert.doesNotMatch(inter, /^ssl_stapling/m);
  const modern = render('modern-nginx-1.22.1').snippets['tls.conf']!;
  assert.match(modern, /^ssl_protocols TLSv1\.3;$/m);
  assert.doesNotMatch(modern, /ssl_ciphers/);
  assert.match(render('intermediate-nginx-1.27.4-openssl-3.5.0').snippets['tls.conf']!, /^ssl_ecdh_curve X25519MLKEM768:X25519:prime256v1:secp384r1;$/m);
  assert.match(render('intermediate-nginx-1.22.1', { opensslVersion: '3.4.1' }).snippets['tls.conf']!, /^ssl_ecdh_curve X25519:/m);
  assert.match(render('intermediate-nginx-1.22.1', { opensslVersion: undefined }).snippets['tls.conf']!, /^ssl_ecdh_curve X25519:/m);
});

test('headers: always, CSP default / replaced / off, HSTS only when asked, preload only with --hsts-preload', () => {
  const sec = render('intermediate-nginx-1.22.1').snippets['security.conf']!;
  for (const h of ['X-Content-Type-Options "nosniff"', 'X-Frame-Options "DENY"', 'Referrer-Policy "strict-origin-when-cross-origin"', `Content-Security-Policy "${DEFAULT_CSP}"`]) {
    assert.match(sec, new RegExp(`^add_header ${h.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} always;$`, 'm'));
  }
  assert.doesNotMatch(sec, /Strict-Transport-Security "/);
  assert.match(render('intermediate-nginx-1.22.1', { hsts: true }).snippets['security.conf']!, /add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;/);
  assert.match(render('subpath-all-options-nginx-1.22.1').snippets['security.conf']!, /"max-age=63072000; includeSubDomains; preload" always;/);
  assert.match(render('csp-custom-nginx-1.22.1').snippets['security.conf']!, /Content-Security-Policy "default-src 'none'; img-src 'self'" always;/);
  assert.doesNotMatch(render('csp-off-nginx-1.22.1').snippets['security.conf']!, /Content-Security-Policy/);
  assert.doesNotMatch(render('bootstrap-nginx-1.22.1', { hsts: true }).snippets['security.conf']!, /Strict-Transport/);
});

test('site: maps outside server blocks, absolute includes, 308 to https, ACME exception, metrics denied', () => {
  const r = render('subpath-all-options-nginx-1.22.1');
  const dir = SNAPSHOT_PATHS.snippetsDir;
  const firstServer = r.site.indexOf('server {');
  assert.ok(r.site.indexOf(`include ${dir}/http.conf;`) < firstServer, 'http.conf is included before any server block');
  assert.match(r.snippets['http.conf']!, /^map \$http_upgrade \$guardctl_connection_upgrade \{$/m);
  assert.match(r.snippets['http.conf']!, /^limit_req_zone \$binary_remote_addr zone=guardctl_guard_example_com:10m rate=10r\/s;$/m);
  for (const m of r.site.matchAll(/include (\S+);/g)) assert.ok(path.isAbsolute(m[1]!) && m[1]!.startsWith(`${dir}/`), m[1]);
  for (const file of Object.keys(r.snippets)) assert.ok(r.site.includes(`include ${dir}/${file};`), `${file} is included`);
  assert.match(r.site, /return 308 https:\/\/\$host:8443\$request_uri;/);
  assert.match(r.site, /listen 127\.0\.0\.1:8080;\n {4}server_name/);
  assert.match(r.snippets['acme.conf']!, /location \^~ \/\.well-known\/acme-challenge\/ \{\n {4}root \/var\/www\/acme;/);
  assert.match(r.site, /location \^~ \/guard\/metrics \{\n {8}deny all;\n {4}\}/);
  assert.match(r.site, /location \/guard\/ \{\n {8}allow 10\.0\.0\.0\/8;\n {8}allow 2001:db8::\/32;\n {8}allow 127\.0\.0\.1;\n {8}deny all;\n {8}limit_req zone=guardctl_guard_example_com burst=5 nodelay;\n {8}limit_req_status 429;/);
  assert.match(r.site, /proxy_pass http:\/\/guardctl_guard_example_com;\n/, 'proxy_pass without a URI: no rewriting');
  assert.match(r.site, /--base-path \/guard/);
  // Two upstreams make a pool (issue 13.4): least_conn, passive health, and retries on connection errors only.
  assert.match(r.site, /upstream guardctl_guard_example_com \{\n(?: {4}#.*\n)* {4}least_conn;\n {4}server 127\.0\.0\.1:7860 max_fails=3 fail_timeout=10s;\n {4}server 127\.0\.0\.1:7861 max_fails=3 fail_timeout=10s;\n {4}keepalive 16;/);
  assert.match(r.snippets['proxy.conf']!, /\nproxy_next_upstream error timeout;\nproxy_next_upstream_tries 2;\n/);
  assert.doesNotMatch(r.snippets['proxy.conf']!, /^[^#]*(non_idempotent|http_50\d)/m, 'a POST that reached a daemon is never sent to another');
  const proxy = r.snippets['proxy.conf']!;
  for (const line of ['proxy_http_version 1.1;', 'proxy_set_header Connection $guardctl_connection_upgrade;', 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    'proxy_set_header X-Forwarded-Proto $scheme;', 'proxy_set_header X-Forwarded-Host $host;', 'proxy_set_header X-Real-IP $remote_addr;', 'proxy_buffering off;', 'proxy_read_timeout 600s;']) {
    assert.ok(proxy.includes(`\n${line}\n`), line);
  }
  assert.match(r.site, /client_max_body_size 2m;/);
});

test('bootstrap: HTTP only, no TLS snippet, ACME webroot and the proxy on the HTTP port', () => {
  const r = render('bootstrap-nginx-1.22.1');
  assert.equal(r.snippets['tls.conf'], undefined);
  assert.doesNotMatch(r.site, /ssl|443|return 308 https/);
  assert.match(r.site, /BOOTSTRAP/);
  assert.match(r.site, /include \/etc\/nginx\/snippets\/guardctl\/guard\.example\.com\/acme\.conf;/);
  assert.match(r.site, /location \/guard\/ \{/);
  assert.throws(() => render('intermediate-nginx-1.22.1', { bootstrap: true }), /--bootstrap renders HTTP only/);
});

test('writeRendered writes snippets into the folder the site includes, and refuses another', (t) => {
  const dir = tempDir(t);
  const snippetsDir = path.join(dir, 'guardctl-snippets', 'guard.example.com');
  const r = renderSite({ ...VARIANTS['intermediate-nginx-1.22.1']!(SNAPSHOT_PATHS), snippetsDir });
  const files = writeRendered(r, path.join(dir, 'site.conf'), snippetsDir);
  assert.deepEqual(files.map((f) => path.relative(dir, f)), [...Object.keys(r.snippets).map((f) => `guardctl-snippets/guard.example.com/${f}`), 'site.conf']);
  assert.equal(fs.readFileSync(path.join(dir, 'site.conf'), 'utf8'), r.site);
  assert.equal(fs.statSync(path.join(dir, 'site.conf')).mode & 0o777, 0o644);
  assert.throws(() => writeRendered(r, path.join(dir, 'site.conf'), path.join(dir, 'elsewhere')), /rendered for snippets in/);
});
