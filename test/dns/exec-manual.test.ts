import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { GuardError } from '../../src/core/errors.js';
import { factory as exec } from '../../src/dns/providers/exec/index.js';
import { createManual } from '../../src/dns/providers/manual/index.js';
import type { ProviderContext } from '../../src/dns/types.js';
import { tempDir } from '../helpers/cli.js';

const record = { fqdn: '_acme-challenge.Example.com', value: 'abc123', ttl: 60 };
const PATH = process.env.PATH ?? '/usr/bin:/bin';

function script(dir: string, name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o700 });
  return file;
}

function ctx(env: NodeJS.ProcessEnv, options?: ProviderContext['options']) {
  const logs: string[] = [];
  return { logs, ctx: { env, options, log: (level: string, message: string) => void logs.push(`${level} ${message}`) } as ProviderContext };
}

test('exec: lego\'s protocol (mode, FQDN with its dot, value), the TTL in the environment, --dns-exec over the variable', async (t) => {
  const dir = tempDir(t);
  const out = path.join(dir, 'calls');
  const good = script(dir, 'good.sh', `echo "$1 $2 $3 ttl=$GUARDCTL_DNS_TTL" >> "${out}"`);
  const { ctx: c, logs } = ctx({ PATH, GUARDCTL_DNS_EXEC: path.join(dir, 'not-this-one') }, { exec: good });
  const p = exec.create(c);
  await p.present(record);
  await p.cleanup(record);
  assert.equal(fs.readFileSync(out, 'utf8'), 'present _acme-challenge.example.com. abc123 ttl=60\ncleanup _acme-challenge.example.com. abc123 ttl=60\n');
  assert.ok(logs.some((l) => l.startsWith('info exec: ') && l.includes('succeeded')));
});

test('exec: a failing script reports its exit status and the tail of its stderr', async (t) => {
  const dir = tempDir(t);
  const noisy = script(dir, 'noisy.sh', 'i=0; while [ $i -lt 200 ]; do echo "line $i of noise" >&2; i=$((i+1)); done; echo "the real reason" >&2; exit 4');
  const { ctx: c } = ctx({ PATH, GUARDCTL_DNS_EXEC: noisy });
  await assert.rejects(exec.create(c).present(record), (err: GuardError) => {
    assert.equal(err.code, 'GUARD_E_DNS_PROVIDER');
    assert.match(err.message, /^exec: .*noisy\.sh present _acme-challenge\.example\.com\. exited with status 4: \.\.\..*the real reason$/s);
    assert.ok(err.message.length < 900, 'only the tail of stderr');
    assert.ok(!err.message.includes('line 0 of noise'));
    assert.deepEqual(err.details, { provider: 'exec', action: 'present', exitCode: 4 });
    return true;
  });
  const silent = script(dir, 'silent.sh', 'exit 1');
  await assert.rejects(exec.create(ctx({ PATH, GUARDCTL_DNS_EXEC: silent }).ctx).cleanup(record), /exited with status 1 and printed nothing on stderr/);
});

test('exec: a missing or non-executable script, a timeout and a bad timeout are clear errors', async (t) => {
  const dir = tempDir(t);
  await assert.rejects(exec.create(ctx({ PATH, GUARDCTL_DNS_EXEC: path.join(dir, 'nope.sh') }).ctx).present(record), (err: GuardError) => /cannot run .*nope\.sh: no such file/.test(err.message) && /chmod \+x/.test(err.hint ?? ''));
  const plain = path.join(dir, 'plain.sh');
  fs.writeFileSync(plain, '#!/bin/sh\nexit 0\n', { mode: 0o600 });
  await assert.rejects(exec.create(ctx({ PATH, GUARDCTL_DNS_EXEC: plain }).ctx).present(record), /cannot run .*plain\.sh: permission denied/);
  // It never finishes by itself, so only the timeout can end it, however slow the machine.
  const slow = script(dir, 'slow.sh', 'exec sleep 600');
  await assert.rejects(exec.create(ctx({ PATH, GUARDCTL_DNS_EXEC: slow, GUARDCTL_DNS_EXEC_TIMEOUT: '0.2' }).ctx).present(record), /did not finish within 0\.2s/);
  assert.throws(() => exec.create(ctx({ GUARDCTL_DNS_EXEC: slow, GUARDCTL_DNS_EXEC_TIMEOUT: 'soon' }).ctx), /GUARDCTL_DNS_EXEC_TIMEOUT must be a positive number/);
  assert.throws(() => exec.create(ctx({}).ctx), /^GuardError: exec: missing setting: set GUARDCTL_DNS_EXEC \(or EXEC_PATH\)$/);
});

function io(isTTY: boolean) {
  const input = Object.assign(new PassThrough(), { isTTY });
  const sleeps: number[] = [];
  return { input, sleeps, io: { input, sleep: async (ms: number) => void sleeps.push(ms) } };
}

test('manual: shows the record, waits for Enter on a terminal, and says what to remove afterwards', async () => {
  const { ctx: c, logs } = ctx({});
  const t = io(true);
  const p = createManual(c, t.io);
  let done = false;
  const presenting = p.present(record).then(() => void (done = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(done, false, 'still waiting for Enter');
  assert.ok(logs.some((l) => l.includes('_acme-challenge.example.com. 60 IN TXT "abc123"')));
  t.input.write('\n');
  await presenting;
  await p.cleanup(record);
  assert.match(logs.at(-1)!, /^info manual: validation is over: the record can be removed:\n {4}_acme-challenge\.example\.com\. 60 IN TXT "abc123"$/);
  const closed = io(true);
  const q = createManual(c, closed.io).present(record);
  closed.input.end();
  await assert.rejects(q, /manual: stdin closed before Enter was pressed/);
});

test('manual: --wait sleeps instead; without a terminal it is required', async () => {
  const waited = io(false);
  await createManual(ctx({}, { wait: '90' }).ctx, waited.io).present(record);
  assert.deepEqual(waited.sleeps, [90_000]);
  const minutes = io(false);
  await createManual(ctx({}, { wait: '2m' }).ctx, minutes.io).present(record);
  assert.deepEqual(minutes.sleeps, [120_000]);
  const flag = io(true);
  await createManual(ctx({}, { wait: true }).ctx, flag.io).present(record);
  assert.deepEqual(flag.sleeps, [60_000]);
  await assert.rejects(createManual(ctx({}).ctx, io(false).io).present(record), (err: GuardError) => /stdin is not a terminal/.test(err.message) && /--wait DURATION/.test(err.hint ?? ''));
  assert.throws(() => createManual(ctx({}, { wait: 'later' }).ctx, io(false).io), /--wait must be a duration/);
});
