/**
 * What a user imports is the published entry, not src/: `guardctl/client` resolves through package.json's
 * "exports" to the compiled build (npm ci builds it), with its type declarations beside it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

test('guardctl/client resolves to dist/client.js with types, and exports createSigningFetch', async () => {
  const resolved = fileURLToPath(import.meta.resolve('guardctl/client'));
  assert.match(resolved, /\/dist\/client\.js$/);
  assert.ok(fs.existsSync(resolved), `${resolved} is missing: run npm run build (npm ci runs it)`);
  assert.ok(fs.existsSync(resolved.replace(/\.js$/, '.d.ts')), 'the type declarations are published beside it');
  const client = (await import('guardctl/client')) as { createSigningFetch?: unknown };
  assert.equal(typeof client.createSigningFetch, 'function');
  // Deep imports stay private: only what "exports" lists is reachable by name.
  assert.throws(() => createRequire(import.meta.url).resolve('guardctl/dist/cli.js'), { code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
});
