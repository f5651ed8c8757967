/**
 * `guardctl model check`: the operator's pre-flight for a downloaded export. It runs the checks `serve` runs when
 * it loads a model, in the same code (loadModelDir, the operator check, the engine's load and warm-up), and one
 * request, so its verdict is serve's: ok iff serve would serve the export with the same --dtype and --device.
 * Every stage adds what it learned to the report; the first failure ends the check with its GuardError.
 */
import { GuardError, isGuardError } from '../core/errors.js';
import { CANDIDATES, SCORE_PREFIX } from '../tasks/moderate.js';
import { translationPrompt } from '../tasks/translate.js';
import { createEngine } from './engine.js';
import { validateGraph } from './graph.js';
import { loadModelDir } from './model-dir.js';
import { findLayout } from './model-layout.js';
import type { Layout } from './model-layout.js';
import { checkOperators } from './provider-ops.js';
import { ChatTokenizer } from './tokenizer.js';
import { DTYPES } from './types.js';
import type { ChatMessage, Device, Dtype, Task, TranslateTemplate } from './types.js';

export interface ModelCheckOptions {
  dir: string;
  /** Default: moderate when the chat template speaks of safety (Qwen3Guard-Gen), else translate. */
  task?: Task;
  dtype?: string;
  device?: Device;
  template?: TranslateTemplate;
  /** Skip the smoke run (tests of the static checks). */
  smoke?: boolean;
}

export interface ModelCheckReport {
  ok: boolean;
  dir: string;
  task?: Task;
  dtype: string;
  device: Device;
  layout: Layout;
  contract?: {
    inputs: string;
    kv: string;
    logits: string;
    layers: number;
    operators: Record<string, number>;
  };
  vocab?: { config: number; tokenizer: number; logits: number | string };
  maxContext?: number;
  template?: { sample: string; rendered: string; prefixTokens: number; textTokens: number; suffixTokens: number; totalTokens: number };
  fastPath?: { applies: boolean; prefix: string; labels: Array<{ label: string; id: number; token: string }>; reason?: string };
  smoke?: { device: Device; loadMs: number; requestMs: number; promptTokens: number; output: string; peakRssMiB: number; rssBeforeMiB: number };
  warnings: string[];
  error?: { code: string; message: string; hint?: string; details?: Record<string, unknown> };
}

const SAMPLE = "What's the capital of France?";
const MiB = 1024 * 1024;

function fail(report: ModelCheckReport, err: unknown): ModelCheckReport {
  const e = isGuardError(err) ? err : new GuardError('GUARD_E_CONFIG', err instanceof Error ? err.message : String(err));
  report.ok = false;
  report.error = { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}), ...(e.details ? { details: e.details } : {}) };
  return report;
}

function sampleMessages(task: Task, template: TranslateTemplate): { messages: ChatMessage[]; text: string } {
  if (task === 'moderate') return { messages: [{ role: 'user', content: SAMPLE }], text: SAMPLE };
  const text = 'The weather is nice today.';
  return { messages: [{ role: 'user', content: translationPrompt({ text, source: 'en', target: 'zh' }, template) }], text };
}

