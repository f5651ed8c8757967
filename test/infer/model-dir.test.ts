import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { GuardError } from '../../src/core/errors.js';
import { probeExecutionProviders } from '../../src/infer/ep-probe.js';
import { loadModelDir } from '../../src/infer/model-dir.js';
import { tempDir } from '../helpers/cli.js';
import { GUARD_DIR, guard, startEngine, user } from '../helpers/infer-engine.js';

/** A copy of the guard demo model in a temp dir, changed by `edit`. */
function brokenCopy(root: string, name: string, edit: (dir: string) => void): string {
  const dir = path.join(root, name);
  cpSync(GUARD_DIR, dir, { recursive: true });
  edit(dir);
  return dir;
}

function editConfig(dir: string, change: Record<string, unknown>): void {
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), ...change }));
}

/** Asserts loadModelDir fails with GUARD_E_CONFIG and a message matching every pattern. */
function rejectsDir(dir: string, patterns: RegExp[], dtype?: 'fp16'): void {
  assert.throws(
    () => loadModelDir(dir, dtype),
    (err: unknown) => {
      assert.ok(err instanceof GuardError, String(err));
      assert.equal(err.code, 'GUARD_E_CONFIG');
      for (const p of patterns) assert.match(err.message, p);
      return true;
    },
  );
}

test('loadModelDir reads the demo layout', () => {
  const dir = loadModelDir(GUARD_DIR);
  assert.deepEqual(dir.config, { layers: 4, heads: 4, kvHeads: 2, headDim: 32, vocabSize: 4096, eosIds: [2], padId: 0, maxContext: 512, defaultMaxNewTokens: 64, generation: { doSample: false } });
  assert.equal(dir.onnxPath, path.join(GUARD_DIR, 'onnx', 'model.onnx'));
  assert.deepEqual(dir.externalData, []);
  assert.equal(dir.tokenizerVocab, 4096);
  assert.match(dir.chatTemplate, /Judge the safety/);
});

test('loadModelDir names what is missing or mismatched', (t) => {
  const root = tempDir(t, 'guardctl-infer-');
  rejectsDir(path.join(root, 'absent'), [/model directory .*absent does not exist/]);
  rejectsDir(brokenCopy(root, 'no-tokenizer', (d) => rmSync(path.join(d, 'tokenizer.json'))), [/no-tokenizer\/tokenizer\.json is missing/]);
  rejectsDir(brokenCopy(root, 'no-onnx', (d) => rmSync(path.join(d, 'onnx', 'model.onnx'))), [/no-onnx\/onnx\/model\.onnx is missing \(dtype fp32\)/]);
  // Asking for a dtype the export lacks names the file and what the directory has.
  assert.throws(() => loadModelDir(GUARD_DIR, 'q4'), (err: GuardError) => /model_q4\.onnx is missing \(dtype q4\)/.test(err.message) && /model\.onnx/.test(err.hint ?? ''));
  rejectsDir(
    brokenCopy(root, 'no-template', (d) => {
      const file = path.join(d, 'tokenizer_config.json');
      const cfg = JSON.parse(readFileSync(file, 'utf8'));
      delete cfg.chat_template;
      writeFileSync(file, JSON.stringify(cfg));
    }),
    [/tokenizer_config\.json has no chat_template/],
  );
  rejectsDir(brokenCopy(root, 'bad-json', (d) => writeFileSync(path.join(d, 'config.json'), '{"num_hidden_layers": 4,')), [/bad-json\/config\.json is not valid JSON/]);
  rejectsDir(brokenCopy(root, 'no-layers', (d) => editConfig(d, { num_hidden_layers: undefined })), [/config\.json: num_hidden_layers is missing/]);
  rejectsDir(brokenCopy(root, 'bad-eos', (d) => editConfig(d, { eos_token_id: 'x' })), [/eos_token_id must be a token id/]);
  // The tokenizer has 4096 tokens: a smaller vocab_size cannot hold them.
  rejectsDir(brokenCopy(root, 'small-vocab', (d) => editConfig(d, { vocab_size: 4000 })), [/vocabulary mismatch/, /tokenizer\.json has 4096 tokens/, /vocab_size is 4000/]);
  // head_dim derived from hidden_size / num_attention_heads when absent.
  const derived = brokenCopy(root, 'derived', (d) => editConfig(d, { head_dim: undefined, hidden_size: 128, num_attention_heads: 4 }));
  assert.equal(loadModelDir(derived).config.headDim, 32);
});

