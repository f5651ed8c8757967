import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../helpers/cli.js';
import { haveProgram } from '../helpers/system.js';
import { makeCerts, treeHashes, type TestCerts } from './fixtures.js';

interface Scratch {
  root: string;
  certs: TestCerts;
  calls: () => string[];
  reloadCmd: string;
  /** A reload command that waits (up to a minute) until release() is called. */
  heldReloadCmd: string;
  release: () => void;
  failingReloadCmd: string;
  site: (...args: string[]) => string[];
  siteFor: (domain: string, ...args: string[]) => string[];
}

/** A minimal nginx root (sites-available/-enabled or conf.d) with a broken and a valid site, and a reload recorder. */
function scratch(t: { after(fn: () => void): void }, layout: 'sites' | 'conf.d' = 'sites'): Scratch {
  const dir = tempDir(t, 'guardctl-nginx-install-');
  const root = path.join(dir, 'nginx');
  const r = (p: string) => path.join(root, p);
  fs.mkdirSync(root);
  const includes = layout === 'sites' ? [`include ${r('conf.d')}/*.conf;`, `include ${r('sites-enabled')}/*;`] : [`include ${r('conf.d')}/*.conf;`];
  fs.writeFileSync(r('nginx.conf'), [
    `pid ${dir}/nginx.pid;`, 'error_log stderr;', 'events {}', 'http {', '    access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((n) => `    ${n}_temp_path ${dir}/${n};`),
    ...includes.map((i) => `    ${i}`), '}', '',
  ].join('\n'));
  fs.mkdirSync(r('conf.d'));
  const valid = 'server {\n    listen 127.0.0.1:18081;\n    server_name valid.example;\n    return 204;\n}\n';
  const broken = 'server {\n    listen 127.0.0.1:18082;\n    server_name broken.example;\n    retrun 204;\n}\n';
  if (layout === 'sites') {
    fs.mkdirSync(r('sites-available'));
    fs.mkdirSync(r('sites-enabled'));
    fs.writeFileSync(r('sites-available/valid.conf'), valid);
    fs.writeFileSync(r('sites-available/broken.conf'), broken);
    fs.symlinkSync(r('sites-available/valid.conf'), r('sites-enabled/valid.conf'));
    fs.symlinkSync('../sites-available/broken.conf', r('sites-enabled/broken.conf'));
  } else {
    fs.writeFileSync(r('conf.d/valid.conf'), valid);
    fs.writeFileSync(r('conf.d/broken.conf'), broken);
  }
  const log = path.join(dir, 'reload.log');
  fs.writeFileSync(path.join(dir, 'reload.sh'), `#!/bin/sh\necho "reload $*" >> ${log}\n`, { mode: 0o755 });
  const released = path.join(dir, 'released');
  fs.writeFileSync(path.join(dir, 'reload-held.sh'),
    `#!/bin/sh\ni=0\nwhile [ ! -f ${released} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done\necho "reload $*" >> ${log}\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'reload-fails.sh'), `#!/bin/sh\necho "reload $*" >> ${log}\necho "nginx is not running" >&2\nexit 1\n`, { mode: 0o755 });
  const certs = makeCerts(dir);
  const siteFor = (domain: string, ...args: string[]) => ['nginx', 'install', '--nginx-root', root, '-d', domain, '--upstream', '127.0.0.1:7860',
    '--cert-file', certs.cert, '--key-file', certs.key, '--http-port', '18083', '--https-port', '18443', '--listen-address', '127.0.0.1', ...args];
  return { root, certs, calls: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : []),
    reloadCmd: path.join(dir, 'reload.sh'), heldReloadCmd: path.join(dir, 'reload-held.sh'), release: () => fs.writeFileSync(released, ''), failingReloadCmd: path.join(dir, 'reload-fails.sh'), siteFor, site: (...args) => siteFor('guard.example.com', ...args) };
}

