/**
 * Colour: one decision per stream (src/core/colour.ts), used for errors, warnings, doctor, cert list, keys list
 * and nginx output. Off off a TTY, under --json, with NO_COLOR and with --no-color; FORCE_COLOR forces it; and
 * --json output is the same bytes whatever the colour settings.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Chalk } from 'chalk';
import type { Bundle } from '../../src/acme/certinfo.js';
import { ensurePlaceholder } from '../../src/acme/placeholder.js';
import { CertStore } from '../../src/acme/store.js';
import type { LineageMeta } from '../../src/acme/types.js';
import { main } from '../../src/cli.js';
import { colourFor, colourLevel } from '../../src/core/colour.js';
import { createOutput, table, visible } from '../../src/core/output.js';
import { formatProblems } from '../../src/nginx/check.js';
import { colourDiff } from '../../src/nginx/diff.js';
import { MemoryStream, tempDir } from '../helpers/cli.js';
import { haveProgram } from '../helpers/system.js';

// eslint-disable-next-line no-control-regex
const ESC = /\u001b\[/;
const RED = '\u001b[31m';
const YELLOW = '\u001b[33m';
const GREEN = '\u001b[32m';
const DIM = '\u001b[2m';

/** A stream that says it is a terminal of `depth` bits, as tty.WriteStream does. */
class TtyStream extends MemoryStream {
  readonly isTTY = true;
  getColorDepth(): number {
    return 8;
  }
}

