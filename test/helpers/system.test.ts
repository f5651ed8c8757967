import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from './cli.js';
import { findProgram, haveProgram } from './system.js';

function program(dir: string, name: string, body: string, mode = 0o755): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode });
  return file;
}

/** A stand-in for the test context that records what haveProgram asked of it. */
function context() {
  const skipped: string[] = [];
  return { skipped, t: { skip: (message?: string) => void skipped.push(message ?? '') } };
}

function withRequireSystem<T>(value: string | undefined, fn: () => T): T {
  const before = process.env.GUARDCTL_REQUIRE_SYSTEM;
  if (value === undefined) delete process.env.GUARDCTL_REQUIRE_SYSTEM;
  else process.env.GUARDCTL_REQUIRE_SYSTEM = value;
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env.GUARDCTL_REQUIRE_SYSTEM;
    else process.env.GUARDCTL_REQUIRE_SYSTEM = before;
  }
}

test('findProgram: the first executable file of that name on PATH; not a plain file, not a folder', (t) => {
  const [a, b] = [tempDir(t), tempDir(t)];
  program(a, 'tool', 'exit 0', 0o644); // not executable
  fs.mkdirSync(path.join(a, 'other'));
  const real = program(b, 'tool', 'exit 0');
  const searchPath = ['', a, b].join(path.delimiter);
  assert.equal(findProgram('tool', searchPath), real);
  assert.equal(findProgram('other', searchPath), undefined);
  assert.equal(findProgram('missing', searchPath), undefined);
  assert.equal(findProgram(real, ''), real, 'a path is taken as it is');
  assert.equal(findProgram(path.join(a, 'tool'), ''), undefined);
});

test('haveProgram: a program slow to print its version (a busy machine) is still found', (t) => {
  // 11 s: past the 10 s after which the old probe gave up with ETIMEDOUT, as it did for testssl on a busy CI machine.
  const slow = program(tempDir(t), 'slow-tool', 'sleep 11; echo "slow-tool 1.0"');
  const { t: ctx, skipped } = context();
  assert.equal(withRequireSystem('1', () => haveProgram(ctx, slow, '--version')), true);
  assert.deepEqual(skipped, []);
});

test('haveProgram: a missing or broken program skips the test saying why, or fails it under GUARDCTL_REQUIRE_SYSTEM=1', (t) => {
  const dir = tempDir(t);
  const missing = path.join(dir, 'no-such-tool');
  const broken = program(dir, 'broken-tool', 'echo "cannot start" >&2; exit 3');

  const { t: ctx, skipped } = context();
  assert.equal(withRequireSystem(undefined, () => haveProgram(ctx, missing)), false);
  assert.equal(withRequireSystem(undefined, () => haveProgram(ctx, broken, '-v')), false);
  assert.equal(skipped.length, 2);
  assert.match(skipped[0]!, /no-such-tool is not available: cannot be run: no executable file there/);
  assert.match(skipped[1]!, /broken-tool is not available: cannot be run: `.*broken-tool -v` exited 3/);
  assert.equal(withRequireSystem(undefined, () => haveProgram(ctx, 'guardctl-no-such-program-anywhere')), false);
  assert.match(skipped[2]!, /no executable file of that name on PATH/);

  assert.throws(() => withRequireSystem('1', () => haveProgram(ctx, missing)), /no-such-tool is required \(GUARDCTL_REQUIRE_SYSTEM=1\) but cannot be run/);
});
