import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FakeEngine } from '../helpers/fake-engine.js';
import { serverFixture } from '../helpers/server-app.js';

const URL = '/api/v1/translate?source_lang=en&target_lang=zh';

test('Hy-MT2 prompt families as request fields: the prompt the model gets, and refusals naming the field', async (t) => {
  const f = await serverFixture(t);
  const key = f.key();
  const engine = f.engine as FakeEngine;
  const prompt = () => engine.calls.at(-1)!.messages[0]!.content;

  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ style: '正式' }, /^请将以下文本翻译为 中文。\n注意翻译的风格要严格符合【正式】\n\nWe like cats\.$/],
    [{ preferences: ['保留英文名', '使用敬语'] }, /\n1、保留英文名\n2、使用敬语\n3、将【待翻译文本】翻译为 中文。$/],
    [{ keep_delimiters: true }, /^请将以下文本准确翻译为 中文。\n你必须在译文中保留等量的分隔符/],
    [{ data_format: 'JSON' }, /^# 任务目标\n.* JSON 格式数据翻译为 中文。/],
    [{ background: 'At a pet shop.' }, /^【背景信息】\nAt a pet shop\.\n\n/],
  ];
  for (const [fields, expected] of cases) {
    const res = await f.send({ url: URL, body: { text: 'We like cats.', ...fields }, key });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(prompt(), expected);
  }

  const refused = async (fields: Record<string, unknown>, field: string, message: RegExp) => {
    const res = await f.send({ url: URL, body: { text: 'We like cats.', ...fields }, key });
    assert.equal(res.statusCode, 422, res.body);
    const { error } = res.json() as { error: { code: string; field: string; message: string } };
    assert.equal(error.code, 'invalid_request');
    assert.equal(error.field, field);
    assert.match(error.message, message);
  };
  await refused({ style: '' }, 'style', /must not be empty; send for example/);
  await refused({ style: 3 }, 'style', /must be a string/);
  await refused({ preferences: 'be brief' }, 'preferences', /must be an array/);
  await refused({ preferences: ['ok', 7] }, 'preferences.1', /must be a string/);
  await refused({ preferences: ['ok', ' '] }, 'preferences[1]', /must not be empty/);
  await refused({ keep_delimiters: 'yes' }, 'keep_delimiters', /true or false/);
  await refused({ data_format: 'JSON\nYAML' }, 'data_format', /one line/);
  await refused({ style: 'formal', background: 'b' }, 'background', /send one of them per request/);
  await refused({ style: 'formal', context: 'c' }, 'style', /does not combine with context/);
});
