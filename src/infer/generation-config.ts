/**
 * A model's sampling defaults (generation_config.json) and how a request's own parameters override them.
 *
 * As in transformers, a model samples by default only when its generation_config says do_sample: true; without it
 * (the demo models) the default is greedy. A request that sets a temperature above 0 samples whatever the model's
 * default. A parameter neither the request nor the file sets is off (top_k 0, top_p 1, repetition_penalty 1,
 * temperature 1 when sampling), as vLLM does: transformers' implicit top_k 50 is not applied.
 */
import { randomInt } from 'node:crypto';
import { GuardError } from '../core/errors.js';
import type { SamplingParams } from './sampling.js';

export interface GenerationDefaults {
  doSample: boolean;
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
}

/** What a request may set; what it leaves out comes from the model's defaults. */
export type SamplingRequest = Partial<SamplingParams>;

/** The ranges a request is held to (the server answers 422 outside them); top_k is also capped by the vocabulary. */
export const SAMPLING_LIMITS = {
  temperature: { min: 0, max: 2 },
  topP: { min: 0, max: 1, exclusiveMin: true },
  repetitionPenalty: { min: 0, max: 2, exclusiveMin: true },
  seed: { min: 0, max: Number.MAX_SAFE_INTEGER },
} as const;

type Json = Record<string, unknown>;

function bad(file: string, key: string, want: string, v: unknown): GuardError {
  return new GuardError('GUARD_E_CONFIG', `${file}: ${key} must be ${want} (found ${JSON.stringify(v)})`, { hint: 'fix or remove the field; the request can still set it' });
}

/** The sampling fields of generation_config.json (absent: greedy, every processor off). */
export function parseGenerationDefaults(file: string, gen: Json | undefined): GenerationDefaults {
  if (!gen) return { doSample: false };
  const num = (key: string, ok: (v: number) => boolean, want: string): number | undefined => {
    const v = gen[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw bad(file, key, want, v);
    return v;
  };
  const doSample = gen.do_sample;
  if (doSample !== undefined && doSample !== null && typeof doSample !== 'boolean') throw bad(file, 'do_sample', 'true or false', doSample);
  const out: GenerationDefaults = { doSample: doSample === true };
  const temperature = num('temperature', (v) => v >= 0, 'a number >= 0');
  const topP = num('top_p', (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  const topK = num('top_k', (v) => Number.isInteger(v) && v >= 0, 'a whole number >= 0');
  const repetitionPenalty = num('repetition_penalty', (v) => v > 0, 'a number > 0');
  if (temperature !== undefined) out.temperature = temperature;
  if (topP !== undefined) out.topP = topP;
  if (topK !== undefined) out.topK = topK;
  if (repetitionPenalty !== undefined) out.repetitionPenalty = repetitionPenalty;
  return out;
}

/**
 * The parameters a generate request runs with, or undefined for plain greedy decoding (temperature 0 and no
 * repetition penalty), which needs no sampler. An unseeded sampled request gets a random seed.
 */
export function resolveSampling(req: SamplingRequest, defaults: GenerationDefaults, vocabSize: number): SamplingParams | undefined {
  const temperature = req.temperature ?? (defaults.doSample ? defaults.temperature ?? 1 : 0);
  const repetitionPenalty = req.repetitionPenalty ?? defaults.repetitionPenalty ?? 1;
  if (temperature === 0 && repetitionPenalty === 1) return undefined;
  const topK = req.topK ?? defaults.topK ?? 0;
  return {
    temperature,
    topP: req.topP ?? defaults.topP ?? 1,
    topK: topK >= vocabSize ? 0 : topK,
    repetitionPenalty,
    seed: req.seed ?? randomInt(0, 2 ** 48 - 1),
  };
}
