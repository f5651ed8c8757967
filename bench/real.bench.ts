/**
 * `npm run bench:real`: guardctl on a Qwen3-0.6B-shaped model (random weights, real widths and vocabulary, the
 * real tokenizer, Qwen3Guard-Gen's official template; bench/real-model.ts builds it once, outside the repo), CPU.
 *  1. per dtype (fp32, q4) and prefix reuse (off, on): p50 latency of one moderation of
 *     a short text, engine throughput at concurrency 8 and 32, the process's peak RSS; and, in another process,
 *     ONNX Runtime alone on the same graph (the engine's Runner in a plain loop: one batched prefill of the same
 *     prompts, then as many decode steps as the engine produced; with reuse on, the prompts' shared head prefilled
 *     once beforehand) for the served/alone ratio.
 *  2. item 2's figure: peak memory of a batch-32 prefill of real-template prompts against the KV cache it produces,
 *     with the last-logits rewrite and with the graph as exported (fullLogits), one process each.
 *  3. decode step time at batch 1 and batch 8 after a ~300-token prompt (goal: batch 8 <= 2x batch 1), with
 *     ONNX Runtime's profile of the decode steps by operator type: whole presents fetched, new positions fetched
 *     with the graph's Concat attention, and split attention (the default).
 * Every measurement runs in its own child process, so one's memory does not count in another's peak. Bounded:
 * each concurrency runs waves of exactly that many requests (three of 8, then one of 32), latency is the median of 3, so a run takes
 * 10-20 minutes per dtype for section 1 on 2 cores (most of it batch-32 prefills of ~300 tokens), 3 minutes for
 * sections 2 and 3. Ratios are taken within one run, but engine and ONNX Runtime alone run one after the other:
 * on a shared machine their load differs, so run it on an idle one.
 * GUARDCTL_BENCH_ONLY=1,3 picks sections; GUARDCTL_BENCH_DTYPES=fp32 picks dtypes; GUARDCTL_BENCH_ATTENTION=repeat_kv
 * measures a model whose attention is written as torch exports write it (bench/real-model.ts).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEngine } from '../src/infer/engine.js';
import { loadModelDir } from '../src/infer/model-dir.js';
import { ChatTokenizer } from '../src/infer/tokenizer.js';
import type { Dtype, EngineOptions } from '../src/infer/types.js';
import { GuardOutputError } from '../src/tasks/guard-output.js';
import { guardMessages, moderate } from '../src/tasks/moderate.js';
import { BENCH_ATTENTION, BENCH_DTYPES, benchModelDir } from './real-model.js';
import { SHORT_TEXTS, argmax, guardPromptIds, loadRunner } from './real-session.js';
import { drive, percentile } from './setup.js';

const say = (s: string) => process.stdout.write(`${s}\n`);
const THREADS = os.availableParallelism();
const OPTS = { categories: 'always' as const, fastPath: true, maxNewTokens: 8 };
const CONCURRENCY = [8, 32];
/** Waves per concurrency: a single wave of 8 moved by 10-45% from run to run (new memory costs 0.4-2.3 s per GB to
 * touch here, depending on the moment), so that cell runs three; a wave of 32 is already a minute. */
const WAVES: Record<number, number> = { 8: 3, 32: 1 };
const LATENCY_RUNS = 3;
type PrefixMode = 'off' | 'on';
type StepVariant = 'full' | 'delta' | 'grouped' | 'split';
// Prefix reuse (the engine's prefix cache) off, then on: GUARDCTL_BENCH_PREFIX=off runs one of them.
const PREFIX_MODES = (process.env.GUARDCTL_BENCH_PREFIX?.split(',') ?? ['off', 'on']) as PrefixMode[];

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const peakRss = () => process.resourceUsage().maxRSS * 1024;
const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);

// ------------------------------------------------------------------------------------------------- children