test('graph checks at load: a broken model is failed with its reason, the others still serve', async (t) => {
  const root = tempDir(t, 'guardctl-infer-');
  const specs = [
    guard('good'),
    { ...guard('five-layers'), dir: brokenCopy(root, 'five', (d) => editConfig(d, { num_hidden_layers: 5 })) },
    { ...guard('three-layers'), dir: brokenCopy(root, 'three', (d) => editConfig(d, { num_hidden_layers: 3 })) },
    { ...guard('wide-vocab'), dir: brokenCopy(root, 'wide', (d) => editConfig(d, { vocab_size: 5000 })) },
    { ...guard('kv-heads'), dir: brokenCopy(root, 'heads', (d) => editConfig(d, { num_key_value_heads: 4 })) },
    { ...guard('gpu-only'), device: 'webgpu' as const },
    { ...guard('truncated'), dir: brokenCopy(root, 'trunc', (d) => writeFileSync(path.join(d, 'onnx', 'model.onnx'), readFileSync(path.join(GUARD_DIR, 'onnx', 'model.onnx')).subarray(0, 4096))) },
  ];
  const { engine, logs } = await startEngine(t, specs);
  const byName = Object.fromEntries(engine.models().map((m) => [m.name, m]));
  assert.equal(byName.good!.state, 'ready');
  const failed = (name: string, ...patterns: RegExp[]) => {
    assert.equal(byName[name]!.state, 'failed', name);
    for (const p of patterns) assert.match(byName[name]!.error ?? '', p);
  };
  failed('five-layers', /input past_key_values\.4\.key is missing/, /num_hidden_layers is 5 but the graph has past inputs for 4 layers/);
  failed('three-layers', /unexpected input past_key_values\.3\.key/, /num_hidden_layers is 3/);
  failed('wide-vocab', /vocabulary mismatch/, /logits have 4096 entries but config\.json vocab_size is 5000/);
  failed('kv-heads', /past_key_values\.0\.key has 2 KV heads but config\.json num_key_value_heads is 4/);
  failed('truncated', /trunc\/onnx\/model\.onnx (is not a readable ONNX model|cannot be loaded)/);
  assert.ok(logs.some((l) => l.level === 'error' && /five-layers failed to load/.test(l.message)));
  // WebGPU asked for explicitly: served where an adapter exists, else failed with the adapter's reason.
  const [webgpu] = await probeExecutionProviders(['webgpu']);
  if (webgpu!.ok) assert.equal(byName['gpu-only']!.state, 'ready');
  else failed('gpu-only', /asks for device webgpu, which is not available/);
  await assert.rejects(engine.generate({ model: 'five-layers', messages: user('Hi'), maxNewTokens: 4 }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'not_ready');
    assert.match(err.message, /^model five-layers failed to load: .*num_hidden_layers is 5/);
    assert.doesNotMatch(err.message, /is failed/);
    return true;
  });
  assert.equal((await engine.generate({ model: 'good', messages: user("What's the capital of France?"), maxNewTokens: 16 })).text, 'Safety: Safe\nCategories: None');
});

test('requests before start() are not_ready', async () => {
  const { createEngine } = await import('../../src/infer/engine.js');
  const engine = createEngine([guard()], { maxBatch: 1, maxWaitMs: 0, maxQueue: 1, maxInputTokens: 100 });
  await assert.rejects(engine.generate({ model: 'guard', messages: user('Hi'), maxNewTokens: 4 }), { code: 'not_ready', message: 'model guard is still loading' });
  assert.equal(engine.models()[0]!.state, 'loading');
  await engine.close();
});
