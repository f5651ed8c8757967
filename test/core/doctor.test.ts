import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';
import { probeExecutionProviders } from '../../src/infer/ep-probe.js';
import { tempDir } from '../helpers/cli.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

const BIN = new URL('../../bin/guardctl.js', import.meta.url).pathname;

test('doctor reports the WebGPU provider without Dawn\'s adapter warnings on the terminal (the probe runs in a child)', async (t) => {
  const home = tempDir(t);
  // A real process: Dawn writes to the process's own file descriptors, which an in-process run would not catch.
  const child = spawn(process.execPath, [BIN, '--home', home, 'doctor'], { env: { ...process.env, GUARDCTL_FROM_SRC: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), 3 * HANG_BOUND_MS);
  await new Promise((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  assert.match(output, /onnxruntime:cpu\s+loads/);
  assert.match(output, /onnxruntime:webgpu\s+(loads|.+)/);
  // Mesa's lavapipe (a CPU-only machine like CI) is named, since --device auto then keeps the CPU.
  if (/onnxruntime:webgpu\s+loads/.test(output) && fs.existsSync('/usr/share/vulkan/icd.d/lvp_icd.json') && !fs.existsSync('/dev/nvidia0') && !fs.existsSync('/dev/dri/renderD128')) {
    assert.match(output, /onnxruntime:webgpu\s+loads \(\d+ ms, on a software adapter only: --device auto serves from the cpu\)/);
  }
  assert.doesNotMatch(output, /^Warning: /m, 'an adapter warning reached the terminal');
  assert.doesNotMatch(output, /artificially reduced/);
});

test('the provider probe answers per provider, a failing one with its error', async () => {
  const [cpu, bogus] = await probeExecutionProviders(['cpu', 'no-such-provider']);
  assert.equal(cpu!.ok, true);
  assert.equal(typeof cpu!.ms, 'number');
  assert.equal(bogus!.ok, false);
  assert.ok(bogus!.error && bogus!.error.length > 0);
});
