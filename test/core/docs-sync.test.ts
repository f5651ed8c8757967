import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES } from '../../src/core/errors.js';
import { REASONS, type ReasonCode } from '../../src/gate/reasons.js';
import { HTTP_ERRORS } from '../../src/server/error-catalogue.js';

const read = (p: string) => fs.readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

test('docs/errors.md lists exactly the error codes in src/core/errors.ts', () => {
  const documented = new Set([...read('docs/errors.md').matchAll(/`(GUARD_E_[A-Z_]+)`/g)].map((m) => m[1]));
  assert.deepEqual([...documented].sort(), Object.keys(ERROR_CODES).sort());
});

test('docs/signing.md lists every gate reason code with its status', () => {
  const doc = read('docs/signing.md');
  for (const code of Object.keys(REASONS) as ReasonCode[]) {
    const { status } = HTTP_ERRORS[code];
    assert.match(doc, new RegExp(`\`${code}\`[^\\n]*${status}|${status}[^\\n]*\`${code}\``), `${code} (${status}) missing from docs/signing.md`);
  }
});

test('the vectors published beside the Python client are the shared contract, byte for byte', () => {
  const published = read('docs/clients/signing-vectors.json');
  const shared = fs.readFileSync(new URL('../../../shared/signing-vectors.json', import.meta.url), 'utf8');
  assert.equal(published, shared);
});
