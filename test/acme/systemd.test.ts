import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { haveProgram } from '../helpers/system.js';
import { CertStore } from '../../src/acme/store.js';
import { renderUnits, systemdWord } from '../../src/systemd/units.js';
import { runCli, tempDir } from '../helpers/cli.js';

const BIN = new URL('../../bin/guardctl.js', import.meta.url).pathname;

test('systemd render --out: a twice-daily persistent timer, a hardened renew service and the daemon unit', async (t) => {
  const home = tempDir(t);
  const out = path.join(tempDir(t), 'units');
  // A lineage that deploys to /etc/nginx/ssl: the renew unit must be allowed to write there.
  new CertStore(home).install('site', { cert: 'c', chain: '', fullchain: 'c', privkey: 'k' }, {
    version: 1, lineage: 'site', names: ['site.example.test'], server: 'https://ca.test/dir', keyType: 'ec256', dns: { provider: 'manual', options: {} },
    deploy: { dir: '/etc/nginx/ssl', reloadCmd: 'systemctl reload nginx' },
    cert: { serial: '01', issuer: 'CA', notBefore: '2026-01-01T00:00:00Z', notAfter: '2026-04-01T00:00:00Z', issuedAt: '2026-01-01T00:00:00Z', certId: null },
    nextRenewalAt: '2026-03-01T00:00:00Z',
  });
  const r = await runCli(['--home', home, '--json', 'systemd', 'render', '--out', out, '--bin', BIN, '--on-failure', 'echo "$GUARDCTL_LINEAGE: $GUARDCTL_ERROR" | logger -t guardctl 100%']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.json<{ files: Array<{ name: string }> }>().files.map((f) => f.name), ['guardctl-renew.service', 'guardctl-renew.timer', 'guardctl.service']);
  const read = (f: string) => fs.readFileSync(path.join(out, f), 'utf8');

  const timer = read('guardctl-renew.timer');
  assert.match(timer, /^OnCalendar=\*-\*-\* 00,12:00:00$/m);
  assert.match(timer, /^RandomizedDelaySec=12h$/m);
  assert.match(timer, /^Persistent=true$/m);
  assert.match(timer, /^WantedBy=timers\.target$/m);

  const renew = read('guardctl-renew.service');
  assert.match(renew, new RegExp(`^ExecStart=${BIN} --home ${home} cert renew --all --keep-going --on-failure "echo \\\\"\\$\\$GUARDCTL_LINEAGE: \\$\\$GUARDCTL_ERROR\\\\" \\| logger -t guardctl 100%%"$`, 'm'));
  for (const line of ['Type=oneshot', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'PrivateTmp=yes', 'UMask=0077', `ReadWritePaths=${home} /etc/nginx/ssl`, 'EnvironmentFile=-/etc/guardctl/guardctl.env']) {
    assert.ok(renew.split('\n').includes(line), `${line} in\n${renew}`);
  }
  const daemon = read('guardctl.service');
  assert.match(daemon, new RegExp(`^ExecStart=${BIN} --home ${home} serve --port 7860$`, 'm'));
  assert.ok(daemon.includes('Restart=on-failure') && daemon.includes('KillSignal=SIGTERM') && daemon.includes(`ReadWritePaths=${home}`));
  assert.doesNotMatch(daemon, /^PrivateDevices=/m, 'the daemon keeps its GPU');

  if (!haveProgram(t, 'systemd-analyze', '--version')) return;
  const v = spawnSync('systemd-analyze', ['verify', '--man=no', ...['guardctl-renew.service', 'guardctl-renew.timer', 'guardctl.service'].map((f) => path.join(out, f))], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stderr + v.stdout);
  assert.doesNotMatch(v.stderr, /Unknown (key|section)|Invalid|Failed/i, v.stderr);
});

test('systemd quoting: words with spaces, quotes, % and $ survive systemd\'s parser', () => {
  assert.equal(systemdWord('/usr/bin/guardctl'), '/usr/bin/guardctl');
  assert.equal(systemdWord('a b'), '"a b"');
  assert.equal(systemdWord('say "hi"'), '"say \\"hi\\""');
  assert.equal(systemdWord('50%'), '"50%%"');
  assert.equal(systemdWord('$HOME'), '"$$HOME"');
  assert.throws(() => renderUnits({ bin: 'guardctl', home: '/var/lib/guardctl', envFile: '/etc/guardctl/env', rwPaths: [], serveArgs: [], onCalendar: 'daily', randomizedDelaySec: '1h' }), /absolute path/);
  const units = renderUnits({ bin: '/usr/bin/guardctl', home: '/root/.local/share/guardctl', envFile: '/etc/guardctl/env', rwPaths: [], serveArgs: [], onCalendar: 'daily', randomizedDelaySec: '1h', user: 'guard' });
  assert.match(units['guardctl-renew.service'], /^ProtectHome=read-only$/m, 'a data directory under /root stays reachable');
  assert.match(units['guardctl-renew.service'], /^User=guard$/m);
});

