import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadModelDir } from '../../src/infer/model-dir.js';
import { TextStream } from '../../src/infer/text-stream.js';
import { ChatTokenizer } from '../../src/infer/tokenizer.js';
import { startEngine, mt, toChinese, toEnglish } from '../helpers/infer-engine.js';
import { MT_DIR } from '../helpers/infer-engine.js';
import { realFixtures } from '../helpers/real-fixture.js';

const tok = new ChatTokenizer(loadModelDir(MT_DIR));
const decode = (ids: readonly number[]) => tok.decode(ids);

test('streamed pieces never split a character, and join to the whole decode', () => {
  // The demo's byte-level BPE splits 🐱 over three tokens and 鑫 over three: a naive per-prefix decode shows U+FFFD.
  for (const text of ['猫🐱é', '鑫🐱', 'We like cats. 我们喜欢猫。', '🐱🐱🐱 done']) {
    const ids = tok.encode(text);
    const naive = ids.map((_, i) => decode(ids.slice(0, i + 1)));
    if (/[🐱鑫]/u.test(text)) assert.ok(naive.some((d) => d.endsWith('\uFFFD')), `the case ${text} must exercise a split character`);
    const stream = new TextStream(decode);
    const pieces = ids.map((id) => stream.push([id]));
    pieces.push(stream.flush());
    for (const p of pieces) assert.ok(!p.includes('\uFFFD'), `piece ${JSON.stringify(p)} of ${text}`);
    assert.equal(pieces.join(''), text);
    assert.equal(pieces.join(''), decode(ids));
  }
});

test('the real Qwen3 tokenizer (151,936 tokens, byte-level BPE): rare characters and emoji stream whole', (t) => {
  const fixtures = realFixtures(t);
  if (!fixtures) return;
  const qwen = new ChatTokenizer(loadModelDir(fixtures.mt));
  const text = '貔貅🦊与龘𠀋 — naïve café 🧑‍🚀!';
  const ids = qwen.encode(text);
  const naive = ids.map((_, i) => qwen.decode(ids.slice(0, i + 1)));
  assert.ok(naive.some((d) => d.endsWith('\uFFFD')), 'the text must split a character over tokens');
  const stream = new TextStream((x) => qwen.decode(x));
  const pieces = ids.map((id) => stream.push([id]));
  pieces.push(stream.flush());
  for (const p of pieces) assert.ok(!p.includes('\uFFFD'), `piece ${JSON.stringify(p)}`);
  assert.equal(pieces.join(''), text);
});

test('a character still unfinished at the end is flushed as a whole decode gives it', () => {
  const ids = tok.encode('猫🐱').slice(0, -1);
  const stream = new TextStream(decode);
  const pieces = [stream.push(ids), stream.flush()];
  assert.equal(pieces.join(''), decode(ids));
});

test('the engine streams a generate as it decodes: pieces arrive before the answer and join to it', async (t) => {
  const { engine } = await startEngine(t, [mt()]);
  for (const messages of [toEnglish('我们喜欢猫。我们喜欢狗。他们看书。'), toChinese('We like cats. We like dogs.')]) {
    const pieces: string[] = [];
    let resolved = false;
    const answer = engine.generate({
      model: 'mt', messages, maxNewTokens: 48,
      onText: (d) => {
        assert.equal(resolved, false, 'a piece after the answer');
        pieces.push(d);
      },
    }).finally(() => (resolved = true));
    const out = await answer;
    assert.ok(out.outputTokens > 2, 'a multi-token answer');
    assert.ok(pieces.length > 1, `streamed in pieces: ${JSON.stringify(pieces)}`);
    assert.equal(pieces.join(''), out.text);
  }
  // Without onText nothing streams (and the answer is the same).
  const plain = await engine.generate({ model: 'mt', messages: toEnglish('我们喜欢猫。'), maxNewTokens: 48 });
  assert.ok(plain.text.length > 0);
});
