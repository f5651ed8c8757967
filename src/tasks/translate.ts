import type { Engine, TranslateTemplate } from '../infer/types.js';
import type { SamplingRequest } from '../infer/generation-config.js';
import { AnswerStream } from './answer-stream.js';
import { HY_MT2_FIELDS, hyMt2Families, hyMt2Prompt, type HyMt2Family, type HyMt2Options } from './hy-mt2-prompts.js';
import { isChinese, language, type Language } from './languages.js';

/**
 * Translation with HY-MT1.5's prompt templates (github.com/Tencent-Hunyuan/HY-MT, "Prompts"): the Chinese
 * template for ZH<=>XX, the English one for XX<=>XX, and the Chinese-only templates for terminology, context and
 * formatted translation. A model may instead pick the plain template by target language ('by-target'), as the
 * embedded demo was trained. Hy-MT2's families (style, preferences, delimiters, data format, background:
 * hy-mt2-prompts.ts) follow the same rule for their Chinese or English wording; a request picks at most one of them.
 */
export interface TranslateInput extends HyMt2Options {
  text: string;
  source: string;
  target: string;
  /** Terminology intervention: source term -> required translation. */
  terms?: Record<string, string>;
  /** Preceding text that informs the translation but is not translated. */
  context?: string;
  /** The text carries <sn></sn> format tags to keep; the answer comes inside <target></target>. */
  preserveFormat?: boolean;
}

export class TranslateInputError extends Error {
  constructor(message: string, readonly field: string) {
    super(message);
  }
}

export function resolveLanguages(source: string, target: string): { from: Language; to: Language } {
  const from = language(source);
  const to = language(target);
  if (!from) throw new TranslateInputError(`unknown source_lang "${source}"`, 'source_lang');
  if (!to) throw new TranslateInputError(`unknown target_lang "${target}"`, 'target_lang');
  if (from.code === to.code) throw new TranslateInputError('source_lang and target_lang are the same', 'target_lang');
  return { from, to };
}

const LIMITS = { style: 200, preference: 500, preferences: 16, dataFormat: 32 };

/**
 * The Hy-MT2 family a request selects, after checking its fields: each names its problem and the fix. A family does
 * not combine with another, nor with HY-MT1.5's terms, context or preserve_format: each is a whole prompt of its own.
 */
export function hyMt2Family(input: TranslateInput): HyMt2Family | undefined {
  const line = (value: string, field: string, max: number, example: string) => {
    if (value.trim() === '') throw new TranslateInputError(`${field} must not be empty; send for example ${example}, or leave the field out`, field);
    if (value.length > max) throw new TranslateInputError(`${field} is ${value.length} characters long; at most ${max} are accepted`, field);
    if (/[\r\n]/.test(value)) throw new TranslateInputError(`${field} must be one line: the prompt puts it inside a sentence`, field);
  };
  if (input.style !== undefined) line(input.style, 'style', LIMITS.style, '"formal" or "正式"');
  if (input.preferences !== undefined) {
    if (input.preferences.length === 0) throw new TranslateInputError('preferences must hold at least one preference, or be left out', 'preferences');
    if (input.preferences.length > LIMITS.preferences) throw new TranslateInputError(`preferences holds ${input.preferences.length} entries; at most ${LIMITS.preferences} are accepted`, 'preferences');
    input.preferences.forEach((p, i) => line(p, `preferences[${i}]`, LIMITS.preference, '"Keep product names in English"'));
  }
  if (input.dataFormat !== undefined) line(input.dataFormat, 'data_format', LIMITS.dataFormat, '"JSON", "YAML" or "HTML"');
  if (input.background !== undefined && input.background.trim() === '') {
    throw new TranslateInputError('background must not be empty; send the information that informs the translation, or leave the field out', 'background');
  }
  const families = hyMt2Families(input);
  if (families.length === 0) return undefined;
  const [first, second] = families.map((f) => HY_MT2_FIELDS[f]);
  if (second) throw new TranslateInputError(`${first} and ${second} each choose a whole Hy-MT2 prompt; send one of them per request`, second);
  const older = input.preserveFormat ? 'preserve_format' : Object.keys(input.terms ?? {}).length ? 'terms' : input.context !== undefined && input.context.trim() !== '' ? 'context' : undefined;
  if (older) throw new TranslateInputError(`${first} does not combine with ${older}: each chooses a whole prompt; send one of them per request`, first!);
  return families[0];
}

export function translationPrompt(input: TranslateInput, template: TranslateTemplate): string {
  const { from, to } = resolveLanguages(input.source, input.target);
  if (input.text.trim() === '') throw new TranslateInputError('text must not be empty', 'text');
  const chineseTemplate = template === 'by-target' ? isChinese(to) : isChinese(from) || isChinese(to);
  const family = hyMt2Family(input);
  if (family) return hyMt2Prompt(family, input, input.text, to, chineseTemplate);
  if (input.preserveFormat) {
    return `将以下<source></source>之间的文本翻译为${to.chinese}，注意只需要输出翻译后的结果，不要额外解释，原文中的<sn></sn>标签表示标签内文本包含格式信息，需要在译文中相应的位置尽量保留该标签。输出格式为：<target>str</target>\n\n<source>${input.text}</source>`;
  }
  const terms = Object.entries(input.terms ?? {});
  if (terms.length) {
    const lines = terms.map(([s, t]) => `${s} 翻译成 ${t}`).join('\n');
    return `参考下面的翻译：\n${lines}\n\n将以下文本翻译为${to.chinese}，注意只需要输出翻译后的结果，不要额外解释：\n${input.text}`;
  }
  if (input.context !== undefined && input.context.trim() !== '') {
    return `${input.context}\n参考上面的信息，把下面的文本翻译成${to.chinese}，注意不需要翻译上文，也不要额外解释：\n${input.text}\n`;
  }
  return chineseTemplate
    ? `将以下文本翻译为${to.chinese}，注意只需要输出翻译后的结果，不要额外解释：\n\n${input.text}`
    : `Translate the following segment into ${to.english}, without additional explanation.\n\n${input.text}`;
}

/** The formatted template answers inside <target></target>; take what is inside, or the whole answer if unwrapped. */
export function unwrapFormatted(answer: string): string {
  const m = /<target>([\s\S]*?)(<\/target>|$)/.exec(answer);
  return (m ? m[1]! : answer).trim();
}

export interface Translation {
  result: string;
  promptTokens: number;
  outputTokens: number;
}

export async function translate(
  engine: Engine,
  input: TranslateInput,
  opts: {
    model: string; template: TranslateTemplate; maxNewTokens: number; sampling?: SamplingRequest; signal?: AbortSignal; deadline?: number;
    /** Streams the result: pieces that join to Translation.result, sent as the model decodes (answer-stream.ts). */
    onDelta?: (delta: string) => void;
  },
): Promise<Translation> {
  const content = translationPrompt(input, opts.template);
  const stream = opts.onDelta && new AnswerStream(input.preserveFormat === true, opts.onDelta);
  // A translation samples as the model's generation_config says, unless the request overrides it.
  const out = await engine.generate({
    model: opts.model, messages: [{ role: 'user', content }], maxNewTokens: opts.maxNewTokens, sampling: opts.sampling ?? {}, signal: opts.signal, deadline: opts.deadline,
    ...(stream ? { onText: (piece: string) => stream.push(piece) } : {}),
  });
  const result = input.preserveFormat ? unwrapFormatted(out.text) : out.text.trim();
  stream?.end(result);
  return { result, promptTokens: out.promptTokens, outputTokens: out.outputTokens };
}
