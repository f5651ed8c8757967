/**
 * `guardctl model check`, the real CLI in-process: the embedded demo models pass (exit 0, with a smoke run),
 * and each way a download can be incomplete or mismatched fails with its own message and exit 1. Broken copies
 * live in temp dirs; the tiny decoder graphs come from python3-onnx at test time.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { probeExecutionProviders } from '../../src/infer/ep-probe.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { GUARD_DIR, MT_DIR } from '../helpers/infer-engine.js';
import { writeCountingModelDir } from '../helpers/onnx-builder.js';
import { availableOrSkip } from '../helpers/system.js';
import { pythonWithOnnx, writeTinyModelDir } from '../helpers/tiny-decoder.js';

function brokenCopy(root: string, name: string, edit: (dir: string) => void, from = GUARD_DIR): string {
  const dir = path.join(root, name);
  cpSync(from, dir, { recursive: true });
  edit(dir);
  return dir;
}

function editJson(file: string, change: (json: Record<string, unknown>) => void): void {
  const json = JSON.parse(readFileSync(file, 'utf8'));
  change(json);
  writeFileSync(file, JSON.stringify(json));
}

/** Runs `model check` with --json and asserts exit 1 and an error message matching every pattern. */
async function fails(args: string[], patterns: RegExp[], hint?: RegExp) {
  const run = await runCli(['model', 'check', ...args, '--json']);
  const report = run.json();
  assert.equal(run.code, 1, run.stdout);
  assert.equal(report.ok, false);
  for (const p of patterns) assert.match(report.error.message, p);
  if (hint) assert.match(report.error.hint ?? '', hint);
  return report;
}

test('model check: the demo models pass with their contract, template, fast path and a smoke run', async () => {
  const run = await runCli(['model', 'check', GUARD_DIR, '--json']);
  assert.equal(run.code, 0, run.stdout);
  const r = run.json();
  assert.equal(r.ok, true);
  assert.equal(r.task, 'moderate');
  assert.deepEqual(r.layout.weights.map((w: { dtype: string; problem: string }) => [w.dtype, w.problem]), [['fp32', '']]);
  assert.match(r.contract.kv, /past_key_values\.0\.\.3\.key\/value -> present\.\*: float32 \[batch_size, 2, past_sequence_length, 32\]/);
  assert.deepEqual(r.vocab, { config: 4096, tokenizer: 4096, logits: 4096 });
  assert.equal(r.maxContext, 512);
  // Prefix + text + suffix as rendered; the text is the sample, verbatim, between them.
  assert.ok(r.template.rendered.includes(r.template.sample));
  assert.ok(r.template.prefixTokens > 0 && r.template.textTokens > 0 && r.template.suffixTokens > 0, JSON.stringify(r.template));
  assert.equal(r.fastPath.applies, true);
  assert.deepEqual(r.fastPath.labels.map((l: { label: string }) => l.label), [' Safe', ' Unsafe', ' Controversial']);
  assert.equal(new Set(r.fastPath.labels.map((l: { id: number }) => l.id)).size, 3);
  assert.equal(r.smoke.device, 'cpu');
  assert.ok(r.smoke.promptTokens > r.template.totalTokens, 'the scored prompt is the template plus "Safety:"');
  assert.ok(r.smoke.peakRssMiB >= r.smoke.rssBeforeMiB && r.smoke.peakRssMiB > 0, JSON.stringify(r.smoke));

  const text = await runCli(['model', 'check', MT_DIR, '--template', 'by-target']);
  assert.equal(text.code, 0, text.stdout);
  assert.match(text.stdout, /task translate/);
  assert.match(text.stdout, /smoke run {3}loaded on cpu in \d+ ms .*one request \(\d+ prompt tokens\) in \d+ ms/);
  assert.match(text.stdout, /peak RSS \d+ MiB/);
  assert.match(text.stdout, /^ok: serve would serve this export \(--dtype fp32 --device cpu\)$/m);
  assert.doesNotMatch(text.stdout, /fast path/);
});