async function engineChild(dir: string, dtype: Dtype, mode: PrefixMode): Promise<object> {
  const options: EngineOptions = {
    maxBatch: 32, maxWaitMs: 5, maxQueue: 4096, maxInputTokens: 2048, threads: THREADS, warmupTokens: 2, prefixCache: mode === 'on',
  };
  const engine = createEngine([{ name: 'guard', task: 'moderate', dir, size: 'small', dtype, device: 'cpu' }], options);
  await engine.start();
  const failed = engine.models().find((m) => m.state !== 'ready');
  if (failed) throw new Error(`model did not load: ${JSON.stringify(failed)}`);
  const loadedRss = process.memoryUsage().rss;
  const promptTokens = guardPromptIds(new ChatTokenizer(loadModelDir(dir, dtype)), SHORT_TEXTS[0]!).length;
  // Random weights answer with random tokens, which the verdict parser refuses after the work is done: such an
  // answer counts, with the most tokens it may have (random weights almost never stop early).
  let unparsed = 0;
  const one = (i: number) =>
    moderate(engine, guardMessages({ text: SHORT_TEXTS[i % SHORT_TEXTS.length]! }), { model: 'guard', ...OPTS }).catch((err: unknown) => {
      if (!(err instanceof GuardOutputError)) throw err;
      unparsed++;
      return { outputTokens: OPTS.maxNewTokens, promptTokens: 0 };
    });
  const latencies: number[] = [];
  let outputTokens = 0;
  for (let i = 0; i < LATENCY_RUNS; i++) {
    const started = performance.now();
    const m = await one(i);
    latencies.push(performance.now() - started);
    outputTokens += m.outputTokens;
  }
  const throughput: Record<number, number> = {};
  for (const c of CONCURRENCY) {
    throughput[c] = await drive(c * WAVES[c]!, c, async (i) => {
      const m = await one(i);
      outputTokens += m.outputTokens;
    });
  }
  await engine.close();
  const requests = LATENCY_RUNS + CONCURRENCY.reduce((a, c) => a + c * WAVES[c]!, 0);
  return { p50Ms: median(latencies), throughput, outputTokens: outputTokens / requests, promptTokens, unparsed, requests, loadedRss, peakRss: peakRss() };
}

/**
 * ONNX Runtime alone: per concurrency, batches (one per wave) of the same prompts, each prefilled, then `steps`
 * greedy decode steps.
 * With reuse on, the prompts' shared head (all but its last token, as the engine keeps a BPE boundary) is
 * prefilled once first, as the engine's prefix cache does at load, so both sides do the same work.
 */
async function ortChild(dir: string, dtype: Dtype, steps: number, mode: PrefixMode): Promise<object> {
  const { runner, tok } = await loadRunner(dir, dtype, THREADS);
  if (mode === 'on') {
    const all = SHORT_TEXTS.map((text) => guardPromptIds(tok, text));
    let shared = 0;
    while (all.every((p) => p[shared] === all[0]![shared])) shared++;
    for (const head of await runner.prefillHeads([all[0]!.slice(0, shared - 1)])) runner.prefixes.add(head);
  }
  const throughput: Record<number, number> = {};
  for (const c of CONCURRENCY) {
    const prompts = Array.from({ length: c }, (_, i) => guardPromptIds(tok, SHORT_TEXTS[i % SHORT_TEXTS.length]!));
    const started = performance.now();
    for (let wave = 0; wave < WAVES[c]!; wave++) {
      const pre = await runner.prefill(prompts, true);
      let kv = pre.kv!;
      let next = argmax(pre.logits);
      for (let s = 0; s < steps; s++) {
        const out = await runner.decode(kv, next);
        kv = out.kv;
        next = argmax(out.logits);
      }
    }
    throughput[c] = (c * WAVES[c]!) / ((performance.now() - started) / 1000);
  }
  return { throughput, peakRss: peakRss() };
}