const fixBroken = (s: Scratch, p = 'sites-available/broken.conf') => fs.writeFileSync(path.join(s.root, p), fs.readFileSync(path.join(s.root, p), 'utf8').replace('retrun', 'return'));

test('install: nginx -t fails on a broken existing site -> every file restored byte for byte, no reload', async (t) => {
  if (!haveProgram(t, 'nginx', '-v') || !haveProgram(t, 'openssl', 'version')) return;
  const s = scratch(t);
  const before = treeHashes(s.root);
  const r = await runCli([...s.site('--reload-cmd', s.reloadCmd, '--acme-webroot', '/var/www/acme'), '--json']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const err = r.json().error;
  assert.equal(err.code, 'GUARD_E_NGINX_CONFIG');
  assert.match(err.message, /previous files are back in place and nginx was not reloaded/);
  assert.match(err.message, /unknown directive "retrun" in .*sites-enabled\/broken\.conf:4/);
  assert.match(err.hint, /already failed nginx -t before this install/);
  assert.deepEqual(treeHashes(s.root), before);
  assert.deepEqual(s.calls(), []);
});

test('install: succeeds once the broken site is fixed; a second install replaces atomically; --dry-run changes nothing', async (t) => {
  if (!haveProgram(t, 'nginx', '-v') || !haveProgram(t, 'openssl', 'version')) return;
  const s = scratch(t);
  fixBroken(s);
  const first = await runCli(s.site('--reload-cmd', s.reloadCmd, '--acme-webroot', '/var/www/acme'));
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /nginx -t passed; nginx reloaded/);
  assert.deepEqual(s.calls(), ['reload']);
  const site = path.join(s.root, 'sites-available/guard.example.com.conf');
  const link = path.join(s.root, 'sites-enabled/guard.example.com.conf');
  const snippets = path.join(s.root, 'snippets/guardctl/guard.example.com');
  assert.equal(fs.readlinkSync(link), site);
  assert.deepEqual(fs.readdirSync(snippets).sort(), ['acme.conf', 'http.conf', 'proxy.conf', 'security.conf', 'tls.conf']);
  assert.match(fs.readFileSync(site, 'utf8'), new RegExp(`include ${snippets}/tls\\.conf;`));
  assert.equal(fs.statSync(site).mode & 0o777, 0o644);

  // The same flags again: nothing changes, no reload.
  const again = await runCli(s.site('--reload-cmd', s.reloadCmd, '--acme-webroot', '/var/www/acme'));
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /already installed/);
  assert.equal(s.calls().length, 1);

  // --dry-run: a unified diff, and not a byte changed.
  const tree = treeHashes(s.root);
  const dry = await runCli(s.site('--reload-cmd', s.reloadCmd, '--rate-limit', '5r/s', '--dry-run'));
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, new RegExp(`^--- ${site}\\n\\+\\+\\+ ${site}\\n@@ `, 'm'));
  assert.match(dry.stdout, /^\+ {8}limit_req zone=guardctl_guard_example_com burst=20 nodelay;$/m);
  assert.match(dry.stdout, /^\+limit_req_zone \$binary_remote_addr zone=guardctl_guard_example_com:10m rate=5r\/s;$/m);
  assert.match(dry.stdout, new RegExp(`^--- ${snippets}/acme\\.conf\\n\\+\\+\\+ /dev/null`, 'm'), 'the stale acme.conf would go');
  assert.deepEqual(treeHashes(s.root), tree);
  assert.equal(s.calls().length, 1);

  // A second, different install: the file is replaced by rename (a new inode), the stale snippet removed.
  const inode = fs.statSync(site).ino;
  const second = await runCli(s.site('--reload-cmd', s.reloadCmd, '--rate-limit', '5r/s'));
  assert.equal(second.code, 0, second.stderr);
  assert.notEqual(fs.statSync(site).ino, inode);
  assert.match(fs.readFileSync(site, 'utf8'), /limit_req zone=guardctl_guard_example_com/);
  assert.deepEqual(fs.readdirSync(snippets).sort(), ['http.conf', 'proxy.conf', 'security.conf', 'tls.conf']);
  assert.deepEqual(fs.readdirSync(path.dirname(site)).filter((f) => f.endsWith('.tmp')), []);
  assert.equal(s.calls().length, 2);

  // A second guardctl site beside the first: both pass nginx -t together (the shared map may repeat).
  const other = await runCli(s.siteFor('other.example.com', '--reload-cmd', s.reloadCmd, '--rate-limit', '1r/s'));
  assert.equal(other.code, 0, other.stderr);
  assert.equal(s.calls().length, 3);

  // A site whose name another site already serves: nginx -t only warns, which fails the install all the same.
  const tree2 = treeHashes(s.root);
  const clash = await runCli([...s.siteFor('third.example.com', '--reload-cmd', s.reloadCmd, '-d', 'other.example.com'), '--json']);
  assert.equal(clash.code, 1);
  assert.deepEqual(clash.json().error.problems.map((p: { level: string }) => p.level), ['warn', 'warn']);
  assert.match(clash.json().error.message, /\[warn\] conflicting server name "other\.example\.com" on 127\.0\.0\.1:18083, ignored/);
  assert.deepEqual(treeHashes(s.root), tree2);
  assert.equal(s.calls().length, 3);
});

