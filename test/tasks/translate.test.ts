import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LANGUAGES, language } from '../../src/tasks/languages.js';
import { resolveLanguages, TranslateInputError, translationPrompt, unwrapFormatted } from '../../src/tasks/translate.js';

test('HY-MT1.5 covers 33 languages and 5 variants, codes unique', () => {
  assert.equal(LANGUAGES.filter((l) => !l.variant).length, 33);
  assert.deepEqual(LANGUAGES.filter((l) => l.variant).map((l) => l.code), ['bo', 'kk', 'mn', 'ug', 'yue']);
  assert.equal(new Set(LANGUAGES.map((l) => l.code)).size, LANGUAGES.length);
  assert.equal(language('ZH-hant')?.english, 'Traditional Chinese');
});

test('hy-mt rule: the Chinese template when either side is Chinese, the English one otherwise', () => {
  const base = { text: '我们喜欢猫。' };
  assert.equal(translationPrompt({ ...base, source: 'zh', target: 'en' }, 'hy-mt'), '将以下文本翻译为英语，注意只需要输出翻译后的结果，不要额外解释：\n\n我们喜欢猫。');
  assert.equal(translationPrompt({ text: 'We like cats.', source: 'en', target: 'zh' }, 'hy-mt'), '将以下文本翻译为中文，注意只需要输出翻译后的结果，不要额外解释：\n\nWe like cats.');
  assert.equal(translationPrompt({ text: 'Bonjour', source: 'fr', target: 'de' }, 'hy-mt'), 'Translate the following segment into German, without additional explanation.\n\nBonjour');
  assert.match(translationPrompt({ text: 'x', source: 'zh-Hant', target: 'ja' }, 'hy-mt'), /^将以下文本翻译为日语/);
});

test('by-target rule (the embedded demo): the template follows the target language', () => {
  assert.equal(translationPrompt({ text: '我们喜欢猫。', source: 'zh', target: 'en' }, 'by-target'), 'Translate the following segment into English, without additional explanation.\n\n我们喜欢猫。');
  assert.equal(translationPrompt({ text: 'We like cats.', source: 'en', target: 'zh' }, 'by-target'), '将以下文本翻译为中文，注意只需要输出翻译后的结果，不要额外解释：\n\nWe like cats.');
});

test('terminology, context and formatted variants', () => {
  assert.equal(
    translationPrompt({ text: 'AI is here.', source: 'en', target: 'zh', terms: { AI: '人工智能', GPU: '图形处理器' } }, 'hy-mt'),
    '参考下面的翻译：\nAI 翻译成 人工智能\nGPU 翻译成 图形处理器\n\n将以下文本翻译为中文，注意只需要输出翻译后的结果，不要额外解释：\nAI is here.',
  );
  assert.equal(
    translationPrompt({ text: 'It is free.', source: 'en', target: 'zh', context: 'We are at a restaurant.' }, 'hy-mt'),
    'We are at a restaurant.\n参考上面的信息，把下面的文本翻译成中文，注意不需要翻译上文，也不要额外解释：\nIt is free.\n',
  );
  assert.equal(
    translationPrompt({ text: '<s1>Hello</s1> world', source: 'en', target: 'fr', preserveFormat: true }, 'hy-mt'),
    '将以下<source></source>之间的文本翻译为法语，注意只需要输出翻译后的结果，不要额外解释，原文中的<sn></sn>标签表示标签内文本包含格式信息，需要在译文中相应的位置尽量保留该标签。输出格式为：<target>str</target>\n\n<source><s1>Hello</s1> world</source>',
  );
  assert.equal(unwrapFormatted('<target><s1>Bonjour</s1> le monde</target>'), '<s1>Bonjour</s1> le monde');
  assert.equal(unwrapFormatted('no tags'), 'no tags');
});

test('unknown or identical languages and empty text are input errors naming the field', () => {
  assert.throws(() => resolveLanguages('xx', 'en'), (e: TranslateInputError) => e.field === 'source_lang' && /"xx"/.test(e.message));
  assert.throws(() => resolveLanguages('en', 'klingon'), (e: TranslateInputError) => e.field === 'target_lang');
  assert.throws(() => resolveLanguages('en', 'EN'), /the same/);
  assert.throws(() => translationPrompt({ text: ' ', source: 'en', target: 'zh' }, 'hy-mt'), (e: TranslateInputError) => e.field === 'text');
});

test('docs/translation.md lists every language code', async () => {
  const fs = await import('node:fs');
  const doc = fs.readFileSync(new URL('../../docs/translation.md', import.meta.url), 'utf8');
  for (const l of LANGUAGES) assert.match(doc, new RegExp(`\\| \`${l.code}\` \\| ${l.english} \\| ${l.chinese} \\|`), l.code);
});
