/**
 * The plan without servers: which steps, actions and files for which facts; the systemd path (chosen, and its
 * units checked with systemd-analyze verify); and the flags `up` refuses before anything is planned.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_TIERS } from '../../src/keys/tiers.js';
import { upOptionsFrom, type UpFlags } from '../../src/up/options.js';
import { buildPlan, formatPlan, type Facts } from '../../src/up/plan.js';
import { unitsFor } from '../../src/up/systemd.js';
import { unitInputs } from '../../src/up/up.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { haveProgram } from '../helpers/system.js';

const BIN = new URL('../../bin/guardctl.js', import.meta.url).pathname;
const HOME = '/var/lib/guardctl';

function flags(extra: Partial<UpFlags> = {}): UpFlags {
  return { domain: 'guard.example.com', dns: 'cloudflare', port: '7860', nginxRoot: '/etc/nginx', nginxBin: 'nginx', supervisor: 'process', unitDir: '/etc/systemd/system', envFile: '/etc/guardctl/guardctl.env', bin: BIN, ...extra };
}

const bare: Facts = {
  now: Date.parse('2026-12-01T00:00:00Z'),
  site: { installed: false, diff: '--- /dev/null\n+++ /etc/nginx/conf.d/guard.example.com.conf\n', servesWebroot: false, files: [{ path: '/etc/nginx/conf.d/guard.example.com.conf', mode: 0o644 }] },
  daemon: { running: false },
  keys: [],
  unitsDiffer: { daemon: true, timer: true },
};

test('a bare host: every step creates, with its files and modes; the process supervisor says why', () => {
  const o = upOptionsFrom(flags(), {}, HOME, DEFAULT_TIERS);
  const plan = buildPlan(o, HOME, bare);
  assert.deepEqual(plan.steps.map((s) => [s.id, s.action]), [['cert', 'create'], ['keys', 'create'], ['daemon', 'create'], ['site', 'create'], ['renewal', 'create']]);
  assert.equal(plan.url, 'https://guard.example.com');
  const files = plan.steps.flatMap((s) => s.files.map((f) => `${f.path} ${f.mode}`));
  assert.ok(files.includes(`${HOME}/certs/guard.example.com/privkey.pem 0600`));
  assert.ok(files.includes(`${HOME}/run/guardctl-serve.pid 0600`));
  assert.ok(files.includes('/etc/nginx/conf.d/guard.example.com.conf 0644'));
  const text = formatPlan(plan);
  assert.match(text, /a supervised background process with a pid file \(asked for with --supervisor process\)/);
  assert.match(text, /mint "guard\.example\.com" \(tier free\); its secret is shown once/);
  assert.match(text, /nginx site diff:/);
});

test('everything in place: nothing to change, and the plan says so', () => {
  const o = upOptionsFrom(flags({ reloadCmd: 'systemctl reload nginx' }), {}, HOME, DEFAULT_TIERS);
  const facts: Facts = {
    ...bare,
    lineage: { names: ['guard.example.com'], notAfter: '2027-03-01T00:00:00Z', revoked: false, provider: 'cloudflare', reloadCmd: 'systemctl reload nginx' },
    site: { ...bare.site, installed: true, diff: '' },
    daemon: { running: true, pid: 42, args: o.serveArgs },
    keys: [{ id: 'gk_x', name: 'guard.example.com', tier: 'free' }],
  };
  const plan = buildPlan(o, HOME, facts);
  assert.equal(plan.changes, false, JSON.stringify(plan.steps.map((s) => [s.id, s.action])));
  assert.match(formatPlan(plan), /Nothing to change/);
  // Other serve settings restart the daemon; an expired certificate is issued again.
  const moved = buildPlan(upOptionsFrom(flags({ reloadCmd: 'systemctl reload nginx', port: '7861' }), {}, HOME, DEFAULT_TIERS), HOME, facts);
  assert.equal(moved.steps.find((s) => s.id === 'daemon')!.action, 'update');
  const expired = buildPlan(o, HOME, { ...facts, now: Date.parse('2027-04-01T00:00:00Z') });
  assert.equal(expired.steps.find((s) => s.id === 'cert')!.action, 'update');
});

test('a placeholder certificate is never reused: the plan issues one from the CA in its place', () => {
  const o = upOptionsFrom(flags({ reloadCmd: 'systemctl reload nginx' }), {}, HOME, DEFAULT_TIERS);
  const lineage = { names: ['guard.example.com'], notAfter: '2026-12-31T00:00:00Z', revoked: false, provider: '', reloadCmd: 'systemctl reload nginx' };
  const real = buildPlan(o, HOME, { ...bare, lineage });
  assert.equal(real.steps.find((s) => s.id === 'cert')!.action, 'unchanged');
  const plan = buildPlan(o, HOME, { ...bare, lineage: { ...lineage, placeholder: true } });
  const cert = plan.steps.find((s) => s.id === 'cert')!;
  assert.equal(cert.action, 'update');
  assert.match(cert.details[0]!, /issue, replacing the self-signed placeholder/);
  assert.ok(cert.files.some((f) => f.path.endsWith('/fullchain.pem')));
});

test('the daemon trusts the local nginx as its proxy, and the plan says so', () => {
  const o = upOptionsFrom(flags(), {}, HOME, DEFAULT_TIERS);
  assert.deepEqual(o.serveArgs.slice(o.serveArgs.indexOf('--trusted-proxies'), o.serveArgs.indexOf('--trusted-proxies') + 2), ['--trusted-proxies', '127.0.0.1/32,::1/128']);
  const details = buildPlan(o, HOME, bare).steps.find((s) => s.id === 'daemon')!.details.join('\n');
  assert.match(details, /guardctl serve .*--trusted-proxies 127\.0\.0\.1\/32,::1\/128/);
  assert.match(details, /trusts X-Forwarded-For from the local nginx/);
});

test('the plan\'s site diff goes through the painter (coloured on a terminal)', () => {
  const plan = buildPlan(upOptionsFrom(flags(), {}, HOME, DEFAULT_TIERS), HOME, bare);
  assert.match(formatPlan(plan, (d) => d.split('\n').map((l) => `<${l}>`).join('\n')), /<\+\+\+ \/etc\/nginx\/conf\.d\/guard\.example\.com\.conf>/);
});

test('HTTP-01 without a site serving the webroot starts with the bootstrap site', () => {
  const o = upOptionsFrom(flags({ dns: undefined, http: true }), {}, HOME, DEFAULT_TIERS);
  const plan = buildPlan(o, HOME, bare);
  assert.equal(plan.steps[0]!.id, 'bootstrap');
  assert.match(plan.steps.find((s) => s.id === 'cert')!.details.join(' '), /HTTP-01 through \/var\/lib\/guardctl\/acme-webroot/);
  const served = buildPlan(o, HOME, { ...bare, site: { ...bare.site, servesWebroot: true } });
  assert.notEqual(served.steps[0]!.id, 'bootstrap');
});

test('the systemd path: units in the plan, and systemd-analyze verify accepts them', (t) => {
  const demo = new URL('../../models/guard-demo', import.meta.url).pathname;
  const o = upOptionsFrom(flags({ supervisor: 'systemd', model: [`guard=moderate:${demo}:small`], basePath: '/guard' }), {}, HOME, DEFAULT_TIERS);
  const plan = buildPlan(o, HOME, bare);
  const daemon = plan.steps.find((s) => s.id === 'daemon')!;
  assert.match(daemon.details[0]!, /a systemd unit, guardctl.service/);
  assert.deepEqual(daemon.files, [{ path: '/etc/systemd/system/guardctl.service', mode: '0644' }]);
  assert.match(plan.steps.find((s) => s.id === 'renewal')!.details.join(' '), /guardctl-renew.timer runs guardctl cert renew --all/);
  const units = unitsFor(unitInputs(o, HOME), ['guardctl.service', 'guardctl-renew.service', 'guardctl-renew.timer']);
  assert.match(units['guardctl.service']!, new RegExp(`serve --host 127\\.0\\.0\\.1 --port 7860 --trusted-proxies 127\\.0\\.0\\.1/32,::1/128 --model guard=moderate:${demo}:small --base-path /guard`));
  if (!haveProgram(t, 'systemd-analyze', '--version')) return;
  const dir = tempDir(t);
  for (const [name, text] of Object.entries(units)) fs.writeFileSync(path.join(dir, name), text);
  const v = spawnSync('systemd-analyze', ['verify', '--man=no', ...Object.keys(units).map((n) => path.join(dir, n))], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stderr + v.stdout);
  assert.doesNotMatch(v.stderr, /Unknown (key|section)|Invalid|Failed/i, v.stderr);
});

test('bad flags are refused before anything is planned', async (t) => {
  const home = tempDir(t);
  const cases: Array<[string[], RegExp]> = [
    [['--dns', 'manual'], /which domain\?/],
    [['-d', 'a.example.test'], /give --dns PROVIDER or --http/],
    [['-d', 'a.example.test', '--dns', 'manual', '--http'], /give --dns or --http, not both/],
    [['-d', '*.example.test', '--http'], /wildcard certificate needs the DNS-01 challenge/],
    [['-d', 'a.example.test', '--http', '--tier-key', 'nocolon'], /--tier-key must be NAME:TIER/],
    [['-d', 'a.example.test', '--http', '--tier-key', 'a:platinum'], /tier/],
    [['-d', 'a.example.test', '--http', '--supervisor', 'runit'], /--supervisor must be auto, systemd or process/],
    [['-d', 'a.example.test', '--http', '--base-path', 'guard'], /path|prefix/i],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(['--home', home, 'up', ...args]);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
  }
  assert.deepEqual(fs.readdirSync(home), []);
});

test('status and down without a deployment say so', async (t) => {
  const home = tempDir(t);
  const status = await runCli(['--home', home, '--json', 'status']);
  assert.equal(status.code, 1);
  assert.match(status.json<{ attention: string[] }>().attention[0]!, /nothing is deployed/);
  const down = await runCli(['--home', home, 'down', '--yes']);
  assert.equal(down.code, 2);
  assert.match(down.stderr, /nothing was deployed with guardctl up/);
});
