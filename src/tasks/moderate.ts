import type { ChatMessage, Engine, GenerateResult } from '../infer/types.js';
import { LEVEL_LABELS, LEVELS, parseGuardOutput, type GuardVerdict, type Level } from './guard-output.js';

/**
 * Moderation with a Qwen3Guard-Gen style model. The fast path scores the level with one prefill (the answer
 * forced to "Safety:", softmax over the three label tokens) and decodes the categories only when they are
 * needed: when the level is not safe, when asked for always, or when a response is judged (Refusal line).
 */
export interface ModerationInput {
  /** One prompt to judge. */
  text?: string;
  /** A prompt, or a prompt and the assistant's response. */
  messages?: ChatMessage[];
}

export interface ModerationOptions {
  model: string;
  categories: 'auto' | 'always';
  /** false: decode the whole answer without scoring (no score in the result). */
  fastPath: boolean;
  maxNewTokens: number;
  signal?: AbortSignal;
  deadline?: number;
}

export interface Moderation extends GuardVerdict {
  /** Probability of the level, from the fast path. */
  score?: number;
  /** Probability that the text is not safe (1 - P(Safe)), from the fast path: OpenAI's category_scores. */
  notSafe?: number;
  promptTokens: number;
  outputTokens: number;
}

export const SCORE_PREFIX = 'Safety:';
/** The label continuations the fast path scores after SCORE_PREFIX. */
export const CANDIDATES = LEVELS.map((l) => ` ${LEVEL_LABELS[l]}`);

export class ModerationInputError extends Error {}

/** The chat the guard judges: a user message, or a user message followed by the assistant's response. */
export function guardMessages(input: ModerationInput): ChatMessage[] {
  if (input.messages !== undefined) {
    const m = input.messages;
    const shapeOk = (m.length === 1 && m[0]!.role === 'user') || (m.length === 2 && m[0]!.role === 'user' && m[1]!.role === 'assistant');
    if (!shapeOk) throw new ModerationInputError('messages must be [{role: "user"}] or [{role: "user"}, {role: "assistant"}]');
    if (m.some((x) => x.content.trim() === '')) throw new ModerationInputError('message content must not be empty');
    return m;
  }
  if (input.text === undefined || input.text.trim() === '') throw new ModerationInputError('text must not be empty');
  return [{ role: 'user', content: input.text }];
}

export async function moderate(engine: Engine, messages: ChatMessage[], opts: ModerationOptions): Promise<Moderation> {
  const judgesResponse = messages.at(-1)?.role === 'assistant';
  const common = { model: opts.model, messages, signal: opts.signal, deadline: opts.deadline };
  if (!opts.fastPath) {
    const out = await engine.generate({ ...common, maxNewTokens: opts.maxNewTokens });
    return { ...parseGuardOutput(out.text, judgesResponse), promptTokens: out.promptTokens, outputTokens: out.outputTokens };
  }
  const scored = await engine.score({ ...common, prefix: SCORE_PREFIX, candidates: CANDIDATES });
  const best = scored.probabilities.indexOf(Math.max(...scored.probabilities));
  const level: Level = LEVELS[best]!;
  const score = round(scored.probabilities[best]!);
  const notSafe = round(1 - scored.probabilities[LEVELS.indexOf('safe')]!);
  if (level === 'safe' && opts.categories === 'auto' && !judgesResponse) {
    return { level, categories: [], score, notSafe, promptTokens: scored.promptTokens, outputTokens: 0 };
  }
  // Continue the answer from the scored level, so the decoded categories belong to that level.
  const prefix = `${SCORE_PREFIX} ${LEVEL_LABELS[level]}\nCategories:`;
  const out: GenerateResult = await engine.generate({ ...common, prefix, maxNewTokens: opts.maxNewTokens });
  const verdict = parseGuardOutput(prefix + out.text, judgesResponse);
  return { ...verdict, score, notSafe, promptTokens: out.promptTokens, outputTokens: out.outputTokens };
}

function round(p: number): number {
  return Math.round(p * 10_000) / 10_000;
}
