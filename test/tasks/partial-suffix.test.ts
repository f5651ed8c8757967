import assert from 'node:assert/strict';
import { test } from 'node:test';
import { partialSuffix } from '../../src/tasks/partial-suffix.js';

test('partialSuffix: the longest tail that a pattern starts with, never a whole pattern', () => {
  assert.equal(partialSuffix('the answer</tar', ['</target>']), 5);
  assert.equal(partialSuffix('the answer<', ['</target>']), 1);
  assert.equal(partialSuffix('the answer', ['</target>']), 0);
  // A whole pattern is the caller's find, not a partial one.
  assert.equal(partialSuffix('a</target>', ['</target>']), 0);
  // Several patterns: the longest tail any of them starts with.
  assert.equal(partialSuffix('text ENDST', ['STOP', 'ENDSTOP']), 5);
  assert.equal(partialSuffix('ab', ['abc']), 2);
  assert.equal(partialSuffix('', ['abc']), 0);
  assert.equal(partialSuffix('abc', []), 0);
});