/** Item 2: peak memory growth of a batch-32 prefill (KV kept) over the loaded, warmed model, against that KV. */
async function memoryChild(dir: string, dtype: Dtype, fullLogits: boolean): Promise<object> {
  const { runner, tok } = await loadRunner(dir, dtype, THREADS, { fullLogits });
  await runner.prefill([guardPromptIds(tok, 'hello')], false);
  const loadedRss = process.memoryUsage().rss;
  const loadPeak = peakRss();
  const prompts = Array.from({ length: 32 }, (_, i) => guardPromptIds(tok, SHORT_TEXTS[i % SHORT_TEXTS.length]!));
  const out = await runner.prefill(prompts, true);
  const peak = peakRss();
  // The KV of the positions in use: free slots for later steps (kv-append.ts) are not what the prefill produced.
  const kv = out.kv!;
  return { kvBytes: (runner.bytesOf(kv) * (kv.used ?? kv.length)) / kv.length, loadedRss, loadPeak, peak, growth: peak - loadedRss, tokens: prompts.reduce((n, p) => n + p.length, 0), runs: out.runs.length, ms: out.ms };
}

/** Item 3: decode step times at batch 1 and 8 after the guard prompt (~300 tokens), and ORT's profile of them. */
async function stepsChild(dir: string, dtype: Dtype, variant: StepVariant): Promise<object> {
  const profileDir = mkdtempSync(path.join(os.tmpdir(), 'guardctl-real-profile-'));
  const choices = { fullPresents: variant === 'full', concatAttention: variant === 'delta' || variant === 'grouped', exportedAttention: variant === 'full' || variant === 'delta' };
  const { runner, tok, session } = await loadRunner(dir, dtype, THREADS, { ...choices, extra: { enableProfiling: true, profileFilePrefix: path.join(profileDir, 'ort') } });
  const STEPS = 6;
  const result: Record<number, { runMs: number; wallMs: number; past: number; slots: number }> = {};
  const prefillRuns: number[] = [];
  for (const batch of [1, 8]) {
    const prompts = Array.from({ length: batch }, (_, i) => guardPromptIds(tok, SHORT_TEXTS[i % SHORT_TEXTS.length]!));
    const pre = await runner.prefill(prompts, true);
    prefillRuns.push(pre.runs.length);
    let kv = pre.kv!;
    let next = argmax(pre.logits);
    const runMs: number[] = [];
    const wallMs: number[] = [];
    for (let s = 0; s < STEPS; s++) {
      const started = performance.now();
      const out = await runner.decode(kv, next);
      kv = out.kv;
      next = argmax(out.logits);
      wallMs.push(performance.now() - started);
      runMs.push(out.ms);
    }
    result[batch] = { runMs: median(runMs), wallMs: median(wallMs), past: kv.used ?? kv.length, slots: kv.length };
  }
  session.endProfiling();
  const file = readdirSync(profileDir).map((f) => path.join(profileDir, f))[0];
  const profile = file ? opsOfDecodeSteps(JSON.parse(readFileSync(file, 'utf8')) as ProfileEvent[], STEPS, prefillRuns) : {};
  rmSync(profileDir, { recursive: true, force: true });
  return { steps: result, profile };
}

interface ProfileEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string };
}

/** Per batch size (in run order: 1, then 8), ms per decode step by operator type, from the runs after each prefill
 * (prefillRuns[k] runs: a large batch is prefilled in row groups). */
