import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REASONS, type ReasonCode } from '../../src/gate/reasons.js';
import { EngineError, type EngineErrorCode } from '../../src/infer/types.js';
import { catalogueMarkdown, HTTP_ERRORS, isHttpErrorCode } from '../../src/server/error-catalogue.js';
import { generatedPart } from '../../src/server/error-doc.js';
import { ApiError, fromGate, toApiError } from '../../src/server/errors.js';

const root = new URL('../../', import.meta.url);

test('docs/errors.md holds the catalogue exactly (regenerate: node --import tsx scripts/errors-doc.mjs)', () => {
  const documented = generatedPart(fs.readFileSync(new URL('docs/errors.md', root), 'utf8'));
  assert.notEqual(documented, null, 'docs/errors.md has lost its http-errors markers');
  // assert.equal prints a line diff when they drift.
  assert.equal(documented, catalogueMarkdown());
});

test('every gate reason has a catalogue row; a refusal gets its status, its message and the gate detail', () => {
  for (const code of Object.keys(REASONS) as ReasonCode[]) {
    assert.ok(isHttpErrorCode(code), `${code} has no row in src/server/error-catalogue.ts`);
    assert.equal(REASONS[code].authFailure, HTTP_ERRORS[code].status === 401, `${code}: the throttle counts exactly the 401s`);
  }
  const e = fromGate({ ok: false, code: 'malformed_auth', detail: 'X-Nonce is too short', headers: { 'X-A': '1' }, clientIp: '::1', stringToSign: 'POST\n/' });
  assert.deepEqual([e.status, e.code, e.message, e.extra, e.headers], [401, 'malformed_auth', 'malformed authentication header: X-Nonce is too short', { string_to_sign: 'POST\n/' }, { 'X-A': '1' }]);
  const plain = fromGate({ ok: false, code: 'rate_limited', headers: {}, clientIp: '::1' });
  assert.deepEqual([plain.status, plain.message, plain.extra], [429, HTTP_ERRORS.rate_limited.message, {}]);
});

test('every engine error maps onto a catalogue row; cancelled while the client waits is shutting_down', () => {
  const codes: Record<EngineErrorCode, ReturnType<typeof toApiError>['code']> = {
    model_not_found: 'model_not_found', not_ready: 'not_ready', queue_full: 'queue_full', input_too_long: 'input_too_long',
    timeout: 'timeout', cancelled: 'shutting_down', ambiguous_candidates: 'ambiguous_candidates', engine_failed: 'engine_failed',
  };
  for (const [code, expected] of Object.entries(codes) as [EngineErrorCode, typeof codes[EngineErrorCode]][]) {
    const api = toApiError(new EngineError(code, 'x'));
    assert.deepEqual([api.code, api.status], [expected, HTTP_ERRORS[expected].status], code);
  }
  assert.equal(HTTP_ERRORS.cancelled.status, 499);
  assert.equal(toApiError(new EngineError('cancelled', 'x')).headers['Retry-After'], '5');
});

test('an ApiError takes its status and default message from the catalogue', () => {
  assert.deepEqual([new ApiError('body_too_large').status, new ApiError('body_too_large').message], [413, HTTP_ERRORS.body_too_large.message]);
  assert.equal(new ApiError('invalid_request', 'text must be a string').message, 'text must be a string');
  assert.deepEqual([toApiError(new Error('boom')).status, toApiError(new Error('boom')).message], [500, 'internal error']);
  for (const [code, def] of Object.entries(HTTP_ERRORS)) {
    assert.match(code, /^[a-z0-9_]+$/);
    assert.ok(def.status >= 400 && def.status < 600 && def.message && def.hint, code);
  }
});

test('no HTTP status is chosen outside the catalogue: no literal status in src/server, src/gate or src/infer', () => {
  const offenders: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (file.endsWith('.ts') && !file.endsWith('error-catalogue.ts')) {
        fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
          if (/new ApiError\(\d|\.code\([45]\d\d\)|status: [45]\d\d\b|: 499\b/.test(line)) offenders.push(`${path.relative(root.pathname, file)}:${i + 1}: ${line.trim()}`);
        });
      }
    }
  };
  for (const dir of ['src/server', 'src/gate', 'src/infer']) walk(new URL(dir, root).pathname);
  assert.deepEqual(offenders, []);
});
