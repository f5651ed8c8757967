import type { Engine, TranslateTemplate } from '../infer/types.js';
import type { SamplingRequest } from '../infer/generation-config.js';
import { isChinese, language, type Language } from './languages.js';

/**
 * Translation with HY-MT1.5's prompt templates (github.com/Tencent-Hunyuan/HY-MT, "Prompts"): the Chinese
 * template for ZH<=>XX, the English one for XX<=>XX, and the Chinese-only templates for terminology, context and
 * formatted translation. A model may instead pick the plain template by target language ('by-target'), as the
 * embedded demo was trained.
 */
export interface TranslateInput {
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

export function translationPrompt(input: TranslateInput, template: TranslateTemplate): string {
  const { from, to } = resolveLanguages(input.source, input.target);
  if (input.text.trim() === '') throw new TranslateInputError('text must not be empty', 'text');
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
  const chineseTemplate = template === 'by-target' ? isChinese(to) : isChinese(from) || isChinese(to);
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
  opts: { model: string; template: TranslateTemplate; maxNewTokens: number; sampling?: SamplingRequest; signal?: AbortSignal; deadline?: number },
): Promise<Translation> {
  const content = translationPrompt(input, opts.template);
  // A translation samples as the model's generation_config says, unless the request overrides it.
  const out = await engine.generate({
    model: opts.model, messages: [{ role: 'user', content }], maxNewTokens: opts.maxNewTokens, sampling: opts.sampling ?? {}, signal: opts.signal, deadline: opts.deadline,
  });
  const result = input.preserveFormat ? unwrapFormatted(out.text) : out.text.trim();
  return { result, promptTokens: out.promptTokens, outputTokens: out.outputTokens };
}