async function run(args: string[], opts: { env?: NodeJS.ProcessEnv; tty?: boolean; now?: () => number } = {}) {
  const stdout = opts.tty ? new TtyStream() : new MemoryStream();
  const stderr = opts.tty ? new TtyStream() : new MemoryStream();
  const code = await main(args, { stdout, stderr, env: opts.env ?? {}, now: opts.now });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

test('colourLevel: --json and --no-color always off; FORCE_COLOR forces (0/false off); NO_COLOR; else a TTY only', () => {
  const tty = { isTTY: true, getColorDepth: () => 24 };
  const pipe = {};
  assert.equal(colourLevel(tty, { env: {} }), 3);
  assert.equal(colourLevel({ isTTY: true, getColorDepth: () => 8 }, { env: {} }), 2);
  assert.equal(colourLevel({ isTTY: true, getColorDepth: () => 1 }, { env: {} }), 0, 'a terminal without colours');
  assert.equal(colourLevel(pipe, { env: {} }), 0);
  assert.equal(colourLevel(tty, { env: { NO_COLOR: '1' } }), 0);
  assert.equal(colourLevel(tty, { env: { NO_COLOR: '' } }), 3, 'an empty NO_COLOR is unset (no-color.org)');
  assert.equal(colourLevel(pipe, { env: { FORCE_COLOR: '1' } }), 1);
  assert.equal(colourLevel(pipe, { env: { FORCE_COLOR: '' } }), 1);
  assert.equal(colourLevel(pipe, { env: { FORCE_COLOR: '3' } }), 3);
  assert.equal(colourLevel(tty, { env: { FORCE_COLOR: '0' } }), 0);
  assert.equal(colourLevel(tty, { env: { FORCE_COLOR: 'false' } }), 0);
  assert.equal(colourLevel(pipe, { env: { FORCE_COLOR: '1', NO_COLOR: '1' } }), 1, 'FORCE_COLOR wins, as in Node');
  assert.equal(colourLevel(tty, { env: { FORCE_COLOR: '3' }, json: true }), 0);
  assert.equal(colourLevel(tty, { env: { FORCE_COLOR: '3' }, noColor: true }), 0);
});

test('each stream decides for itself: a terminal stdout gets colour while a piped stderr does not, and the other way round', () => {
  const ttyOut = new TtyStream();
  const pipedErr = new MemoryStream();
  const a = createOutput({ stdout: ttyOut, stderr: pipedErr }, false);
  assert.equal(a.paint.level, 2);
  a.warn('w');
  assert.equal(pipedErr.text, 'warning: w\n');
  const ttyErr = new TtyStream();
  const b = createOutput({ stdout: new MemoryStream(), stderr: ttyErr }, false);
  assert.equal(b.paint.level, 0);
  b.warn('w');
  assert.equal(ttyErr.text, `${YELLOW}warning:\u001b[39m w\n`);
  const json = createOutput({ stdout: new TtyStream(), stderr: new TtyStream() }, true, { env: { FORCE_COLOR: '3' } });
  assert.equal(json.paint.level, 0);
});

test('errors: "error:" red and the code dimmed on a TTY; plain off a TTY, with NO_COLOR and with --no-color', async (t) => {
  const home = tempDir(t);
  const args = ['--home', home, 'cert', 'renew', 'nope'];
  const coloured = await run(args, { tty: true });
  assert.equal(coloured.code, 1);
  assert.ok(coloured.stderr.startsWith(`${RED}error:\u001b[39m no certificate named "nope"`), JSON.stringify(coloured.stderr));
  assert.match(coloured.stderr, new RegExp(`${DIM.replace('[', '\\[')}\\(GUARD_E_CERT_NOT_FOUND\\)`));
  const plain = 'error: no certificate named "nope" in';
  for (const [what, r] of [
    ['a pipe', await run(args)],
    ['NO_COLOR', await run(args, { tty: true, env: { NO_COLOR: '1' } })],
    ['--no-color', await run(['--no-color', ...args], { tty: true, env: { FORCE_COLOR: '3' } })],
  ] as const) {
    assert.doesNotMatch(r.stderr, ESC, what);
    assert.ok(r.stderr.startsWith(plain), `${what}: ${r.stderr}`);
    assert.match(r.stderr, /\(GUARD_E_CERT_NOT_FOUND\)\n {2}hint: /, what);
  }
  const forced = await run(args, { env: { FORCE_COLOR: '1' } });
  assert.ok(forced.stderr.startsWith(`${RED}error:`), 'FORCE_COLOR colours a pipe');
});

test('warnings: "warning:" yellow on a TTY only', async (t) => {
  const home = tempDir(t);
  // An unsigned request is warned about before the connection fails.
  const args = ['--home', home, 'request', 'GET', '/healthz', '--url', 'http://127.0.0.1:9'];
  const coloured = await run(args, { tty: true });
  assert.match(coloured.stderr, new RegExp(`^\\u001b\\[33mwarning:\\u001b\\[39m no --key given`, 'm'));
  const plain = await run(args);
  assert.match(plain.stderr, /^warning: no --key given/m);
  assert.doesNotMatch(plain.stderr, ESC);
});

const fakeBundle: Bundle = { cert: 'c\n', chain: '', fullchain: 'c\n', privkey: 'k\n' };
function lineage(store: CertStore, name: string, notAfter: number, extra: Partial<LineageMeta> = {}): void {
  store.install(name, fakeBundle, {
    version: 1, lineage: name, names: [`${name}.example.test`], server: 'https://ca.test/dir', keyType: 'ec256', dns: { provider: 'manual', options: {} },
    cert: { serial: '01', issuer: 'CA', notBefore: new Date(notAfter - 90 * 86_400_000).toISOString(), notAfter: new Date(notAfter).toISOString(), issuedAt: new Date(notAfter - 90 * 86_400_000).toISOString(), certId: null },
    nextRenewalAt: new Date(notAfter - 30 * 86_400_000).toISOString(),
    ...extra,
  });
}

test('cert list: days left red under 7, yellow under 21, plain beyond; a placeholder says so; --json the same bytes with colour forced', async (t) => {
  const home = tempDir(t);
  const store = new CertStore(home);
  const now = Date.parse('2026-06-01T12:00:00Z');
  const day = 86_400_000;
  lineage(store, 'a-soon', now + 3 * day + 1000);
  lineage(store, 'b-later', now + 15 * day + 1000);
  lineage(store, 'c-fine', now + 60 * day + 1000);
  lineage(store, 'd-revoked', now + 60 * day, { revokedAt: new Date(now - day).toISOString() });
  await ensurePlaceholder(home, 'e-fresh', ['fresh.example.test'], now);
  const r = await run(['--home', home, 'cert', 'list'], { tty: true, now: () => now });
  assert.equal(r.code, 0, r.stderr);
  const row = (name: string) => r.stdout.split('\n').find((l) => l.startsWith(name))!;
  assert.ok(row('a-soon').includes(`${RED}3\u001b[39m`), row('a-soon'));
  assert.ok(row('b-later').includes(`${YELLOW}15\u001b[39m`), row('b-later'));
  assert.doesNotMatch(row('c-fine'), ESC);
  assert.ok(row('d-revoked').includes(`${RED}revoked`));
  assert.ok(row('e-fresh').includes(`${YELLOW}placeholder: needs cert issue`));
  // The columns still line up: colour escapes do not count as width.
  const plain = await run(['--home', home, 'cert', 'list'], { now: () => now });
  assert.doesNotMatch(plain.stdout, ESC);
  assert.equal(r.stdout.replace(/\u001b\[[0-9;]*m/g, ''), plain.stdout);

  const json = await run(['--home', home, '--json', 'cert', 'list'], { now: () => now });
  const forced = await run(['--home', home, '--json', 'cert', 'list'], { tty: true, env: { FORCE_COLOR: '3' }, now: () => now });
  assert.equal(forced.stdout, json.stdout);
  assert.equal(JSON.parse(json.stdout).certificates.length, 5);
});

test('keys list: revoked and expired keys dimmed, active ones not; --json the same bytes with colour forced', async (t) => {
  const home = tempDir(t);
  const create = async (name: string, ...extra: string[]) => JSON.parse((await run(['--home', home, '--json', 'keys', 'create', '--name', name, '--tier', 'free', ...extra])).stdout).id as string;
  await create('live');
  const gone = await create('gone');
  await create('old', '--expires', '1d');
  assert.equal((await run(['--home', home, 'keys', 'revoke', gone])).code, 0);
  const later = () => Date.now() + 2 * 86_400_000;
  const r = await run(['--home', home, 'keys', 'list'], { tty: true, now: later });
  assert.equal(r.code, 0, r.stderr);
  const row = (name: string) => r.stdout.split('\n').find((l) => l.includes(` ${name} `) || l.includes(`${name}\u001b`))!;
  assert.doesNotMatch(row('live'), ESC);
  for (const name of ['gone', 'old']) {
    assert.ok(row(name).startsWith(DIM), `${name}: ${JSON.stringify(row(name))}`);
    assert.equal(row(name).split(DIM).length - 1, 7, 'every cell dimmed');
  }
  const json = await run(['--home', home, '--json', 'keys', 'list'], { now: later });
  const forced = await run(['--home', home, '--json', 'keys', 'list'], { tty: true, env: { FORCE_COLOR: '3' }, now: later });
  assert.equal(forced.stdout, json.stdout);
  assert.deepEqual(JSON.parse(json.stdout).keys.map((k: { status: string }) => k.status).sort(), ['active', 'expired', 'revoked']);
});

test('doctor: ok green, warn yellow, FAIL red on a TTY; plain words off it; --json identical with colour forced', async (t) => {
  const home = tempDir(t);
  fs.chmodSync(home, 0o755); // a data directory others can enter: a failed required check
  const r = await run(['--home', home, 'doctor'], { tty: true });
  assert.equal(r.code, 1);
  assert.match(r.stdout, new RegExp(`^\\u001b\\[32mok  \\u001b\\[39m  node`, 'm'));
  assert.match(r.stdout, new RegExp(`^\\u001b\\[31m\\u001b\\[1mFAIL\\u001b\\[22m\\u001b\\[39m  data dir`, 'm'));
  assert.match(r.stdout, /\u001b\[31msome required checks failed/);
  const plain = await run(['--home', home, 'doctor']);
  assert.match(plain.stdout, /^FAIL {2}data dir/m);
  assert.doesNotMatch(plain.stdout, ESC);
  const json = await run(['--home', home, '--json', 'doctor'], { tty: true, env: { FORCE_COLOR: '3' } });
  assert.doesNotMatch(json.stdout + json.stderr, ESC);
  assert.equal(JSON.parse(json.stdout).checks.find((c: { name: string }) => c.name === 'data dir').ok, false);
});

test('nginx: diffs + green and - red; nginx check problems coloured by level; --json identical with colour forced', async (t) => {
  const paint = new Chalk({ level: 1 });
  const diff = '--- a\n+++ a\n@@ -1,2 +1,2 @@\n same\n-old\n+new\n';
  assert.equal(colourDiff(diff, paint), `${paint.bold('--- a')}\n${paint.bold('+++ a')}\n${paint.cyan('@@ -1,2 +1,2 @@')}\n same\n${paint.red('-old')}\n${paint.green('+new')}\n`);
  assert.equal(colourDiff(diff, new Chalk({ level: 0 })), diff);
  assert.equal(formatProblems([{ level: 'emerg', message: 'x' }, { level: 'warn', message: 'y' }], paint), `${paint.red('[emerg]')} x\n${paint.yellow('[warn]')} y`);
  assert.equal(formatProblems([{ level: 'emerg', message: 'x' }]), '[emerg] x');
  assert.equal(visible(paint.red('abc')), 3);
  assert.equal(table(['A', 'B'], [[paint.red('x'), 'y']]).split('\n')[1], `${paint.red('x')}  y`);

  if (!haveProgram(t, 'nginx', '-v')) return;
  const file = path.join(tempDir(t), 'broken.conf');
  fs.writeFileSync(file, 'server {\n    listen 127.0.0.1:18099;\n    retrun 204;\n}\n');
  const r = await run(['nginx', 'check', file], { tty: true });
  assert.equal(r.code, 1);
  assert.match(r.stdout, new RegExp(`^\\u001b\\[31m\\[emerg\\]\\u001b\\[39m unknown directive "retrun"`, 'm'));
  const json = await run(['--json', 'nginx', 'check', file]);
  const forced = await run(['--json', 'nginx', 'check', file], { tty: true, env: { FORCE_COLOR: '3' } });
  assert.equal(forced.stdout.replaceAll(/nginx-check-[^/"]+/g, 'X'), json.stdout.replaceAll(/nginx-check-[^/"]+/g, 'X'));
  assert.doesNotMatch(forced.stdout, ESC);
});

test('--json errors are the same bytes with colour forced, and nothing coloured reaches stderr', async (t) => {
  const home = tempDir(t);
  const args = ['--home', home, '--json', 'cert', 'renew', 'nope'];
  const plain = await run(args);
  const forced = await run(args, { tty: true, env: { FORCE_COLOR: '3' } });
  assert.equal(forced.code, 1);
  assert.equal(forced.stdout, plain.stdout);
  assert.equal(forced.stderr, plain.stderr);
  assert.equal(JSON.parse(forced.stdout).error.code, 'GUARD_E_CERT_NOT_FOUND');
});

test('colour off costs no chalk: the plain painter returns its arguments unchanged, however styles are chained', () => {
  const plain = colourFor(new MemoryStream(), { env: {} });
  assert.equal(plain.level, 0);
  assert.equal(plain.red('a'), 'a');
  assert.equal(plain.red.bold.dim('a', 'b'), 'a b', 'chalk joins several arguments with a space');
  assert.equal(plain.yellow(''), '');
  const coloured = colourFor(new TtyStream(), { env: {} });
  assert.equal(coloured.level, 2);
  assert.equal(coloured.red('a'), `${RED}a\u001b[39m`);
});

test('commander\'s own parse errors get the red "error:" too; without colour their text is unchanged', async () => {
  const plain = await run(['keys', 'list', '--frobnicate']);
  assert.equal(plain.code, 2);
  assert.ok(plain.stderr.startsWith("error: unknown option '--frobnicate'\n"), plain.stderr);
  const forced = await run(['keys', 'list', '--frobnicate'], { env: { FORCE_COLOR: '1' } });
  assert.equal(forced.code, 2);
  assert.ok(forced.stderr.startsWith(`${RED}error:`), JSON.stringify(forced.stderr));
  // eslint-disable-next-line no-control-regex
  const strip = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '');
  assert.equal(strip(forced.stderr), plain.stderr, 'the same words, only coloured');
  const tty = await run(['keys', 'create', '--name', 'me', '--teir', 'free'], { tty: true });
  assert.ok(tty.stderr.startsWith(`${RED}error:`), JSON.stringify(tty.stderr));
  assert.match(strip(tty.stderr), /Did you mean --tier\?/);
  for (const off of [['--no-color'], ['--json']]) {
    const r = await run([...off, 'keys', 'list', '--frobnicate'], { env: { FORCE_COLOR: '1' }, tty: true });
    assert.doesNotMatch(r.stderr, ESC, off.join(' '));
  }
});
