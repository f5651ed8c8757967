/**
 * Checks a loaded ONNX graph against its config.json before it serves: the decoder tensor contract
 * (input_ids, attention_mask, position_ids, past_key_values.{i}.key/value -> logits, present.{i}.key/value),
 * the number of layers, the KV shape, the logits width and the element types. The element types decide how the
 * worker builds past tensors (float16 travels as raw Uint16Array bits: Node 20 has no Float16Array) and how it
 * reads logits.
 */
import type { ModelConfig } from './model-dir.js';
import { configError } from './model-dir.js';

/** The part of ORT's InferenceSession.ValueMetadata the checks read (plain data: it crosses threads). */
export interface ValueMeta {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: ReadonlyArray<number | string>;
}

export type FloatType = 'float32' | 'float16';

export interface GraphInfo {
  kvDtype: FloatType;
  logitsDtype: FloatType;
  hasPositionIds: boolean;
  /** 'last' when the logits hold one position per row (last-logits.ts, or the export's own), else 'all'. */
  logitsPositions: 'last' | 'all';
  pastNames: string[];
  /** presentNames[i] is the output that becomes pastNames[i] on the next step. */
  presentNames: string[];
  /**
   * The presents hold the run's new positions only (present_delta.N of split-attention.ts, which computes no
   * present.N): the runner writes them after the past, and never feeds an empty past.
   */
  newPositionsOnly: boolean;
}

export const pastName = (layer: number, kind: 'key' | 'value') => `past_key_values.${layer}.${kind}`;
export const presentName = (layer: number, kind: 'key' | 'value') => `present.${layer}.${kind}`;

function floatType(where: string, name: string, meta: ValueMeta): FloatType {
  if (meta.type === 'float32' || meta.type === 'float16') return meta.type;
  throw configError(
    `${where}: ${name} has element type ${meta.type ?? 'non-tensor'}; only float32 and float16 are supported`,
    meta.type === 'bfloat16' ? 'ONNX Runtime for Node cannot exchange bfloat16 tensors: use the export\'s model.onnx (fp32) or model_fp16.onnx' : 'use an export whose past/present and logits are float32 or float16 (fp32, fp16, q4, q4f16)',
    { tensor: name, type: meta.type },
  );
}

/** Counts layers the graph has, from its past inputs, to say what the config should have said. */
function graphLayers(inputs: Map<string, ValueMeta>): number {
  let n = 0;
  while (inputs.has(pastName(n, 'key'))) n++;
  return n;
}

export function validateGraph(where: string, config: ModelConfig, inputList: readonly ValueMeta[], outputList: readonly ValueMeta[]): GraphInfo {
  const inputs = new Map(inputList.map((m) => [m.name, m]));
  const outputs = new Map(outputList.map((m) => [m.name, m]));
  const layerHint = () => {
    const n = graphLayers(inputs);
    return `config.json num_hidden_layers is ${config.layers} but the graph has past inputs for ${n} layer${n === 1 ? '' : 's'}`;
  };

  for (const name of ['input_ids', 'attention_mask']) {
    const m = inputs.get(name);
    if (!m) throw configError(`${where}: input ${name} is missing`, 'the model must be a decoder export with KV cache (text-generation-with-past)', { tensor: name });
    if (m.type !== 'int64') throw configError(`${where}: input ${name} is ${m.type}, expected int64`, 'use an optimum / transformers.js export (int64 ids and masks)', { tensor: name, type: m.type });
  }
  const posMeta = inputs.get('position_ids');
  if (posMeta && posMeta.type !== 'int64') throw configError(`${where}: input position_ids is ${posMeta.type}, expected int64`, 'use an optimum / transformers.js export (int64 ids and masks)', { tensor: 'position_ids', type: posMeta.type });

  const pastNames: string[] = [];
  const presentNames: string[] = [];
  let kvDtype: FloatType | undefined;
  let newOnly = false;
  for (let layer = 0; layer < config.layers; layer++) {
    for (const kind of ['key', 'value'] as const) {
      const pn = pastName(layer, kind);
      const past = inputs.get(pn);
      if (!past) {
        const hint = inputs.size > 0 && graphLayers(inputs) === 0 ? 'the graph has no KV cache inputs: export with past (optimum task text-generation-with-past)' : 'fix num_hidden_layers in config.json or use the matching export';
        throw configError(`${where}: input ${pn} is missing (${layerHint()})`, hint, { tensor: pn });
      }
      const t = floatType(where, pn, past);
      if (kvDtype !== undefined && t !== kvDtype) throw configError(`${where}: ${pn} is ${t} but other past tensors are ${kvDtype}`, 'the file mixes KV element types: download it again from one export', { tensor: pn });
      kvDtype = t;
      const [, heads, , dim] = past.shape ?? [];
      if (typeof heads === 'number' && heads !== config.kvHeads) {
        throw configError(`${where}: ${pn} has ${heads} KV heads but config.json num_key_value_heads is ${config.kvHeads}`, 'config.json and the graph come from different exports', { tensor: pn });
      }
      if (typeof dim === 'number' && dim !== config.headDim) throw configError(`${where}: ${pn} has head size ${dim} but config.json says ${config.headDim}`, 'config.json and the graph come from different exports', { tensor: pn });
      const on = presentName(layer, kind);
      const delta = `present_delta.${layer}.${kind}`;
      if (!outputs.has(on) && outputs.has(delta) && (layer === 0 || newOnly)) {
        newOnly = true;
        pastNames.push(pn);
        presentNames.push(delta);
        continue;
      }
      if (newOnly) throw configError(`${where}: ${on} is a whole present but earlier layers give new positions only`, 'the graph was rewritten in part: load the export as it is');
      if (!outputs.has(on)) throw configError(`${where}: output ${on} is missing`, 'the model must be a decoder export with KV cache (text-generation-with-past)', { tensor: on });
      pastNames.push(pn);
      presentNames.push(on);
    }
  }
  if (inputs.has(pastName(config.layers, 'key'))) {
    throw configError(`${where}: unexpected input ${pastName(config.layers, 'key')} (${layerHint()})`, 'fix num_hidden_layers in config.json or use the matching export', {
      tensor: pastName(config.layers, 'key'),
    });
  }
  const known = new Set(['input_ids', 'attention_mask', 'position_ids', ...pastNames]);
  const unknown = inputList.filter((m) => !known.has(m.name)).map((m) => m.name);
  if (unknown.length > 0) throw configError(`${where}: unsupported input${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`, 'guardctl feeds only the decoder-with-past inputs');

  const logits = outputs.get('logits');
  if (!logits) throw configError(`${where}: output logits is missing`, 'the model must be a causal-LM export (text-generation-with-past)', { tensor: 'logits' });
  const logitsDtype = floatType(where, 'logits', logits);
  const width = logits.shape?.[2];
  if (typeof width === 'number' && width !== config.vocabSize) {
    throw configError(`vocabulary mismatch: ${where} logits have ${width} entries but config.json vocab_size is ${config.vocabSize}`, 'the config and the graph come from different exports', {
      logitsVocab: width,
      vocabSize: config.vocabSize,
    });
  }
  const logitsPositions = logits.shape?.[1] === 1 ? 'last' : 'all';
  return { kvDtype: kvDtype ?? 'float32', logitsDtype, hasPositionIds: posMeta !== undefined, logitsPositions, pastNames, presentNames, newPositionsOnly: newOnly };
}
