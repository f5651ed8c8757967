/**
 * Loads and validates a model directory in the Hugging Face ONNX layout (config.json, generation_config.json,
 * tokenizer.json, tokenizer_config.json, onnx/model[_<dtype>].onnx and its external data). Everything wrong is
 * a GUARD_E_CONFIG GuardError whose message names the file and the field, so an operator pointing guardctl at
 * a half-downloaded export learns what to fetch instead of reading an ONNX Runtime stack trace.
 *
 * The graph's declared tensors (names, element types, KV shape, logits width) are checked against this config
 * here, from the file (onnx-scan.ts, graph.ts), before ONNX Runtime sees it; the worker checks the session's own
 * metadata again once it exists.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { GuardError } from '../core/errors.js';
import type { Dtype } from './types.js';
import { parseGenerationDefaults } from './generation-config.js';
import type { GenerationDefaults } from './generation-config.js';
import { scanOnnx } from './onnx-scan.js';
import type { OnnxSummary } from './onnx-scan.js';
import { validateGraph } from './graph.js';

export interface ModelConfig {
  layers: number;
  /** num_attention_heads (query heads), when config.json gives it. */
  heads?: number;
  kvHeads: number;
  headDim: number;
  vocabSize: number;
  /** generation_config.json's eos_token_id when it has one (it is what generate() in transformers uses). */
  eosIds: number[];
  padId: number;
  /** max_position_embeddings: prompt + answer. */
  maxContext: number;
  /** generation_config.json max_new_tokens, for callers that want the model's own default. */
  defaultMaxNewTokens?: number;
  /** generation_config.json's sampling defaults (do_sample, temperature, top_p, top_k, repetition_penalty). */
  generation: GenerationDefaults;
}

export interface ModelDir {
  dir: string;
  dtype: Dtype;
  onnxPath: string;
  /** External data files the graph refers to (all exist). ONNX Runtime finds them itself, next to onnxPath:
   * the Node binding's externalData option would want their bytes in JS memory, gigabytes for real exports. */
  externalData: string[];
  config: ModelConfig;
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  chatTemplate: string;
  /** Highest token id in tokenizer.json + 1. */
  tokenizerVocab: number;
  /** The file's operators and declared inputs/outputs (already checked against config). */
  graph: OnnxSummary;
}

export function configError(message: string, hint?: string, details?: Record<string, unknown>): GuardError {
  return new GuardError('GUARD_E_CONFIG', message, { hint, details });
}

type Json = Record<string, unknown>;

function readJson(file: string, required: true): Json;
function readJson(file: string, required: false): Json | undefined;
function readJson(file: string, required: boolean): Json | undefined {
  if (!existsSync(file)) {
    if (!required) return undefined;
    throw configError(`${file} is missing`, 'download the complete model directory (Hugging Face ONNX layout)');
  }
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw configError(`${file} is not valid JSON: ${(err as Error).message}`, undefined, { file });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw configError(`${file} does not hold a JSON object`);
  return value as Json;
}

function positiveInt(file: string, json: Json, key: string): number | undefined {
  const v = json[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw configError(`${file}: ${key} must be a positive integer (found ${JSON.stringify(v)})`);
  return v;
}

function tokenIds(file: string, json: Json, key: string): number[] | undefined {
  const v = json[key];
  if (v === undefined || v === null) return undefined;
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0 || !list.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) {
    throw configError(`${file}: ${key} must be a token id or a list of token ids (found ${JSON.stringify(v)})`);
  }
  return list as number[];
}

function parseConfig(configPath: string, config: Json, genPath: string, gen: Json | undefined): ModelConfig {
  const need = (key: string): number => {
    const v = positiveInt(configPath, config, key);
    if (v === undefined) throw configError(`${configPath}: ${key} is missing`);
    return v;
  };
  const layers = need('num_hidden_layers');
  const heads = positiveInt(configPath, config, 'num_attention_heads');
  // Without num_key_value_heads the model uses plain multi-head attention (transformers' default).
  const kvHeads = positiveInt(configPath, config, 'num_key_value_heads') ?? heads;
  if (kvHeads === undefined) throw configError(`${configPath}: num_key_value_heads (or num_attention_heads) is missing`);
  let headDim = positiveInt(configPath, config, 'head_dim');
  if (headDim === undefined) {
    const hidden = positiveInt(configPath, config, 'hidden_size');
    if (hidden === undefined || heads === undefined) throw configError(`${configPath}: head_dim is missing and cannot be derived (needs hidden_size and num_attention_heads)`);
    headDim = hidden / heads;
    if (!Number.isInteger(headDim)) throw configError(`${configPath}: hidden_size ${hidden} is not a multiple of num_attention_heads ${heads}`);
  }
  const vocabSize = need('vocab_size');
  const maxContext = need('max_position_embeddings');
  const configEos = tokenIds(configPath, config, 'eos_token_id');
  const eosIds = (gen && tokenIds(genPath, gen, 'eos_token_id')) ?? configEos;
  if (eosIds === undefined) throw configError(`${configPath}: eos_token_id is missing (and ${genPath} has none)`);
  // The pad id only fills the left padding, which the attention mask hides: any valid id works.
  const padId = (gen && tokenIds(genPath, gen, 'pad_token_id')?.[0]) ?? tokenIds(configPath, config, 'pad_token_id')?.[0] ?? eosIds[0]!;
  for (const [what, id] of [...eosIds.map((id) => ['eos_token_id', id] as const), ['pad_token_id', padId] as const]) {
    if (id >= vocabSize) throw configError(`${configPath}: ${what} ${id} is outside the vocabulary (vocab_size ${vocabSize})`);
  }
  const defaultMaxNewTokens = gen ? positiveInt(genPath, gen, 'max_new_tokens') : undefined;
  const generation = parseGenerationDefaults(genPath, gen);
  return { layers, ...(heads ? { heads } : {}), kvHeads, headDim, vocabSize, eosIds, padId, maxContext, generation, ...(defaultMaxNewTokens ? { defaultMaxNewTokens } : {}) };
}

