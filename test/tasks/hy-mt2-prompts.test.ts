import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TranslateInputError, translationPrompt, type TranslateInput } from '../../src/tasks/translate.js';

/*
 * The expected strings are the table "Hy-MT2 Translation Task Instruction Examples (Chinese-English Comparison)" of
 * github.com/Tencent-Hunyuan/Hy-MT2, README.md at commit 3509fd9dede6f7071d935a96199f7a07f78f63d3 (README_CN.md
 * carries the same table), copied cell by cell as it renders: <br> is "\n", the Markdown marks (**, *, `) are
 * dropped, spaces are kept, and the placeholders {target_lang}, {source_text}, {target_style}, {user_preferences},
 * {format_type} and {background_text} are filled in.
 */
const zh = (o: Partial<TranslateInput>) => translationPrompt({ text: 'SRC', source: 'en', target: 'zh', ...o }, 'hy-mt');
const en = (o: Partial<TranslateInput>) => translationPrompt({ text: 'SRC', source: 'fr', target: 'de', ...o }, 'hy-mt');

test('style: the published Chinese and English templates', () => {
  assert.equal(zh({ style: '正式' }), '请将以下文本翻译为 中文。\n注意翻译的风格要严格符合【正式】\n\nSRC');
  assert.equal(en({ style: 'formal' }), 'Please translate the following text into German. Note that the translation style must strictly conform to [formal]:\n\nSRC');
});

test('personalization: one numbered task per preference, then the translation task', () => {
  assert.equal(
    zh({ preferences: ['保留产品名的英文', '使用敬语'] }),
    '【待翻译文本】\nSRC\n\n【翻译任务】\n1、保留产品名的英文\n2、使用敬语\n3、将【待翻译文本】翻译为 中文。',
  );
  assert.equal(
    en({ preferences: ['Keep product names in English', 'Use the formal Sie', 'Spell out numbers'] }),
    '[Source Text]\nSRC\n\n[Translation Tasks]\n1. Keep product names in English\n2. Use the formal Sie\n3. Spell out numbers\n4. Translate the [Source Text] into German.',
  );
});

test('delimiters: keep the separators', () => {
  assert.equal(zh({ keepDelimiters: true }), '请将以下文本准确翻译为 中文。\n你必须在译文中保留等量的分隔符，绝对不可遗漏、转义或翻译该符号，并注意分隔符的位置。\n\nSRC');
  assert.equal(
    en({ keepDelimiters: true }),
    'Please accurately translate the following text into German.\nYou must retain the exact same number of delimiters in the translation. Strictly do not omit, escape, or translate these symbols, and pay close attention to their placement.\n\nSRC',
  );
  // false asks for nothing: the plain template.
  assert.equal(en({ keepDelimiters: false }), 'Translate the following segment into German, without additional explanation.\n\nSRC');
});

test('structured data: the format type named in the rules (the Chinese row names the text in its first line too)', () => {
  assert.equal(
    zh({ dataFormat: 'JSON' }),
    '# 任务目标\n将下方 SRC 中的 JSON 格式数据翻译为 中文。\n\n# 严格约束\n1. 结构锁定：绝对保持原有的 JSON 数据结构、缩进和层级完全不变。\n2. 选择性翻译：仅翻译面向用户展示的可见文本内容。\n3. 禁止修改：严禁翻译或更改任何代码标签、键名 (Key)、变量占位符（如 {{var}}、${var}、%s、%d 等）或代码属性。\n\n# 数据输入\nSRC',
  );
  assert.equal(
    en({ dataFormat: 'YAML' }),
    '### Task\nTranslate the user-facing text within the following YAML data into German.\n\n### Strict Rules\n1. Structure Preservation: You MUST preserve the original YAML data structure, nesting, hierarchy, and indentation exactly as they are.\n2. Selective Translation: Translate ONLY the visible, user-facing text content/values.\n3. Strict Non-Translation: NEVER translate or alter code tags, keys, properties, object names, or variable placeholders. Leave them exactly in their original English/code form.\n\n### Source Data\nSRC',
  );
});

test('background information (the table\'s "Structured Data 2" row)', () => {
  assert.equal(zh({ background: '背景' }), '【背景信息】\n背景\n\n请结合背景信息将以下文本翻译为 中文。\n\n【待翻译文本】\nSRC');
  assert.equal(
    en({ background: 'We are at a restaurant.' }),
    '[Background Information]\nWe are at a restaurant.\n\nPlease translate the following text into German, taking the provided background information into consideration.\n\n[Source Text]\nSRC',
  );
});

test('the Chinese or English wording follows the same rule as the plain template', () => {
  // hy-mt: Chinese on either side; by-target: the target's.
  assert.match(translationPrompt({ text: 'x', source: 'zh', target: 'fr', style: 'formel' }, 'hy-mt'), /^请将以下文本翻译为 法语。/);
  assert.match(translationPrompt({ text: 'x', source: 'zh', target: 'fr', style: 'formel' }, 'by-target'), /^Please translate the following text into French\./);
});

test('bad fields are refused naming the field and the fix', () => {
  const refused = (o: Partial<TranslateInput>, field: string, message: RegExp) =>
    assert.throws(() => en(o), (err: unknown) => err instanceof TranslateInputError && err.field === field && message.test(err.message));
  refused({ style: '  ' }, 'style', /style must not be empty; send for example "formal"/);
  refused({ style: 'a\nb' }, 'style', /one line/);
  refused({ style: 'x'.repeat(201) }, 'style', /at most 200/);
  refused({ preferences: [] }, 'preferences', /at least one/);
  refused({ preferences: ['ok', ''] }, 'preferences[1]', /must not be empty/);
  refused({ preferences: Array(17).fill('p') }, 'preferences', /at most 16/);
  refused({ dataFormat: '' }, 'data_format', /"JSON", "YAML" or "HTML"/);
  refused({ background: ' ' }, 'background', /must not be empty/);
  refused({ style: 'formal', dataFormat: 'JSON' }, 'data_format', /style and data_format each choose a whole Hy-MT2 prompt; send one of them/);
  refused({ keepDelimiters: true, terms: { a: 'b' } }, 'keep_delimiters', /keep_delimiters does not combine with terms/);
  refused({ background: 'b', preserveFormat: true }, 'background', /does not combine with preserve_format/);
});
