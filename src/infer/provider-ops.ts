/**
 * Which operators an execution provider of onnxruntime-node 1.30 cannot run, checked from the file's operator
 * list (onnx-scan.ts) before a session is created.
 *
 * CPU: every ONNX operator and the com.microsoft contrib set (MatMulNBits, GatherBlockQuantized, MatMulInteger,
 * MatMulBnb4, GroupQueryAttention, ...). An operator of any other domain needs a custom-op library guardctl does
 * not load; ORT would fail with "is not a registered function/op" or "No opset import for domain".
 *
 * WebGPU: ORT quietly runs what the WebGPU provider lacks on the CPU, copying activations between the devices at
 * every such node, every decode step. For the int8/uint8/quantized exports (DynamicQuantizeLinear + MatMulInteger
 * in every linear layer) that is slower than the CPU alone, so the load is refused and `auto` keeps the model
 * on the CPU. The list was measured on ORT 1.30 with session option disable_cpu_ep_fallback and one-node models:
 * the MatMulInteger family below needs the CPU; MatMulNBits (q4, q4f16), GatherBlockQuantized, MatMulBnb4 (bnb4)
 * and DequantizeLinear run on WebGPU (test/infer/load-refusal.test.ts measures it again on this machine's ORT).
 */
import type { Device } from './types.js';
import { configError } from './model-dir.js';

/** `domain:op` keys (onnx-scan.ts) the WebGPU provider hands back to the CPU. */
export const WEBGPU_CPU_ONLY_OPS: readonly string[] = [':DynamicQuantizeLinear', ':MatMulInteger', ':QuantizeLinear', 'com.microsoft:DecoderMaskedMultiHeadAttention'];

const KNOWN_DOMAINS = new Set(['', 'com.microsoft']);

const opName = (key: string) => {
  const [domain, op] = key.split(':') as [string, string];
  return domain === '' ? op : `${domain}.${op}`;
};

/** Throws when the file uses an operator `device` cannot run, naming it and what to use instead. */
export function checkOperators(where: string, ops: ReadonlyMap<string, number>, device: Device): void {
  const foreign = [...ops.keys()].filter((k) => !KNOWN_DOMAINS.has(k.split(':')[0]!));
  if (foreign.length > 0) {
    throw configError(
      `${where} uses operator ${foreign.map(opName).join(', ')} from a custom domain, which onnxruntime-node cannot run`,
      'use an export made with standard ONNX and com.microsoft operators (optimum / transformers.js exports are)',
      { operators: foreign.map(opName), device },
    );
  }
  if (device !== 'webgpu') return;
  const cpuOnly = WEBGPU_CPU_ONLY_OPS.filter((k) => ops.has(k));
  if (cpuOnly.length > 0) {
    throw configError(
      `${where} uses operator ${cpuOnly.map((k) => `${opName(k)} (${ops.get(k)} node${ops.get(k) === 1 ? '' : 's'})`).join(', ')}, which the webgpu provider lacks: ONNX Runtime would run it on the CPU at every step`,
      'on webgpu use the fp16, q4f16 or q4 export (--dtype); int8/uint8/quantized exports are for --device cpu',
      { operators: cpuOnly.map(opName), device },
    );
  }
}

/**
 * ONNX Runtime's own load failures that name an operator, said the way the other refusals are. ORT prefixes
 * messages with a source location; the sentence after it is what helps.
 */
export function explainLoadFailure(where: string, device: Device, message: string): { message: string; hint?: string } {
  const reason = message.split('\n')[0]!.replace(/^.* was false\. /, '');
  const unregistered = /([\w.]*):(\w+)\(-?\d+\) is not a registered function\/op/.exec(reason) ?? /Could not find an implementation for (\w+)\((\d+)\)/.exec(reason);
  if (unregistered) {
    const op = reason.includes('registered function') ? `${unregistered[1] ? `${unregistered[1]}.` : ''}${unregistered[2]}` : unregistered[1]!;
    return {
      message: `${where} cannot be loaded on ${device}: operator ${op} is not available in onnxruntime-node (${reason})`,
      hint: 'use an export made for ONNX Runtime (optimum / transformers.js), or another --dtype of the same export',
    };
  }
  if (/Unsupported data type/.test(reason)) {
    return { message: `${where} cannot be loaded on ${device}: ${reason}`, hint: 'the graph uses an element type the Node binding cannot describe (bfloat16?): use the fp32 or fp16 export' };
  }
  return { message: `${where} cannot be loaded on ${device}: ${reason}` };
}