test('issue 13.4: systemd render --state/--keys put the shared stores in guardctl.service, never a password', async (t) => {
  const home = tempDir(t);
  const r = await runCli(['--home', home, '--json', 'systemd', 'render', '--bin', BIN, '--state', 'redis://10.0.0.5:6379/0', '--keys', 'postgres://guardctl@10.0.0.6:5432/guardctl?sslmode=verify-full']);
  assert.equal(r.code, 0, r.stderr);
  const daemon = r.json<{ files: Array<{ name: string; content: string }> }>().files.find((f) => f.name === 'guardctl.service')!.content;
  assert.match(daemon, /^Environment=GUARDCTL_STATE=redis:\/\/10\.0\.0\.5:6379\/0$/m);
  assert.match(daemon, /^Environment="GUARDCTL_KEYS=postgres:\/\/guardctl@10\.0\.0\.6:5432\/guardctl\?sslmode=verify-full"$/m);
  for (const [flag, url] of [['--keys', 'postgres://guardctl:s3cret@db/guardctl'], ['--state', 'redis://:s3cret@cache:6379']]) {
    const refused = await runCli(['--home', home, '--json', 'systemd', 'render', '--bin', BIN, flag!, url!]);
    assert.equal(refused.code, 2);
    assert.match(refused.json().error.hint, /EnvironmentFile/);
    assert.doesNotMatch(refused.stdout + refused.stderr, /s3cret/);
  }
  assert.equal((await runCli(['--home', home, 'systemd', 'render', '--bin', BIN, '--keys', 'mysql://x'])).code, 2);
});

test('systemd render --bin under /home: ProtectHome=read-only (not yes, which would hide the executable), with a warning', async (t) => {
  const inputs = { home: '/var/lib/guardctl', envFile: '/etc/guardctl/env', rwPaths: [], serveArgs: [], onCalendar: 'daily', randomizedDelaySec: '1h' };
  const fromHome = renderUnits({ ...inputs, bin: '/home/ops/guardctl/bin/guardctl.js' });
  for (const unit of ['guardctl-renew.service', 'guardctl.service'] as const) {
    assert.match(fromHome[unit], /^ProtectHome=read-only$/m, `${unit}: systemd could not exec a binary hidden by ProtectHome=yes`);
    assert.match(fromHome[unit], /^ExecStart=\/home\/ops\/guardctl\/bin\/guardctl\.js /m);
  }
  const system = renderUnits({ ...inputs, bin: '/usr/local/bin/guardctl' });
  assert.match(system['guardctl.service'], /^ProtectHome=yes$/m, 'a binary outside /home keeps the stricter setting');
  const home = tempDir(t);
  const r = await runCli(['--home', home, 'systemd', 'render', '--bin', '/home/ops/guardctl/bin/guardctl.js']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: \/home\/ops\/guardctl\/bin\/guardctl\.js is under a home directory: the units say ProtectHome=read-only/);
  const quiet = await runCli(['--home', home, 'systemd', 'render', '--bin', '/usr/local/bin/guardctl']);
  assert.equal(quiet.stderr, '');
});

test('systemd render --bin: every absolute word and a script\'s node count for ProtectHome, not only the first word', async (t) => {
  const inputs = { home: '/var/lib/guardctl', envFile: '/etc/guardctl/env', rwPaths: [], serveArgs: [], onCalendar: 'daily', randomizedDelaySec: '1h' };
  const protect = (bin: string, pathEnv = '/usr/bin') => /^ProtectHome=(\S+)$/m.exec(renderUnits({ ...inputs, bin, pathEnv })['guardctl.service'])![1];
  assert.equal(protect('/usr/bin/node /home/ops/guardctl/bin/guardctl.js'), 'read-only', 'the script run by a system node');
  assert.equal(protect('/usr/bin/node /opt/guardctl/bin/guardctl.js'), 'yes');
  // A script whose `#!/usr/bin/env node` finds a node under /home (nvm), here a link to where it would be there.
  const dir = tempDir(t);
  const script = path.join(dir, 'guardctl.js');
  fs.writeFileSync(script, '#!/usr/bin/env node\nimport("./cli.js");\n', { mode: 0o755 });
  fs.mkdirSync(path.join(dir, 'nvm-bin'));
  fs.symlinkSync('/home/ops/.nvm/versions/node/v20.19.0/bin/node', path.join(dir, 'nvm-bin', 'node'));
  assert.equal(protect(script, `/nonexistent:${path.join(dir, 'nvm-bin')}:/usr/bin`), 'read-only', 'node from nvm under /home');
  assert.equal(protect(script, '/usr/bin'), 'yes', 'a system node');
  const direct = path.join(dir, 'direct.js');
  fs.writeFileSync(direct, '#!/home/ops/node/bin/node\n', { mode: 0o755 });
  assert.equal(protect(direct), 'read-only', 'a #! line naming a node under /home');

  const home = tempDir(t);
  const words = await runCli(['--home', home, 'systemd', 'render', '--bin', '/usr/bin/node /home/ops/guardctl/bin/guardctl.js']);
  assert.equal(words.code, 0, words.stderr);
  assert.match(words.stderr, /warning: \/home\/ops\/guardctl\/bin\/guardctl\.js is under a home directory: the units say ProtectHome=read-only/);
  assert.match(words.stdout, /^ProtectHome=read-only$/m);
  const nvm = await runCli(['--home', home, 'systemd', 'render', '--bin', script], { env: { PATH: path.join(dir, 'nvm-bin') } });
  assert.match(nvm.stderr, /warning: .*nvm-bin\/node is under a home directory/);
  assert.equal((await runCli(['--home', home, 'systemd', 'render', '--bin', script], { env: { PATH: '/usr/bin' } })).stderr, '');
});