/** tokenizer.json's vocabulary size: the highest id of the model vocabulary and the added tokens, plus one. */
function tokenizerVocabSize(file: string, tok: Json): number {
  let max = -1;
  const model = tok.model as Json | undefined;
  const vocab = model?.vocab;
  if (Array.isArray(vocab)) {
    max = vocab.length - 1; // Unigram: [[piece, score], ...], ids are positions
  } else if (vocab && typeof vocab === 'object') {
    for (const id of Object.values(vocab)) if (typeof id === 'number' && id > max) max = id;
  } else {
    throw configError(`${file}: model.vocab is missing`);
  }
  for (const added of (tok.added_tokens as Json[] | undefined) ?? []) if (typeof added.id === 'number' && added.id > max) max = added.id;
  return max + 1;
}

/** The chat template: tokenizer_config.json's chat_template (a string or a named list), else chat_template.jinja. */
function chatTemplate(dir: string, file: string, cfg: Json): string {
  const t = cfg.chat_template;
  if (typeof t === 'string' && t !== '') return t;
  if (Array.isArray(t)) {
    const named = t.find((x: Json) => x?.name === 'default') as Json | undefined;
    if (typeof named?.template === 'string') return named.template;
  }
  const jinja = path.join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return readFileSync(jinja, 'utf8');
  throw configError(`${file} has no chat_template (and ${jinja} is missing)`, 'use a chat model export: its tokenizer_config.json carries the template');
}

export function onnxFileName(dtype: Dtype): string {
  return dtype === 'fp32' ? 'model.onnx' : `model_${dtype}.onnx`;
}

function locateOnnx(dir: string, dtype: Dtype): { onnxPath: string; externalData: string[]; graph: OnnxSummary } {
  const onnxDir = path.join(dir, 'onnx');
  const onnxPath = path.join(onnxDir, onnxFileName(dtype));
  if (!existsSync(onnxPath)) {
    const present = existsSync(onnxDir) ? readdirSync(onnxDir).filter((f) => f.endsWith('.onnx')) : [];
    throw configError(
      `${onnxPath} is missing (dtype ${dtype})`,
      present.length > 0 ? `this directory has ${present.join(', ')}: pick the matching --dtype` : 'download the onnx/ folder of the export',
      { dtype, available: present },
    );
  }
  let graph: OnnxSummary;
  try {
    graph = scanOnnx(onnxPath, statSync(onnxPath).size);
  } catch (err) {
    throw configError(`${onnxPath} is not a readable ONNX model: ${(err as Error).message}`, 'the download may be truncated: download the file again', { dtype });
  }
  const externalData = graph.externalData.map((loc) => path.resolve(onnxDir, loc));
  for (const file of externalData) {
    if (!existsSync(file)) {
      throw configError(`${onnxPath} keeps its weights in ${file}, which is missing`, `download ${path.basename(file)} into ${onnxDir}`, { dtype });
    }
  }
  return { onnxPath, externalData, graph };
}

export function loadModelDir(dir: string, dtype: Dtype = 'fp32'): ModelDir {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw configError(`model directory ${dir} does not exist`);
  const configPath = path.join(dir, 'config.json');
  const genPath = path.join(dir, 'generation_config.json');
  const tokPath = path.join(dir, 'tokenizer.json');
  const tokCfgPath = path.join(dir, 'tokenizer_config.json');
  const config = parseConfig(configPath, readJson(configPath, true), genPath, readJson(genPath, false));
  const tokenizerJson = readJson(tokPath, true);
  const tokenizerConfig = readJson(tokCfgPath, true);
  const template = chatTemplate(dir, tokCfgPath, tokenizerConfig);
  const tokenizerVocab = tokenizerVocabSize(tokPath, tokenizerJson);
  // Exports often pad vocab_size above the tokenizer (Qwen3: 151936 vs 151669): only the reverse is an error.
  if (tokenizerVocab > config.vocabSize) {
    throw configError(`vocabulary mismatch: ${tokPath} has ${tokenizerVocab} tokens but ${configPath} vocab_size is ${config.vocabSize}`, 'the tokenizer and the model come from different exports', {
      tokenizerVocab,
      vocabSize: config.vocabSize,
    });
  }
  const located = locateOnnx(dir, dtype);
  // Before ONNX Runtime: it cannot even describe some tensors (bfloat16), and a mismatch costs a session otherwise.
  validateGraph(located.onnxPath, config, located.graph.inputs, located.graph.outputs);
  return { dir, dtype, ...located, config, tokenizerJson, tokenizerConfig, chatTemplate: template, tokenizerVocab };
}
