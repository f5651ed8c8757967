import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GuardOutputError, parseGuardOutput } from '../../src/tasks/guard-output.js';
import type { Engine } from '../../src/infer/types.js';
import { guardMessages, moderate, ModerationInputError } from '../../src/tasks/moderate.js';
import { toOpenAI } from '../../src/tasks/openai-moderation.js';

test('Qwen3Guard answers parse into level, categories and refusal', () => {
  assert.deepEqual(parseGuardOutput('Safety: Unsafe\nCategories: Violent', false), { level: 'unsafe', categories: ['Violent'] });
  assert.deepEqual(parseGuardOutput('Safety: Safe\nCategories: None', false), { level: 'safe', categories: [] });
  assert.deepEqual(parseGuardOutput('Safety: Controversial\nCategories: Politically Sensitive Topics, PII\n', false), {
    level: 'controversial', categories: ['Politically Sensitive Topics', 'PII'],
  });
  assert.deepEqual(parseGuardOutput('Safety: Safe\nCategories: None\nRefusal: Yes', true), { level: 'safe', categories: [], refusal: 'yes' });
});

test('answers that do not follow the format are errors, never guesses', () => {
  const bad: Array<[string, boolean, RegExp]> = [
    ['', false, /Safety/],
    ['Safety: Maybe\nCategories: None', false, /Safety/],
    ['Safety: Unsafe', false, /Categories/],
    // The answer stopped right after the fast path's forced "Categories:" (EOS or the token limit): no guess.
    ['Safety: Unsafe\nCategories:', false, /Categories/],
    ['Safety: Controversial\nCategories: , ', false, /Categories/],
    ['Safety: Unsafe\nCategories: Dragons', false, /unknown categories: Dragons/],
    ['Safety: Safe\nCategories: Violent', false, /Safe.*lists categories/],
    ['Safety: Safe\nCategories: None', true, /Refusal/],
    ['Safety: Safe\nCategories: None\nRefusal: Perhaps', true, /Refusal/],
  ];
  for (const [text, refusal, message] of bad) {
    assert.throws(() => parseGuardOutput(text, refusal), (e: Error) => e instanceof GuardOutputError && message.test(e.message), text);
  }
});

test('the chat to judge: a user message, or user + assistant; anything else is refused', () => {
  assert.deepEqual(guardMessages({ text: 'hi' }), [{ role: 'user', content: 'hi' }]);
  const pair = [{ role: 'user' as const, content: 'q' }, { role: 'assistant' as const, content: 'a' }];
  assert.deepEqual(guardMessages({ messages: pair }), pair);
  assert.throws(() => guardMessages({ text: '   ' }), ModerationInputError);
  assert.throws(() => guardMessages({}), ModerationInputError);
  assert.throws(() => guardMessages({ messages: [{ role: 'assistant', content: 'a' }] }), ModerationInputError);
  assert.throws(() => guardMessages({ messages: [...pair, { role: 'user', content: 'again' }] }), ModerationInputError);
  assert.throws(() => guardMessages({ messages: [{ role: 'user', content: '' }] }), ModerationInputError);
});

test('OpenAI mapping: corresponding keys plus native names; flagged equals any category', () => {
  const unsafe = toOpenAI({ level: 'unsafe', categories: ['Violent', 'PII'], score: 0.97, promptTokens: 1, outputTokens: 1 }, false);
  assert.equal(unsafe.flagged, true);
  assert.equal(unsafe.categories.violence, true);
  assert.equal(unsafe.categories['illicit/violent'], true);
  assert.equal(unsafe.categories.PII, true);
  assert.equal(unsafe.categories.Violent, true);
  assert.equal(unsafe.categories.sexual, false);
  assert.equal(unsafe.category_scores.violence, 0.97);
  assert.equal(unsafe.category_scores.sexual, 0);
  const controversial = { level: 'controversial' as const, categories: ['Politically Sensitive Topics'], score: 0.6, promptTokens: 1, outputTokens: 1 };
  assert.equal(toOpenAI(controversial, false).flagged, false);
  assert.equal(toOpenAI(controversial, false).categories['Politically Sensitive Topics'], false);
  assert.equal(toOpenAI(controversial, false).category_scores['Politically Sensitive Topics'], 0.6);
  assert.equal(toOpenAI(controversial, true).flagged, true);
  const safe = toOpenAI({ level: 'safe', categories: [], score: 0.9, promptTokens: 1, outputTokens: 0 }, true);
  assert.equal(safe.flagged, false);
  assert.ok(Object.values(safe.categories).every((v) => v === false));
});

test('OpenAI category_scores: the probability that the text is not safe, not only that of the winning level', async () => {
  // The fast path scored Safe 0.05, Unsafe 0.55, Controversial 0.40: the level is unsafe, and P(not safe) is 0.95.
  const engine = {
    score: async () => ({ probabilities: [0.05, 0.55, 0.4], promptTokens: 10, queueMs: 0, engineMs: 1 }),
    generate: async () => ({ text: ' Violent', promptTokens: 14, outputTokens: 2, finish: 'eos' as const, queueMs: 0, engineMs: 1 }),
  } as unknown as Engine;
  const m = await moderate(engine, [{ role: 'user', content: 'x' }], { model: 'g', categories: 'auto', fastPath: true, maxNewTokens: 8 });
  assert.deepEqual([m.level, m.categories, m.score], ['unsafe', ['Violent'], 0.55]);
  const openai = toOpenAI(m, false);
  assert.equal(openai.category_scores.violence, 0.95);
  assert.equal(openai.category_scores.Violent, 0.95);
  assert.equal(openai.category_scores.sexual, 0);
});
