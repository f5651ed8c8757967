import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AnswerStream } from '../../src/tasks/answer-stream.js';
import { unwrapFormatted } from '../../src/tasks/translate.js';

/** Feeds the raw answer in the given pieces; returns the pieces emitted, and checks they join to the result. */
function run(pieces: string[], preserveFormat: boolean): string[] {
  const out: string[] = [];
  const s = new AnswerStream(preserveFormat, (d) => out.push(d));
  for (const p of pieces) s.push(p);
  const raw = pieces.join('');
  const result = preserveFormat ? unwrapFormatted(raw) : raw.trim();
  s.end(result);
  assert.equal(out.join(''), result);
  return out;
}

test('a plain answer streams trimmed: leading and trailing whitespace never go out', () => {
  assert.deepEqual(run(['\n ', 'We', ' like', ' cats.', '\n'], false), ['We', ' like', ' cats.']);
  // Whitespace between words is held until the next word shows it is not trailing.
  assert.deepEqual(run(['We ', 'like'], false), ['We', ' like']);
});

test('a formatted answer streams what is inside <target></target>, never a piece of either tag', () => {
  const out = run(['<tar', 'get><s1>Bon', 'jour</s1> le monde</ta', 'rget>'], true);
  for (const piece of out) assert.ok(!/<\/?t(a(r(g(e(t)?)?)?)?)?/.test(piece.replace(/<\/?s1>/g, '')), `piece ${JSON.stringify(piece)}`);
  assert.deepEqual(out, ['<s1>Bon', 'jour</s1> le monde']);
  // Untagged: the whole answer, as unwrapFormatted reads it.
  assert.deepEqual(run(['Bon', 'jour'], true), ['Bon', 'jour']);
});

test('text before a late <target> stops the stream; the final result is still whole', () => {
  const out: string[] = [];
  const s = new AnswerStream(true, (d) => out.push(d));
  for (const p of ['Sure: ', '<target>Salut</target>']) s.push(p);
  s.end(unwrapFormatted('Sure: <target>Salut</target>'));
  assert.deepEqual(out, ['Sure:']);
});