test('install: a failed reload restores the previous files and reloads them again', async (t) => {
  if (!haveProgram(t, 'nginx', '-v') || !haveProgram(t, 'openssl', 'version')) return;
  const s = scratch(t);
  fixBroken(s);
  assert.equal((await runCli(s.site('--reload-cmd', s.reloadCmd))).code, 0);
  const before = treeHashes(s.root);
  const r = await runCli(s.site('--reload-cmd', s.failingReloadCmd, '--path', '/guard/', '--acme-webroot', '/srv/acme'));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /nginx did not take the site "guard.example.com": the reload command failed: nginx is not running; the previous files are back in place and reloading them failed too/);
  assert.deepEqual(treeHashes(s.root), before);
  assert.equal(s.calls().length, 3, 'the first install, the failed reload, the reload after the restore');
});

test('install: one install at a time per nginx root; a live lock refuses, a stale one is taken over', async (t) => {
  if (!haveProgram(t, 'nginx', '-v') || !haveProgram(t, 'openssl', 'version')) return;
  const s = scratch(t);
  fixBroken(s);
  const lock = path.join(s.root, '.guardctl-install.lock');

  // Two installs at once: the one that takes the lock holds it in its reload until released, so the other
  // meets the lock whatever the machine's speed, and is refused; only then is the reload let go.
  const runs = [
    runCli([...s.siteFor('a.example.com', '--reload-cmd', s.heldReloadCmd), '--json']),
    runCli([...s.siteFor('b.example.com', '--reload-cmd', s.heldReloadCmd), '--json']),
  ] as const;
  const firstDone = await Promise.race(runs);
  s.release();
  const [a, b] = await Promise.all(runs);
  const [won, lost] = a.code === 0 ? [a, b] : [b, a];
  assert.equal(firstDone, lost, 'the refused install ended first, while the other held the lock');
  assert.equal(won.code, 0, won.stdout + won.stderr);
  assert.equal(lost.code, 1, lost.stdout + lost.stderr);
  assert.equal(lost.json().error.code, 'GUARD_E_NGINX_BUSY');
  assert.match(lost.json().error.message, new RegExp(`another guardctl \\(pid ${process.pid}\\) is installing a site into ${s.root}`));
  const loser = won === a ? 'b.example.com' : 'a.example.com';
  assert.ok(!fs.existsSync(path.join(s.root, `sites-available/${loser}.conf`)), 'the refused install wrote nothing');
  assert.ok(!fs.existsSync(path.join(s.root, `snippets/guardctl/${loser}`)));
  assert.deepEqual(s.calls(), ['reload']);
  assert.ok(!fs.existsSync(lock), 'the lock is gone after the install');

  // A lock held by another live process refuses, and changes nothing.
  const holder = spawn('sleep', ['600'], { stdio: 'ignore' });
  t.after(() => void holder.kill('SIGKILL'));
  await new Promise((r) => holder.once('spawn', r));
  fs.writeFileSync(lock, `${holder.pid}\n`);
  const before = treeHashes(s.root);
  const busy = await runCli([...s.siteFor(loser, '--reload-cmd', s.reloadCmd), '--json']);
  assert.equal(busy.code, 1);
  assert.equal(busy.json().error.code, 'GUARD_E_NGINX_BUSY');
  assert.match(busy.json().error.message, new RegExp(`pid ${holder.pid}`));
  assert.deepEqual(treeHashes(s.root), before);
  assert.deepEqual(s.calls(), ['reload']);

  // Once that process is gone its lock is stale: the next install takes it over, and removes it when done.
  holder.kill('SIGKILL');
  await new Promise((r) => holder.once('exit', r));
  const taken = await runCli([...s.siteFor(loser, '--reload-cmd', s.reloadCmd), '--json']);
  assert.equal(taken.code, 0, taken.stdout + taken.stderr);
  assert.ok(fs.existsSync(path.join(s.root, `sites-available/${loser}.conf`)));
  assert.ok(!fs.existsSync(lock));
  assert.equal(s.calls().length, 2);
});

