import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/cli.js';
import { gateFixture } from '../helpers/gate-app.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

const SECRET = 'gs_commitbeforeanswer0000000000000000000000';

/** The state's commit, held until the test says so: what the answer waits for. */
async function heldCommit(t: { after(fn: () => unknown): void }) {
  const f = await gateFixture({}, undefined, path.join(tempDir(t), 'gate-state.db'));
  t.after(() => f.state.close());
  const state = f.state as { durable(): Promise<void> };
  const real = state.durable.bind(state);
  let release!: (err?: Error) => void;
  const gate = new Promise<Error | undefined>((resolve) => (release = resolve));
  let asked = 0;
  state.durable = () => {
    asked++;
    return real().then(() => gate).then((err) => (err ? Promise.reject(err) : undefined));
  };
  return { f, release, asked: () => asked };
}

test('with the durable state, a request proceeds at once but its answer waits until its nonce and counts are committed', { timeout: HANG_BOUND_MS }, async (t) => {
  const { f, release, asked } = await heldCommit(t);
  const key = f.keys.add(SECRET);
  let answered = false;
  const pending = f.send({ keyId: key.id, secret: SECRET, url: '/api/v1/slow', body: JSON.stringify({ text: 'hello' }) }).finally(() => (answered = true));
  // The commit is held: the request still reaches its route (the gate does not wait for the commit)...
  while (asked() === 0 || f.slowWaiting() === 0) await new Promise((r) => setImmediate(r));
  f.releaseSlow();
  // ...but once the route has answered, the answer does not leave while the commit is held.
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.equal(answered, false, 'the answer left before the commit');
  release();
  const res = await pending;
  assert.equal(res.statusCode, 200, res.body);
});

test('a failed commit answers an error, never the route\'s 200', { timeout: HANG_BOUND_MS }, async (t) => {
  const { f, release } = await heldCommit(t);
  const key = f.keys.add(SECRET);
  const pending = f.send({ keyId: key.id, secret: SECRET, body: JSON.stringify({ text: 'hello' }) });
  release(new Error('disk full'));
  const res = await pending;
  assert.ok(res.statusCode >= 500, `${res.statusCode} ${res.body}`);
  assert.ok(!res.body.includes('"ok":true'), res.body);
});
