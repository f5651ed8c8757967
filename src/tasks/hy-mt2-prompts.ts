/**
 * Hy-MT2's instruction families beyond HY-MT1.5's (terminology, context, format): style, personalization,
 * delimiters, structured data and background information. The wording is the table "Hy-MT2 Translation Task
 * Instruction Examples" of github.com/Tencent-Hunyuan/Hy-MT2, README.md (commit 3509fd9d; README_CN.md has the
 * same table), as the table renders: `<br>` is a line break, Markdown emphasis and code marks are dropped, every
 * other character (spaces around placeholders included) is kept. A Chinese prompt names the target language in
 * Chinese, an English prompt in English, as the README's note asks.
 */
import type { Language } from './languages.js';

export interface HyMt2Options {
  /** The translation's style ("target_style"), e.g. 正式 / formal. */
  style?: string;
  /** The user's preferences ("user_preferences"), one numbered task each, before the translation task. */
  preferences?: string[];
  /** Keep the text's delimiters: the same number of them, in place, neither translated nor escaped. */
  keepDelimiters?: boolean;
  /** The text is data of this format ("format_type": JSON, YAML, HTML, ...): translate only user-facing text. */
  dataFormat?: string;
  /** Background information ("background_text") that informs the translation. */
  background?: string;
}

/** The request fields of each family, in the order a conflict is reported. */
export const HY_MT2_FIELDS = { style: 'style', preferences: 'preferences', keepDelimiters: 'keep_delimiters', dataFormat: 'data_format', background: 'background' } as const;

export type HyMt2Family = keyof typeof HY_MT2_FIELDS;

/** The families an options object selects (keep_delimiters: false selects none); a request may select one. */
export function hyMt2Families(o: HyMt2Options): HyMt2Family[] {
  return (Object.keys(HY_MT2_FIELDS) as HyMt2Family[]).filter((k) => (k === 'keepDelimiters' ? o.keepDelimiters === true : o[k] !== undefined));
}

/** The prompt of one family, Chinese or English. */
export function hyMt2Prompt(family: HyMt2Family, o: HyMt2Options, text: string, to: Language, chinese: boolean): string {
  const lang = chinese ? to.chinese : to.english;
  switch (family) {
    case 'style':
      return chinese
        ? `请将以下文本翻译为 ${lang}。\n注意翻译的风格要严格符合【${o.style}】\n\n${text}`
        : `Please translate the following text into ${lang}. Note that the translation style must strictly conform to [${o.style}]:\n\n${text}`;
    case 'preferences': {
      const prefs = o.preferences!;
      const n = prefs.length + 1;
      return chinese
        ? `【待翻译文本】\n${text}\n\n【翻译任务】\n${prefs.map((p, i) => `${i + 1}、${p}\n`).join('')}${n}、将【待翻译文本】翻译为 ${lang}。`
        : `[Source Text]\n${text}\n\n[Translation Tasks]\n${prefs.map((p, i) => `${i + 1}. ${p}\n`).join('')}${n}. Translate the [Source Text] into ${lang}.`;
    }
    case 'keepDelimiters':
      return chinese
        ? `请将以下文本准确翻译为 ${lang}。\n你必须在译文中保留等量的分隔符，绝对不可遗漏、转义或翻译该符号，并注意分隔符的位置。\n\n${text}`
        : `Please accurately translate the following text into ${lang}.\nYou must retain the exact same number of delimiters in the translation. Strictly do not omit, escape, or translate these symbols, and pay close attention to their placement.\n\n${text}`;
    case 'dataFormat': {
      const f = o.dataFormat!;
      // The published Chinese row names {source_text} in its first line as well as under 数据输入, so the
      // text appears twice; it is sent as published (docs/translation.md says so).
      return chinese
        ? `# 任务目标\n将下方 ${text} 中的 ${f} 格式数据翻译为 ${lang}。\n\n# 严格约束\n1. 结构锁定：绝对保持原有的 ${f} 数据结构、缩进和层级完全不变。\n2. 选择性翻译：仅翻译面向用户展示的可见文本内容。\n3. 禁止修改：严禁翻译或更改任何代码标签、键名 (Key)、变量占位符（如 {{var}}、\${var}、%s、%d 等）或代码属性。\n\n# 数据输入\n${text}`
        : `### Task\nTranslate the user-facing text within the following ${f} data into ${lang}.\n\n### Strict Rules\n1. Structure Preservation: You MUST preserve the original ${f} data structure, nesting, hierarchy, and indentation exactly as they are.\n2. Selective Translation: Translate ONLY the visible, user-facing text content/values.\n3. Strict Non-Translation: NEVER translate or alter code tags, keys, properties, object names, or variable placeholders. Leave them exactly in their original English/code form.\n\n### Source Data\n${text}`;
    }
    case 'background':
      return chinese
        ? `【背景信息】\n${o.background}\n\n请结合背景信息将以下文本翻译为 ${lang}。\n\n【待翻译文本】\n${text}`
        : `[Background Information]\n${o.background}\n\nPlease translate the following text into ${lang}, taking the provided background information into consideration.\n\n[Source Text]\n${text}`;
  }
}