test('install: conf.d layout, and --file from render --out carries its snippets along', async (t) => {
  if (!haveProgram(t, 'nginx', '-v') || !haveProgram(t, 'openssl', 'version')) return;
  const s = scratch(t, 'conf.d');
  fixBroken(s, 'conf.d/broken.conf');
  const out = path.join(path.dirname(s.root), 'render', 'guard.conf');
  const args = s.site().slice(4); // without nginx install --nginx-root ROOT
  const rendered = await runCli(['nginx', 'render', ...args, '--out', out]);
  assert.equal(rendered.code, 0, rendered.stderr);
  const r = await runCli(['--json', 'nginx', 'install', '--nginx-root', s.root, '--file', out, '--reload-cmd', s.reloadCmd]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const res = r.json();
  assert.equal(res.layout, 'conf.d');
  assert.equal(res.site_file, path.join(s.root, 'conf.d/guard.example.com.conf'));
  const text = fs.readFileSync(res.site_file, 'utf8');
  assert.ok(!text.includes(path.dirname(out)), 'no include points at the render folder any more');
  assert.match(text, new RegExp(`^include ${s.root}/snippets/guardctl/guard\\.example\\.com/http\\.conf;$`, 'm'));
  assert.equal(fs.readFileSync(path.join(s.root, 'snippets/guardctl/guard.example.com/proxy.conf'), 'utf8'),
    fs.readFileSync(path.join(path.dirname(out), 'guardctl-snippets/guard.example.com/proxy.conf'), 'utf8'));
  assert.deepEqual(s.calls(), ['reload']);
});

test('install: an nginx root without nginx.conf or a sites folder is refused clearly', async (t) => {
  const dir = tempDir(t);
  const r = await runCli(['nginx', 'install', '--nginx-root', dir, '-d', 'a.example.com', '--upstream', '127.0.0.1:7860', '--nginx-version', '1.22.1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /holds no nginx\.conf/);
  fs.writeFileSync(path.join(dir, 'nginx.conf'), 'events {}\n');
  const r2 = await runCli(['nginx', 'install', '--nginx-root', dir, '-d', 'a.example.com', '--upstream', '127.0.0.1:7860', '--nginx-version', '1.22.1']);
  assert.match(r2.stderr, /has neither sites-available\/ \+ sites-enabled\/ nor conf\.d\//);
});