export async function checkModel(opts: ModelCheckOptions): Promise<ModelCheckReport> {
  const dtype = opts.dtype ?? 'fp32';
  const device = opts.device ?? 'cpu';
  const report: ModelCheckReport = { ok: false, dir: opts.dir, dtype, device, layout: findLayout(opts.dir), warnings: [] };
  try {
    if (!(DTYPES as readonly string[]).includes(dtype)) {
      throw new GuardError('GUARD_E_CONFIG', `serve does not load dtype ${dtype}`, { hint: `serve's --dtype takes ${DTYPES.join(', ')}` });
    }
    if (report.layout.layout === 'top-level') {
      throw new GuardError('GUARD_E_CONFIG', `${opts.dir} has ${report.layout.other.join(', ')} next to config.json; serve reads onnx/model[_<dtype>].onnx`, {
        hint: `move the .onnx files (and their external data) into ${opts.dir}/onnx/`,
      });
    }
    for (const w of report.layout.weights) if (w.problem && w.dtype !== dtype) report.warnings.push(`onnx/${w.file}: ${w.problem}`);

    const dir = loadModelDir(opts.dir, dtype as Dtype);
    const graph = validateGraph(dir.onnxPath, dir.config, dir.graph.inputs, dir.graph.outputs);
    const logits = dir.graph.outputs.find((o) => o.name === 'logits')!;
    const kvShape = dir.graph.inputs.find((i) => i.name === graph.pastNames[0])?.shape ?? [];
    report.contract = {
      inputs: ['input_ids', 'attention_mask', ...(graph.hasPositionIds ? ['position_ids'] : [])].join(', ') + ' (int64)',
      kv: `past_key_values.0..${dir.config.layers - 1}.key/value -> present.*: ${graph.kvDtype} [${kvShape.join(', ')}]`,
      logits: `logits: ${graph.logitsDtype} [${(logits.shape ?? []).join(', ')}]`,
      layers: dir.config.layers,
      operators: Object.fromEntries([...dir.graph.ops].sort((a, b) => b[1] - a[1]).map(([k, n]) => [k.startsWith(':') ? k.slice(1) : k.replace(':', '.'), n])),
    };
    report.vocab = { config: dir.config.vocabSize, tokenizer: dir.tokenizerVocab, logits: logits.shape?.[2] ?? 'dynamic' };
    report.maxContext = dir.config.maxContext;
    checkOperators(dir.onnxPath, dir.graph.ops, device);

    const tok = new ChatTokenizer(dir);
    const task: Task = opts.task ?? (/safety/i.test(dir.chatTemplate) ? 'moderate' : 'translate');
    report.task = task;
    const template = opts.template ?? 'hy-mt';
    const { messages, text } = sampleMessages(task, template);
    const rendered = tok.render(messages);
    const at = rendered.indexOf(text);
    if (at < 0) throw new GuardError('GUARD_E_CONFIG', `the chat template does not put the user's text into the prompt (rendered: ${JSON.stringify(rendered.slice(0, 200))})`, { hint: 'use the tokenizer_config.json of the same export' });
    const count = (s: string) => tok.encode(s).length;
    report.template = {
      sample: text,
      rendered,
      prefixTokens: count(rendered.slice(0, at)),
      textTokens: count(text),
      suffixTokens: count(rendered.slice(at + text.length)),
      totalTokens: count(rendered),
    };

    if (task === 'moderate') {
      const prompt = tok.render(messages, SCORE_PREFIX);
      try {
        const ids = tok.candidateFirstTokens(prompt, tok.encode(prompt), CANDIDATES);
        report.fastPath = { applies: true, prefix: SCORE_PREFIX, labels: CANDIDATES.map((label, i) => ({ label, id: ids[i]!, token: tok.decode([ids[i]!]) })) };
      } catch (err) {
        report.fastPath = { applies: false, prefix: SCORE_PREFIX, labels: [], reason: (err as Error).message };
        throw new GuardError('GUARD_E_CONFIG', `the moderation fast path does not apply: ${(err as Error).message}`, {
          hint: 'the tokenizer is not Qwen3Guard-Gen\'s: /v1/moderations needs "Safety:" followed by " Safe", " Unsafe", " Controversial" as distinct first tokens',
        });
      }
    }

    if (opts.smoke !== false) report.smoke = await smokeRun(opts.dir, dtype as Dtype, device, task, messages, template, report);
    report.ok = true;
    return report;
  } catch (err) {
    return fail(report, err);
  }
}

/**
 * Loads the model in a real engine (worker thread, warm-up included) and runs one request: the fast-path score
 * for moderation, a 16-token generate for translation. Peak memory is the process's resident-set high-water mark
 * (getrusage ru_maxrss via process.resourceUsage()), which covers the worker thread's ONNX Runtime session, the
 * tokenizer and the KV cache of the request; rssBeforeMiB is the RSS before the model was loaded.
 */