function opsOfDecodeSteps(events: ProfileEvent[], steps: number, prefillRuns: number[]): Record<string, Record<string, number>> {
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts);
  // Runs: warm prefill chunks are absent (no warm-up here); each batch is [prefill runs..., steps decode runs].
  const out: Record<string, Record<string, number>> = {};
  const decodeRuns: ProfileEvent[][] = [];
  let i = 0;
  for (const prefill of prefillRuns) {
    decodeRuns.push(runs.slice(i + prefill, i + prefill + steps));
    i += prefill + steps;
  }
  [1, 8].forEach((batch, k) => {
    const byOp: Record<string, number> = {};
    for (const run of decodeRuns[k]!) {
      for (const e of events) {
        if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < run.ts || e.ts > run.ts + run.dur) continue;
        const op = e.args?.op_name ?? '?';
        byOp[op] = (byOp[op] ?? 0) + e.dur / 1000 / steps;
      }
    }
    const total = runs.length ? decodeRuns[k]!.reduce((n, r) => n + r.dur / 1000, 0) / steps : 0;
    out[batch] = Object.fromEntries([['model_run', total], ...Object.entries(byOp).sort((a, b) => b[1] - a[1]).slice(0, 8)].map(([k2, v]) => [k2, Math.round((v as number) * 10) / 10]));
  });
  return out;
}

// ------------------------------------------------------------------------------------------------- parent

function child(...args: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`child ${args.join(' ')} failed (${r.status ?? r.signal})`);
  const last = r.stdout.trim().split('\n').at(-1)!;
  return JSON.parse(last) as Record<string, unknown>;
}

const ONLY = process.env.GUARDCTL_BENCH_ONLY?.split(',').map((s) => s.trim());
const runs = (section: number) => !ONLY || ONLY.includes(String(section));
const DTYPES = (process.env.GUARDCTL_BENCH_DTYPES?.split(',') ?? [...BENCH_DTYPES]) as Dtype[];

