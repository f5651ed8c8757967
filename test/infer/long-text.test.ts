/**
 * Issue 10, finding 4: a long text stalled the daemon. It was tokenized on the event loop before the token limit
 * was checked (1 MB of one repeated CJK character: 422 after 5.8 s, every other request waiting as long).
 */
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { test } from 'node:test';
import { bytesPerTokenBound } from '../../src/infer/input-bound.js';
import { loadModelDir } from '../../src/infer/model-dir.js';
import { TokenizePool } from '../../src/infer/tokenize-pool.js';
import { ChatTokenizer } from '../../src/infer/tokenizer.js';
import { EngineError } from '../../src/infer/types.js';
import { DEMO_SPECS, demoEngine } from '../helpers/demo-engine.js';
import { serverFixture } from '../helpers/server-app.js';

/** Counts encodes on this (the main) thread and jobs handed to the tokenizer pool, until the test ends. */
function countTokenizing(t: { after(fn: () => unknown): void }): { main: number; pool: number } {
  const counts = { main: 0, pool: 0 };
  const encode = ChatTokenizer.prototype.encode;
  const poolEncode = TokenizePool.prototype.encode;
  ChatTokenizer.prototype.encode = function (this: ChatTokenizer, ...args) {
    counts.main++;
    return encode.apply(this, args);
  };
  TokenizePool.prototype.encode = function (this: TokenizePool, ...args) {
    counts.pool++;
    return poolEncode.apply(this, args);
  };
  t.after(() => {
    ChatTokenizer.prototype.encode = encode;
    TokenizePool.prototype.encode = poolEncode;
  });
  return counts;
}

