/**
 * `npm run bench:gpu -- [--model DIR] [--prompt-tokens 256] [--new-tokens 64] [--batches 1,8]`: prefill and
 * decode tokens/s of one model on each execution provider that loads here (cpu, and webgpu when an adapter
 * exists), through the engine the daemon uses, and the webgpu/cpu ratios. Tokens/s come from the engine's own
 * step events (time inside session.run), so HTTP and scheduling are not part of them.
 *
 * The issue's GPU measurement is this script on a GPU host with a Qwen3-0.6B-shaped model of random weights,
 * made there with bench/make_qwen3_shaped.py (README, "GPU benchmark"). Without a GPU, Mesa's lavapipe may
 * provide a software WebGPU adapter: the script then runs, and says that its webgpu numbers are not a GPU's.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createEngine } from '../src/infer/engine.js';
import { probeExecutionProviders } from '../src/infer/ep-probe.js';
import { loadModelDir } from '../src/infer/model-dir.js';
import { ChatTokenizer } from '../src/infer/tokenizer.js';
import type { Device, StepEvent } from '../src/infer/types.js';

const say = (s: string) => process.stdout.write(`${s}\n`);

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const dir = arg('model', 'models/guard-demo');
const promptTokens = Number(arg('prompt-tokens', '256'));
const newTokens = Number(arg('new-tokens', '64'));
const batches = arg('batches', '1,8').split(',').map(Number);
const rounds = Number(arg('rounds', '2'));

/** A GPU device node (NVIDIA's, or a DRM render node): without one, a WebGPU adapter can only be software. */
function gpuDeviceNodes(): string[] {
  const nodes = fs.existsSync('/dev/nvidia0') ? ['/dev/nvidia0'] : [];
  if (fs.existsSync('/dev/dri')) nodes.push(...fs.readdirSync('/dev/dri').filter((f) => f.startsWith('renderD')).map((f) => `/dev/dri/${f}`));
  return nodes;
}

/** A user message whose rendered prompt is about `tokens` tokens long. */
function promptOf(tok: ChatTokenizer, tokens: number): string {
  const unit = 'The quick brown fox jumps over the lazy dog. ';
  const per = tok.encode(unit.repeat(10)).length / 10;
  let text = unit.repeat(Math.max(1, Math.round(tokens / per)));
  while (tok.encode(tok.render([{ role: 'user', content: text }])).length > tokens && text.length > unit.length) text = text.slice(unit.length);
  return text;
}

interface Row {
  device: Device;
  batch: number;
  prefill: number;
  decode: number;
  decodeTokens: number;
  wallMs: number;
}

async function measure(device: Device, text: string): Promise<Row[]> {
  const steps: StepEvent[] = [];
  const engine = createEngine([{ name: 'bench', task: 'moderate', dir, size: 'small', device }], {
    maxBatch: Math.max(...batches), maxWaitMs: 50, maxQueue: 1024, maxInputTokens: promptTokens + 64, onStep: (e) => steps.push(e),
  });
  try {
    await engine.start();
    const info = engine.models()[0]!;
    if (info.state !== 'ready') throw new Error(`the model does not load on ${device}: ${info.error}`);
    const rows: Row[] = [];
    for (const batch of batches) {
      let best: Row | undefined;
      for (let r = 0; r < rounds; r++) {
        steps.length = 0;
        const t0 = performance.now();
        await Promise.all(Array.from({ length: batch }, () => engine.generate({ model: 'bench', messages: [{ role: 'user', content: text }], maxNewTokens: newTokens })));
        const wallMs = performance.now() - t0;
        const rate = (kind: string) => {
          const s = steps.filter((e) => e.kind === kind);
          const ms = s.reduce((n, e) => n + e.ms, 0);
          return { tokens: s.reduce((n, e) => n + e.tokens, 0), perSecond: ms > 0 ? (s.reduce((n, e) => n + e.tokens, 0) * 1000) / ms : 0 };
        };
        const row = { device, batch, prefill: rate('prefill').perSecond, decode: rate('decode').perSecond, decodeTokens: rate('decode').tokens, wallMs };
        if (!best || row.wallMs < best.wallMs) best = row;
      }
      rows.push(best!);
      say(`${device} batch ${batch}: prefill ${best!.prefill.toFixed(0)} tok/s, decode ${best!.decode.toFixed(1)} tok/s (${best!.decodeTokens} decoded), wall ${best!.wallMs.toFixed(0)} ms`);
    }
    return rows;
  } finally {
    await engine.close();
  }
}

async function main(): Promise<void> {
  const model = loadModelDir(dir, 'fp32');
  const tok = new ChatTokenizer(model);
  const text = promptOf(tok, promptTokens);
  const actual = tok.encode(tok.render([{ role: 'user', content: text }])).length;
  say(`model ${dir}: ${model.config.layers} layers, ${model.config.kvHeads} KV heads x ${model.config.headDim}, vocab ${model.config.vocabSize}; prompt ${actual} tokens, up to ${newTokens} new`);
  const [webgpu] = await probeExecutionProviders(['webgpu']);
  const nodes = gpuDeviceNodes();
  const software = nodes.length === 0;
  say(`webgpu: ${webgpu!.ok ? 'loads' : `unavailable (${webgpu!.error})`}; GPU device nodes: ${nodes.join(', ') || 'none'}`);
  if (webgpu!.ok && software) say('NOTE: no GPU device here, so the WebGPU adapter is a software one (Mesa lavapipe): its numbers are the CPU emulating a GPU, not a GPU.');

  const rows = await measure('cpu', text);
  if (webgpu!.ok) rows.push(...(await measure('webgpu', text)));

  say('');
  say('device  batch  prefill tok/s  decode tok/s  wall ms');
  for (const r of rows) say(`${r.device.padEnd(6)}  ${String(r.batch).padStart(5)}  ${r.prefill.toFixed(0).padStart(13)}  ${r.decode.toFixed(1).padStart(12)}  ${r.wallMs.toFixed(0).padStart(7)}`);
  if (webgpu!.ok) {
    say('');
    for (const batch of batches) {
      const c = rows.find((r) => r.device === 'cpu' && r.batch === batch)!;
      const g = rows.find((r) => r.device === 'webgpu' && r.batch === batch)!;
      say(`webgpu/cpu at batch ${batch}: prefill ${(g.prefill / c.prefill).toFixed(2)}x, decode ${(g.decode / c.decode).toFixed(2)}x${software ? ' (software adapter)' : ''}`);
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
