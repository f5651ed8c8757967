import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli, tempDir } from '../helpers/cli.js';

test('guardctl request: a bad --timeout is a usage error naming the flag, not "cannot reach"', async (t) => {
  const home = tempDir(t);
  for (const value of ['abc', '0', '-5']) {
    const r = await runCli(['--home', home, 'request', 'GET', '/healthz', '--url', 'http://127.0.0.1:9', `--timeout=${value}`]);
    assert.equal(r.code, 2, `${value}: ${r.stderr}`);
    assert.match(r.stderr, /--timeout/);
    assert.doesNotMatch(r.stderr, /cannot reach/);
  }
});
