import type { Moderation } from './moderate.js';
import { GUARD_CATEGORIES } from './guard-output.js';

/**
 * Qwen3Guard's categories on OpenAI's moderation keys where they correspond; the native names are kept as
 * extra keys. docs/moderation.md documents the table.
 */
export const OPENAI_KEYS = [
  'harassment', 'harassment/threatening', 'hate', 'hate/threatening', 'illicit', 'illicit/violent', 'self-harm',
  'self-harm/intent', 'self-harm/instructions', 'sexual', 'sexual/minors', 'violence', 'violence/graphic',
] as const;

export const CATEGORY_TO_OPENAI: Record<(typeof GUARD_CATEGORIES)[number], Array<(typeof OPENAI_KEYS)[number]>> = {
  Violent: ['violence', 'illicit/violent'],
  'Non-violent Illegal Acts': ['illicit'],
  'Sexual Content or Sexual Acts': ['sexual'],
  PII: [],
  'Suicide & Self-Harm': ['self-harm'],
  'Unethical Acts': ['harassment'],
  'Politically Sensitive Topics': [],
  'Copyright Violation': [],
  Jailbreak: [],
};

export interface OpenAIModerationResult {
  flagged: boolean;
  categories: Record<string, boolean>;
  category_scores: Record<string, number>;
}

/**
 * flagged: the level is unsafe (or also controversial in strict mode, Qwen3Guard's "strict" policy); a category
 * is true when the model named it and the result is flagged, so flagged equals "any category true" as in OpenAI.
 * category_scores: the probability that the text is not safe, on the categories the model named; 0 elsewhere
 * (Qwen3Guard scores the level, not each category).
 */
export function toOpenAI(m: Moderation, strict: boolean): OpenAIModerationResult {
  const flagged = m.level === 'unsafe' || (strict && m.level === 'controversial');
  const notSafe = m.notSafe ?? (m.score === undefined ? (m.level === 'safe' ? 0 : 1) : m.level === 'safe' ? round(1 - m.score) : m.score);
  const categories: Record<string, boolean> = {};
  const scores: Record<string, number> = {};
  for (const key of [...OPENAI_KEYS, ...GUARD_CATEGORIES]) {
    categories[key] = false;
    scores[key] = 0;
  }
  for (const native of m.categories) {
    const keys = [native, ...(CATEGORY_TO_OPENAI[native as keyof typeof CATEGORY_TO_OPENAI] ?? [])];
    for (const key of keys) {
      categories[key] = flagged;
      scores[key] = notSafe;
    }
  }
  return { flagged, categories, category_scores: scores };
}

function round(p: number): number {
  return Math.round(p * 10_000) / 10_000;
}
