/**
 * Qwen3Guard-Gen's answer format: `Safety: Safe|Unsafe|Controversial`, `Categories: A, B|None`, and for a
 * prompt + response pair `Refusal: Yes|No`. Output that does not follow it is an error (the server answers
 * 502), never a guess.
 */
export type Level = 'safe' | 'controversial' | 'unsafe';

export const LEVEL_LABELS: Record<Level, string> = { safe: 'Safe', unsafe: 'Unsafe', controversial: 'Controversial' };
export const LEVELS: Level[] = ['safe', 'unsafe', 'controversial'];

/** Qwen3Guard-Gen's categories. */
export const GUARD_CATEGORIES = [
  'Violent', 'Non-violent Illegal Acts', 'Sexual Content or Sexual Acts', 'PII', 'Suicide & Self-Harm',
  'Unethical Acts', 'Politically Sensitive Topics', 'Copyright Violation', 'Jailbreak',
] as const;

export interface GuardVerdict {
  level: Level;
  categories: string[];
  refusal?: 'yes' | 'no';
}

export class GuardOutputError extends Error {
  constructor(message: string, readonly output: string) {
    super(message);
    this.name = 'GuardOutputError';
  }
}

export function parseGuardOutput(text: string, expectRefusal: boolean): GuardVerdict {
  const lines = text.trim().split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const field = (name: string): string | undefined => {
    const line = lines.find((l) => l.startsWith(`${name}:`));
    return line?.slice(name.length + 1).trim();
  };
  const safety = field('Safety');
  const level = LEVELS.find((l) => LEVEL_LABELS[l] === safety);
  if (!level) throw new GuardOutputError(`the model's answer has no valid "Safety:" line (got ${JSON.stringify(safety ?? lines[0] ?? '')})`, text);
  const rawCategories = field('Categories');
  if (rawCategories === undefined) throw new GuardOutputError('the model\'s answer has no "Categories:" line', text);
  const categories = rawCategories === 'None' ? [] : rawCategories.split(',').map((c) => c.trim()).filter(Boolean);
  // "None" or names: an empty line is an answer cut short, not "no category".
  if (rawCategories !== 'None' && categories.length === 0) throw new GuardOutputError('the model\'s answer has an empty "Categories:" line', text);
  const unknown = categories.filter((c) => !(GUARD_CATEGORIES as readonly string[]).includes(c));
  if (unknown.length) throw new GuardOutputError(`the model's answer names unknown categories: ${unknown.join(', ')}`, text);
  if (level === 'safe' && categories.length) throw new GuardOutputError('the model\'s answer is "Safe" but lists categories', text);
  const verdict: GuardVerdict = { level, categories };
  if (expectRefusal) {
    const refusal = field('Refusal');
    if (refusal !== 'Yes' && refusal !== 'No') throw new GuardOutputError(`the model's answer has no valid "Refusal:" line (got ${JSON.stringify(refusal ?? '')})`, text);
    verdict.refusal = refusal === 'Yes' ? 'yes' : 'no';
  }
  return verdict;
}
