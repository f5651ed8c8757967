import assert from 'node:assert/strict';
import { test } from 'node:test';
import { demoEngine } from '../helpers/demo-engine.js';

// Issue 14.1: the real engine reports an answer's text while it decodes (chat completions' stream: true).

test('onText pieces arrive before the answer, hold whole characters only, and join to its text', async (t) => {
  const engine = await demoEngine();
  t.after(() => engine.close());
  const pieces: Array<{ delta: string; tokens: number }> = [];
  let settled = false;
  const result = await engine.generate({
    model: 'mt-demo', messages: [{ role: 'user', content: 'We like cats.' }], maxNewTokens: 24, sampling: { temperature: 0 },
    onText: (delta, tokens) => {
      assert.equal(settled, false, 'no piece after the answer');
      pieces.push({ delta, tokens });
    },
  });
  settled = true;
  assert.ok(pieces.length > 1, `streamed in pieces (${pieces.length})`);
  assert.equal(pieces.map((p) => p.delta).join(''), result.text);
  assert.ok(pieces.every((p) => !p.delta.includes('\uFFFD') && p.delta !== ''));
  assert.ok(pieces.every((p, i) => p.tokens >= (pieces[i - 1]?.tokens ?? 1) && p.tokens <= result.outputTokens));
  assert.match(result.text, /[\u4e00-\u9fff]/, 'a CJK answer: multi-byte characters went through the stream');

  // The same request without a listener decodes the same answer (greedy): streaming changes nothing but timing.
  const plain = await engine.generate({ model: 'mt-demo', messages: [{ role: 'user', content: 'We like cats.' }], maxNewTokens: 24, sampling: { temperature: 0 } });
  assert.equal(plain.text, result.text);
});
