/**
 * The sampling parameters of a generating route's body (temperature, top_p, top_k, repetition_penalty, seed,
 * max_tokens), checked here rather than by the JSON schema so that a refusal names the allowed range: 422
 * invalid_request with the field, min and max. null means "not set", as OpenAI-style clients send it.
 */
import { SAMPLING_LIMITS } from '../infer/generation-config.js';
import type { SamplingRequest } from '../infer/generation-config.js';
import { ApiError } from './errors.js';

/** The body fields, for a route schema: any JSON value, so the message below (with the range) is the one sent. */
export const SAMPLING_FIELDS = { temperature: {}, top_p: {}, top_k: {}, repetition_penalty: {}, seed: {}, max_tokens: {} } as const;

export interface SamplingBody {
  temperature?: unknown;
  top_p?: unknown;
  top_k?: unknown;
  repetition_penalty?: unknown;
  seed?: unknown;
  max_tokens?: unknown;
}

export interface SamplingLimits {
  /** The server's most answer tokens (--max-new-tokens). */
  maxTokens: number;
  /** The model's vocabulary: the largest top_k. */
  vocabSize: number;
}

function refuse(field: string, message: string, min: number, max: number): never {
  throw new ApiError('invalid_request', message, { field, min, max });
}

function number(body: SamplingBody, field: keyof SamplingBody, ok: (v: number) => boolean, message: string, min: number, max: number): number | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) refuse(field, message, min, max);
  return v;
}

/** The request's sampling overrides and answer length, or a 422 naming the first field out of range. */
export function samplingFromBody(body: SamplingBody, limits: SamplingLimits, maxTokensName = 'max_tokens'): { sampling: SamplingRequest; maxTokens?: number } {
  const { temperature: T, topP: P, repetitionPenalty: R, seed: S } = SAMPLING_LIMITS;
  const int = Number.isInteger;
  const temperature = number(body, 'temperature', (v) => v >= T.min && v <= T.max, `temperature must be a number from ${T.min} to ${T.max} (0 decodes greedily)`, T.min, T.max);
  const topP = number(body, 'top_p', (v) => v > P.min && v <= P.max, `top_p must be a number above ${P.min} and at most ${P.max} (1 is off)`, P.min, P.max);
  const topK = number(body, 'top_k', (v) => int(v) && v >= -1 && v <= limits.vocabSize, `top_k must be a whole number from 1 to ${limits.vocabSize} (the model's vocabulary), or 0 or -1 for off`, -1, limits.vocabSize);
  const repetitionPenalty = number(body, 'repetition_penalty', (v) => v > R.min && v <= R.max, `repetition_penalty must be a number above ${R.min} and at most ${R.max} (1 is off)`, R.min, R.max);
  const seed = number(body, 'seed', (v) => int(v) && v >= S.min && v <= S.max, `seed must be a whole number from ${S.min} to ${S.max}`, S.min, S.max);
  // Read from max_tokens, named as the client sent it (chat completions also take max_completion_tokens).
  const maxTokens = number({ [maxTokensName]: body.max_tokens } as SamplingBody, maxTokensName as keyof SamplingBody, (v) => int(v) && v >= 1 && v <= limits.maxTokens,
    `${maxTokensName} must be a whole number from 1 to ${limits.maxTokens} (this server's --max-new-tokens)`, 1, limits.maxTokens);
  const sampling: SamplingRequest = {};
  if (temperature !== undefined) sampling.temperature = temperature;
  if (topP !== undefined) sampling.topP = topP;
  if (topK !== undefined) sampling.topK = Math.max(0, topK);
  if (repetitionPenalty !== undefined) sampling.repetitionPenalty = repetitionPenalty;
  if (seed !== undefined) sampling.seed = seed;
  return { sampling, ...(maxTokens !== undefined ? { maxTokens } : {}) };
}
