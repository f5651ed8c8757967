import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tempDir } from '../helpers/cli.js';
import { serveProcess } from '../helpers/serve-process.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

test('serve --device auto on the demo models prints no Dawn/WebGPU adapter warning (a software adapter is not tried)', { timeout: 6 * HANG_BOUND_MS }, async (t) => {
  // A real process: Dawn writes to the process's own stderr, which an in-process engine would not show.
  const s = await serveProcess(tempDir(t), ['--state', 'memory']);
  await s.waitFor(/"msg":"model ready".*"guard-demo"|"guard-demo".*"msg":"model ready"/, 3 * HANG_BOUND_MS);
  s.child.kill('SIGTERM');
  await s.exited;
  const output = s.lines.join('\n');
  assert.doesNotMatch(output, /^Warning: /m, 'an adapter warning reached the terminal');
  assert.doesNotMatch(output, /artificially reduced|Dawn|vkEnumeratePhysicalDevices/i);
  // Every line the daemon writes is its own JSON log line.
});
