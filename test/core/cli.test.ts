import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../helpers/cli.js';

const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

test('--version and --help on the program and every subcommand', async () => {
  const v = await runCli(['--version']);
  assert.equal(v.code, 0);
  assert.equal(v.stdout.trim(), pkg.version);
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  for (const word of ['keys', 'sign', 'doctor', '--json', '--verbose', '--config', '--home']) assert.match(help.stdout, new RegExp(word));
  for (const sub of [['keys'], ['keys', 'create'], ['keys', 'list'], ['keys', 'rotate'], ['sign'], ['doctor']]) {
    const r = await runCli([...sub, '--help']);
    assert.equal(r.code, 0, sub.join(' '));
    assert.match(r.stdout, /^Usage: guardctl /);
  }
});

test('usage errors exit 2; user errors exit 1 with one line and a hint; --json puts the error on stdout', async (t) => {
  const unknown = await runCli(['keys', 'list', '--frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown option '--frobnicate'/);
  const home = tempDir(t);
  const cfg = path.join(home, 'guardctl.yaml');
  fs.writeFileSync(cfg, 'log: chatty\n');
  const bad = await runCli(['--home', home, 'keys', 'list']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, 'error: unknown log level "chatty" (GUARD_E_CONFIG)\n  hint: use one of fatal, error, warn, info, debug, trace, silent (GUARDCTL_LOG or "log:" in the config file)\n');
  const asJson = await runCli(['--home', home, '--json', 'keys', 'list']);
  assert.equal(asJson.code, 1);
  assert.equal(asJson.json().error.code, 'GUARD_E_CONFIG');
  // The environment beats the config file.
  const fromEnv = await runCli(['--home', home, 'keys', 'tiers'], { env: { GUARDCTL_LOG: 'error' } });
  assert.equal(fromEnv.code, 0, fromEnv.stderr);
});

test('a missing --config file is an error, a missing default config file is not', async (t) => {
  const home = tempDir(t);
  const r = await runCli(['--home', home, '--config', path.join(home, 'nope.yaml'), 'keys', 'tiers']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot read config file .*nope\.yaml/);
  assert.equal((await runCli(['--home', home, 'keys', 'tiers'])).code, 0);
});

test('bin/guardctl.js runs as a program and reports its version', () => {
  const r = spawnSync(process.execPath, [new URL('../../bin/guardctl.js', import.meta.url).pathname, '--version'], { encoding: 'utf8', env: { ...process.env, GUARDCTL_FROM_SRC: '1' } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), pkg.version);
});

test('an unknown option is reported before a missing required one (a typo is not hidden)', async (t) => {
  const home = tempDir(t);
  const typo = await runCli(['--home', home, 'keys', 'create', '--name', 'me', '--teir', 'free']);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /unknown option '--teir'/);
  assert.match(typo.stderr, /Did you mean --tier\?/);
  assert.doesNotMatch(typo.stderr, /required option/);
  const missing = await runCli(['--home', home, 'keys', 'create', '--name', 'me']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /required option '--tier <tier>' not specified/);
});

test('every --help spells defaults one way: "(default 60s)", never commander\'s (default: "60s")', async () => {
  const { buildProgram } = await import('../../src/cli.js');
  const { MemoryStream } = await import('../helpers/cli.js');
  const program = buildProgram({ stdout: new MemoryStream(), stderr: new MemoryStream(), env: {} });
  const walk = (c: typeof program): string[] => [c.helpInformation(), ...c.commands.flatMap((s) => walk(s as typeof program))];
  const texts = walk(program).join('\n').replace(/\s+/g, ' ');
  assert.doesNotMatch(texts, /default: /);
  assert.match(texts, /--timeout <duration> give up after this long \(a number of seconds, or 30s, 2m\) \(default 120s\)/);
  assert.match(texts, /--grace <duration> .*\(default 24h\)/);
  assert.match(texts, /--inference-timeout <duration> time a request may spend in the engine, queue included \(504 beyond\) \(default 60s; env GUARDCTL_INFERENCE_TIMEOUT\)/);
});

test('every --help spells a duration one way: <duration>, on the time-span flags of every command', async () => {
  const { buildProgram } = await import('../../src/cli.js');
  const { MemoryStream } = await import('../helpers/cli.js');
  const program = buildProgram({ stdout: new MemoryStream(), stderr: new MemoryStream(), env: {} });
  type Cmd = typeof program;
  const options = (c: Cmd, name: string): Array<[string, string]> => [
    ...c.options.map((o): [string, string] => [name, o.flags]),
    ...c.commands.flatMap((s) => options(s as Cmd, `${name} ${s.name()}`)),
  ];
  const all = options(program, 'guardctl');
  const other = all.filter(([, flags]) => /<(dur|time|seconds|secs|sec|s|ms|timeout|interval|period|delay)>/i.test(flags));
  assert.deepEqual(other, [], 'a duration placeholder other than <duration>');
  // A flag named for a time span takes <duration> (--max-wait-ms <n> names its unit; --batch-wait is no span).
  const spans = all.filter(([, flags]) => /--(?:[\w-]*-)?(timeout|interval|grace|stale)\b|--wait\b/.test(flags) && /</.test(flags));
  assert.ok(spans.length >= 12, JSON.stringify(spans));
  for (const [cmd, flags] of spans) assert.match(flags, /<duration>$/, `${cmd} ${flags}`);
  const texts = all.map(([, f]) => f).join(' ');
  for (const flag of ['--dns-timeout', '--dns-interval', '--wait', '--fail-timeout', '--drain-timeout']) assert.match(texts, new RegExp(`${flag} <duration>`));
});

test('counts agree with their nouns ("1 key", not "1 keys")', async (t) => {
  const home = tempDir(t);
  assert.equal((await runCli(['--home', home, 'keys', 'create', '--name', 'one', '--tier', 'free'])).code, 0);
  const out = path.join(home, 'keys.jsonl');
  const exported = await runCli(['--home', home, 'keys', 'export', '--out', out]);
  assert.equal(exported.code, 0, exported.stderr);
  assert.match(exported.stdout, /^Exported 1 key and 1 event to /);
  const other = tempDir(t);
  // The secrets stay sealed under the exporting store's master key: the importing store uses the same one.
  fs.copyFileSync(path.join(home, 'master.key'), path.join(other, 'master.key'));
  fs.chmodSync(path.join(other, 'master.key'), 0o600);
  const imported = await runCli(['--home', other, 'keys', 'import', out]);
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, /Imported 1 key and 1 event/);
});