async function parent(): Promise<void> {
  const dir = benchModelDir(say);
  say(`bench:real: Qwen3-0.6B shape (28 layers, hidden 1024, 16/8 heads of 128, vocab 151936), random weights, ${BENCH_ATTENTION} attention, ${dir}`);
  say(`CPU: ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}, ONNX Runtime intra-op threads ${THREADS} on both sides; moderation: categories=always, max ${OPTS.maxNewTokens} new tokens`);
  if (runs(1)) {
    say('\n1. moderations of short texts (official template, ~300 prompt tokens each)');
    say('dtype | prefix | prompt tokens (1st text) | p50 latency | conc 8 mod/s | conc 32 mod/s | ORT alone 8 / 32 | served/alone 8 / 32 | peak RSS engine / ORT');
    for (const dtype of DTYPES) {
      const off: Record<number, number> = {};
      for (const mode of PREFIX_MODES) {
        const e = child('engine', dir, dtype, mode) as { p50Ms: number; throughput: Record<number, number>; outputTokens: number; promptTokens: number; peakRss: number };
        const o = child('ort', dir, dtype, `${Math.ceil(e.outputTokens)},${mode}`) as { throughput: Record<number, number>; peakRss: number };
        const [a, b] = CONCURRENCY as [number, number];
        say(`${dtype} | ${mode} | ${e.promptTokens} | ${(e.p50Ms / 1000).toFixed(2)} s | ${e.throughput[a]!.toFixed(3)} | ${e.throughput[b]!.toFixed(3)} | ${o.throughput[a]!.toFixed(3)} / ${o.throughput[b]!.toFixed(3)} | ${(e.throughput[a]! / o.throughput[a]!).toFixed(2)}x / ${(e.throughput[b]! / o.throughput[b]!).toFixed(2)}x | ${mb(e.peakRss)} / ${mb(o.peakRss)}`);
        if (mode === 'off') Object.assign(off, e.throughput);
        else say(`  reuse on/off throughput: conc ${a} ${(e.throughput[a]! / off[a]!).toFixed(2)}x, conc ${b} ${(e.throughput[b]! / off[b]!).toFixed(2)}x (goal >= 2x)`);
      }
    }
  }
  if (runs(2)) {
    say('\n2. peak memory of a batch-32 prefill (KV kept) over the loaded model, fp32, against the KV it produces (goal < 1.5x)');
    for (const fullLogits of [false, true]) {
      const m = child('memory', dir, 'fp32', fullLogits ? 'full' : 'last') as { kvBytes: number; loadedRss: number; loadPeak: number; peak: number; growth: number; tokens: number; runs: number; ms: number };
      say(`${fullLogits ? 'logits for every position (as exported, chunked prefill)' : 'last-logits rewrite'}: ${m.tokens} tokens in ${m.runs} run(s), ${(m.ms / 1000).toFixed(1)} s; RSS loaded ${mb(m.loadedRss)} (load peak ${mb(m.loadPeak)}), peak ${mb(m.peak)}: growth ${mb(m.growth)} = ${(m.growth / m.kvBytes).toFixed(2)}x the KV (${mb(m.kvBytes)})`);
    }
  }
  if (runs(3)) {
    say('\n3. decode steps after the guard prompt, fp32 (median of 6; goal batch 8 <= 2x batch 1)');
    type Steps = { steps: Record<number, { runMs: number; wallMs: number; past: number; slots: number }>; profile: Record<string, Record<string, number>> };
    const variants: Record<string, Steps> = {};
    const labels: Record<StepVariant, string> = {
      full: 'whole presents fetched every step, the export\'s attention (before present-delta):',
      delta: 'new positions only, written into free slots of the past in place (present-delta.ts, kv-append.ts), the export\'s attention over Concat(past, new):',
      grouped: 'the same, with grouped attention reading the shared cache instead of repeat_kv\'s copies (grouped-attention.ts):',
      split: 'the default: grouped attention where the graph has repeat_kv, and attention reading the past and the new positions apart, no Concat (split-attention.ts):',
    };
    // The builder's grouped graph has no repeat_kv to rewrite.
    const shown: StepVariant[] = BENCH_ATTENTION === 'repeat_kv' ? ['full', 'delta', 'grouped', 'split'] : ['full', 'delta', 'split'];
    for (const variant of shown) {
      const s = child('steps', dir, 'fp32', variant) as Steps;
      variants[variant] = s;
      say(labels[variant]!);
      for (const b of [1, 8]) {
        const st = s.steps[b]!;
        say(`  batch ${b}: past ${st.past}${st.slots > st.past ? ` (in ${st.slots} slots)` : ''}: session.run ${st.runMs.toFixed(0)} ms, step ${st.wallMs.toFixed(0)} ms; ORT profile ms/step: ${Object.entries(s.profile[b] ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')}`);
      }
      say(`  batch 8 / batch 1 step: ${(s.steps[8]!.wallMs / s.steps[1]!.wallMs).toFixed(2)}x`);
    }
    const step = (v: string, b: number) => variants[v]!.steps[b]!.wallMs;
    say(`present-delta speed-up per step over whole presents: batch 1 ${(step('full', 1) / step('delta', 1)).toFixed(2)}x, batch 8 ${(step('full', 8) / step('delta', 8)).toFixed(2)}x`);
    say(`the default's speed-up per step over the export's attention: batch 1 ${(step('delta', 1) / step('split', 1)).toFixed(2)}x, batch 8 ${(step('delta', 8) / step('split', 8)).toFixed(2)}x`);
  }
}

async function childMain(args: string[]): Promise<void> {
  const [kind, dir, dtype, arg] = args as [string, string, Dtype, string];
  const result =
    kind === 'engine' ? await engineChild(dir, dtype, arg as PrefixMode)
    : kind === 'ort' ? await ortChild(dir, dtype, Number(arg.split(',')[0]), arg.split(',')[1] as PrefixMode)
    : kind === 'memory' ? await memoryChild(dir, dtype, arg === 'full')
    : kind === 'steps' ? await stepsChild(dir, dtype, arg as StepVariant)
    : undefined;
  if (!result) throw new Error(`unknown child ${kind}`);
  say(JSON.stringify(result));
}

const argv = process.argv.slice(2);
(argv[0] === '--child' ? childMain(argv.slice(1)) : parent()).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:real: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