test('model check: each incomplete or mismatched download gets its own error and exit 1', async (t) => {
  const root = tempDir(t, 'guardctl-check-');
  // External data: the fp16 counting model keeps a weight in model_fp16.onnx_data.
  const counting = path.join(root, 'counting');
  writeCountingModelDir(counting, GUARD_DIR);
  const ok = await runCli(['model', 'check', counting, '--dtype', 'fp16', '--json']);
  assert.equal(ok.code, 0, ok.stdout);
  assert.deepEqual(ok.json().layout.weights[0].externalData, [{ file: 'model_fp16.onnx_data', bytes: 8 }]);
  rmSync(path.join(counting, 'onnx', 'model_fp16.onnx_data'));
  await fails([counting, '--dtype', 'fp16'], [/model_fp16\.onnx keeps its weights in .*model_fp16\.onnx_data, which is missing/], /download model_fp16\.onnx_data/);
  await fails([counting], [/onnx\/model\.onnx is missing \(dtype fp32\)/], /model_fp16\.onnx: pick the matching --dtype/);
  await fails([GUARD_DIR, '--dtype', 'bnb4'], [/serve does not load dtype bnb4/], /fp32, fp16, q4, q4f16, int8/);

  const noTemplate = brokenCopy(root, 'no-template', (d) => editJson(path.join(d, 'tokenizer_config.json'), (j) => delete j.chat_template));
  await fails([noTemplate], [/tokenizer_config\.json has no chat_template/], /chat model export/);
  const layers = brokenCopy(root, 'layers', (d) => editJson(path.join(d, 'config.json'), (j) => (j.num_hidden_layers = 5)));
  await fails([layers], [/input past_key_values\.4\.key is missing/, /num_hidden_layers is 5 but the graph has past inputs for 4 layers/]);
  const heads = brokenCopy(root, 'heads', (d) => editJson(path.join(d, 'config.json'), (j) => (j.num_key_value_heads = 4)));
  await fails([heads], [/past_key_values\.0\.key has 2 KV heads but config\.json num_key_value_heads is 4/], /different exports/);
  const headDim = brokenCopy(root, 'head-dim', (d) => editJson(path.join(d, 'config.json'), (j) => (j.head_dim = 64)));
  await fails([headDim], [/past_key_values\.0\.key has head size 32 but config\.json says 64/]);
  const vocab = brokenCopy(root, 'vocab', (d) => editJson(path.join(d, 'config.json'), (j) => (j.vocab_size = 5000)));
  await fails([vocab], [/vocabulary mismatch/, /logits have 4096 entries but config\.json vocab_size is 5000/]);
  // Cut inside the weights: the scan ends past the file's end, before ONNX Runtime is asked.
  const truncated = brokenCopy(root, 'truncated', (d) => {
    const file = path.join(d, 'onnx', 'model.onnx');
    writeFileSync(file, readFileSync(file).subarray(0, 1_000_000));
  });
  const tr = await fails([truncated], [/truncated\/onnx\/model\.onnx is not a readable ONNX model/, /runs past its message|end of file/], /truncated: download the file again/);
  assert.match(tr.layout.weights[0].problem, /unreadable, probably truncated/);
  const topLevel = brokenCopy(root, 'top-level', (d) => {
    renameSync(path.join(d, 'onnx', 'model.onnx'), path.join(d, 'model.onnx'));
    rmSync(path.join(d, 'onnx'), { recursive: true });
  });
  await fails([topLevel], [/has model\.onnx next to config\.json; serve reads onnx\/model\[_<dtype>\]\.onnx/], /move the \.onnx files/);
  // A dtype other than the one checked that is broken is a warning, not a failure.
  const extra = brokenCopy(root, 'extra', (d) => {
    mkdirSync(path.join(d, 'onnx'), { recursive: true });
    writeFileSync(path.join(d, 'onnx', 'model_q4.onnx'), readFileSync(path.join(d, 'onnx', 'model.onnx')).subarray(0, 5000));
  });
  const warned = await runCli(['model', 'check', extra, '--json']);
  assert.equal(warned.code, 0, warned.stdout);
  assert.match(warned.json().warnings.join('\n'), /onnx\/model_q4\.onnx: unreadable, probably truncated/);
});

test('model check: the load-time refusals (element types, operators per device) decide the exit code', async (t) => {
  const python = pythonWithOnnx(t);
  if (!python) return;
  const root = tempDir(t, 'guardctl-check-');
  const bf16 = writeTinyModelDir(python, path.join(root, 'bf16'), 'bf16');
  await fails([bf16], [/past_key_values\.0\.key has element type bfloat16/], /model_fp16\.onnx/);
  const noPast = writeTinyModelDir(python, path.join(root, 'no-past'), 'no-past');
  await fails([noPast], [/input past_key_values\.1\.value is missing/]);
  // The operators decide, not the file name: the MatMulInteger graph stands in as model_q4.onnx.
  const int8 = writeTinyModelDir(python, path.join(root, 'int8'), 'int8', { dtype: 'q4' });
  const cpu = await runCli(['model', 'check', int8, '--dtype', 'q4', '--json']);
  assert.equal(cpu.code, 0, cpu.stdout);
  assert.deepEqual([cpu.json().contract.operators.MatMulInteger, cpu.json().contract.operators.DynamicQuantizeLinear], [1, 1]);
  const [webgpu] = await probeExecutionProviders(['webgpu']);
  if (!availableOrSkip(t, webgpu!.ok, 'a WebGPU adapter', webgpu!.error ?? '')) return;
  await fails([int8, '--dtype', 'q4', '--device', 'webgpu'], [/MatMulInteger \(1 node\), which the webgpu provider lacks/], /--device cpu/);
});