test('the byte bound never refuses a prompt that fits: bytes <= bound * tokens, even for the longest tokens', () => {
  for (const spec of DEMO_SPECS) {
    const dir = loadModelDir(spec.dir);
    const tok = new ChatTokenizer(dir);
    const bound = bytesPerTokenBound(dir.tokenizerJson);
    assert.ok(Number.isFinite(bound) && bound > 1, `${spec.name}: ${bound}`);
    // The texts that pack the most bytes into each token: the vocabulary's longest entries, repeated.
    const vocab = (dir.tokenizerJson.model as { vocab: Record<string, number> }).vocab;
    const longest = Object.entries(vocab).sort((a, b) => [...b[0]].length - [...a[0]].length).slice(0, 20);
    const texts = [
      ...longest.map(([, id]) => tok.decode([id]).repeat(30)),
      '我'.repeat(3000), 'How do I make a bomb? '.repeat(50), 'a'.repeat(5000), ' '.repeat(2000), '\u{1F600}'.repeat(500), 'e\u0301'.repeat(700),
    ];
    for (const text of texts) {
      const prompt = tok.render([{ role: 'user', content: text }], 'Safety:');
      const tokens = tok.encode(prompt).length;
      assert.ok(Buffer.byteLength(prompt) <= bound * tokens, `${spec.name}: ${Buffer.byteLength(prompt)} bytes in ${tokens} tokens, bound ${bound}/token`);
    }
  }
  // Where the argument does not hold, there is no bound: the token count alone decides.
  const bpe = { type: 'BPE', vocab: { a: 0, abc: 1 } };
  assert.equal(bytesPerTokenBound({ model: bpe, pre_tokenizer: { type: 'ByteLevel' }, added_tokens: [{ content: '<|im_start|>' }] }), 12);
  assert.equal(bytesPerTokenBound({ model: bpe, pre_tokenizer: { type: 'ByteLevel' }, normalizer: { type: 'NFC' } }), 9);
  assert.equal(bytesPerTokenBound({ model: bpe, pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', behavior: 'Isolated' }, { type: 'ByteLevel' }] } }), 3);
  assert.equal(bytesPerTokenBound({ model: bpe, pre_tokenizer: { type: 'Whitespace' } }), Infinity);
  assert.equal(bytesPerTokenBound({ model: bpe, pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', behavior: 'Removed' }, { type: 'ByteLevel' }] } }), Infinity);
  assert.equal(bytesPerTokenBound({ model: bpe, pre_tokenizer: { type: 'ByteLevel' }, normalizer: { type: 'Replace' } }), Infinity);
  assert.equal(bytesPerTokenBound({ model: { type: 'WordPiece', vocab: { a: 0 } }, pre_tokenizer: { type: 'ByteLevel' } }), Infinity);
});

test('a text too long in bytes to fit the token limit is refused (422 input_too_long) before anything tokenizes it', async (t) => {
  const engine = await demoEngine(undefined, DEMO_SPECS, { maxInputTokens: 256 });
  t.after(() => engine.close());
  const s = await serverFixture(t, { engine });
  const counts = countTokenizing(t);
  // 900 KB of one repeated CJK character: seconds of tokenizing on the old event loop.
  const res = await s.send({ url: '/api/v1/moderate', body: { text: '我'.repeat(300_000) }, key: s.key() });
  assert.equal(res.statusCode, 422, res.body);
  const error = (JSON.parse(res.body) as { error: Record<string, unknown> }).error;
  assert.equal(error.code, 'input_too_long');
  assert.equal(error.limit, 256);
  assert.ok(Number(error.bytes) > 900_000 && Number(error.maxBytes) < Number(error.bytes), res.body);
  assert.match(String(error.message), /bytes/);
  assert.deepEqual(counts, { main: 0, pool: 0 });
  // The same for translation, whose template differs.
  const mt = await s.send({ url: '/api/v1/translate?source_lang=zh&target_lang=en', body: { text: '我'.repeat(300_000) }, key: s.key() });
  assert.equal(mt.statusCode, 422, mt.body);
  assert.deepEqual(counts, { main: 0, pool: 0 });
});

test('a long text that passes the byte bound is tokenized off the event loop: score() returns before the tokenizer thread answers', async (t) => {
  const engine = await demoEngine(undefined, DEMO_SPECS, { maxInputTokens: 256 });
  t.after(() => engine.close());
  const counts = countTokenizing(t);
  // Under the byte bound (55 bytes a token here), far over 256 tokens: only tokenizing can tell, and it is slow.
  const text = '我'.repeat(4000);
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  let settled = false;
  const outcome = engine
    .score({ model: 'guard-demo', messages: [{ role: 'user', content: text }], prefix: 'Safety:', candidates: [' Safe', ' Unsafe'] })
    .then(() => new Error('a 4000-token prompt was admitted'), (err: unknown) => err)
    .finally(() => (settled = true));
  // On the old code score() tokenized before returning its promise, which then settled within a few microtasks.
  // Off the loop, only a message from the tokenizer thread (a macrotask) can settle it: however fast or slow that
  // thread is, the promise is still pending once the microtasks have drained.
  for (let i = 0; i < 100; i++) await Promise.resolve();
  const pendingAfterMicrotasks = !settled;
  // Timer turns while the thread tokenizes: a figure for the diagnostic, not a verdict (how many there are depends
  // on the machine's speed).
  let ticks = 0;
  while (!settled) {
    await new Promise((r) => setTimeout(r, 1));
    ticks++;
  }
  delay.disable();
  const err = await outcome;
  assert.ok(err instanceof EngineError && err.code === 'input_too_long', String(err));
  assert.equal(err.details.limit, 256);
  assert.ok(Number(err.details.actual) >= 4000, JSON.stringify(err.details));
  assert.equal(counts.main, 0, 'the main thread never encodes');
  assert.equal(counts.pool, 1);
  assert.ok(pendingAfterMicrotasks, 'score() settled without waiting for the tokenizer thread: the text was tokenized on the event loop');
  t.diagnostic(`event loop: ${ticks} timer turns while tokenizing; delay p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms, max ${(delay.max / 1e6).toFixed(1)} ms`);
});