async function smokeRun(dir: string, dtype: Dtype, device: Device, task: Task, messages: ChatMessage[], template: TranslateTemplate, report: ModelCheckReport): Promise<NonNullable<ModelCheckReport['smoke']>> {
  const rssBefore = process.memoryUsage().rss;
  const engine = createEngine([{ name: 'check', task, dir, size: 'small', dtype, device, translateTemplate: template }], {
    maxBatch: 1, maxWaitMs: 0, maxQueue: 1, maxInputTokens: report.maxContext!, warmupTokens: 1, tokenizeThreads: 0,
    log: (level, message) => {
      if (level === 'warn') report.warnings.push(message);
    },
  });
  try {
    const t0 = performance.now();
    await engine.start();
    const loadMs = Math.round(performance.now() - t0);
    const info = engine.models()[0]!;
    if (info.state !== 'ready') throw new GuardError('GUARD_E_CONFIG', `the model failed to load on ${device}: ${info.error ?? 'no cause recorded'}`, { hint: `serve would mark this model failed on ${device}` });
    const t1 = performance.now();
    let output: string;
    let promptTokens: number;
    if (task === 'moderate') {
      const r = await engine.score({ model: 'check', messages, prefix: SCORE_PREFIX, candidates: CANDIDATES });
      output = CANDIDATES.map((c, i) => `${c.trim()} ${r.probabilities[i]!.toFixed(3)}`).join(', ');
      promptTokens = r.promptTokens;
    } else {
      const r = await engine.generate({ model: 'check', messages, maxNewTokens: 16 });
      output = r.text;
      promptTokens = r.promptTokens;
    }
    const requestMs = Math.round(performance.now() - t1);
    const peak = process.resourceUsage().maxRSS * 1024;
    return { device: info.device!, loadMs, requestMs, promptTokens, output, peakRssMiB: Math.round(peak / MiB), rssBeforeMiB: Math.round(rssBefore / MiB) };
  } finally {
    await engine.close();
  }
}

/** The report as text for people. */
export function formatReport(r: ModelCheckReport): string {
  const lines: string[] = [`model directory ${r.dir}`];
  lines.push(`  layout      ${r.layout.layout === 'none' ? 'no .onnx files found' : `${r.layout.layout} (${r.layout.files.join(', ') || 'no JSON files'})`}`);
  for (const w of r.layout.weights) {
    const ext = w.externalData.map((x) => `${x.file} ${x.bytes === undefined ? 'MISSING' : `${(x.bytes / MiB).toFixed(1)} MiB`}`).join(', ');
    lines.push(`  ${w.dtype === r.dtype ? '*' : ' '} ${w.dtype.padEnd(9)} onnx/${w.file} ${(w.bytes / MiB).toFixed(1)} MiB${ext ? ` + ${ext}` : ''}${w.problem ? `  (${w.problem})` : ''}`);
  }
  if (r.layout.other.length) lines.push(`  other       ${r.layout.other.join(', ')}`);
  lines.push(`  checking    dtype ${r.dtype} on ${r.device}${r.task ? `, task ${r.task}` : ''}`);
  if (r.contract) {
    lines.push(`  inputs      ${r.contract.inputs}`, `  kv cache    ${r.contract.kv}`, `  output      ${r.contract.logits}`);
    lines.push(`  operators   ${Object.entries(r.contract.operators).slice(0, 12).map(([k, n]) => `${k} ${n}`).join(', ')}${Object.keys(r.contract.operators).length > 12 ? ', ...' : ''}`);
  }
  if (r.vocab) lines.push(`  vocab       config ${r.vocab.config}, tokenizer ${r.vocab.tokenizer}, logits ${r.vocab.logits}`);
  if (r.maxContext) lines.push(`  context     ${r.maxContext} tokens (max_position_embeddings)`);
  if (r.template) {
    const t = r.template;
    lines.push(`  template    ${t.prefixTokens} tokens before the text, ${t.textTokens} text, ${t.suffixTokens} after (${t.totalTokens} in all) for ${JSON.stringify(t.sample)}`);
    lines.push(...t.rendered.split('\n').map((l) => `    | ${l}`));
  }
  if (r.fastPath) {
    lines.push(
      r.fastPath.applies
        ? `  fast path   applies: after "${r.fastPath.prefix}" scores ${r.fastPath.labels.map((l) => `${JSON.stringify(l.label)} = token ${l.id}`).join(', ')}`
        : `  fast path   does not apply: ${r.fastPath.reason}`,
    );
  }
  if (r.smoke) {
    const s = r.smoke;
    lines.push(`  smoke run   loaded on ${s.device} in ${s.loadMs} ms (warm-up included); one request (${s.promptTokens} prompt tokens) in ${s.requestMs} ms`);
    lines.push(`              output: ${JSON.stringify(s.output.slice(0, 120))}`);
    lines.push(`              peak RSS ${s.peakRssMiB} MiB (process high-water mark; ${s.rssBeforeMiB} MiB before loading)`);
  }
  for (const w of r.warnings) lines.push(`  warning     ${w}`);
  if (r.error) {
    lines.push('', `FAIL: ${r.error.message}`);
    if (r.error.hint) lines.push(`  hint: ${r.error.hint}`);
  } else lines.push('', `ok: serve would serve this export (--dtype ${r.dtype} --device ${r.device})`);
  return lines.join('\n');
}
