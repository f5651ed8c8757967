import {
  EngineError, type ChatMessage, type Engine, type EngineOptions, type GenerateRequest, type GenerateResult, type ModelInfo,
  type ScoreRequest, type ScoreResult,
} from '../../src/infer/types.js';

/**
 * A canned Engine for the server's tests, for the cases a real model cannot be made to produce on demand. The
 * prompt's text steers it:
 *   "bomb" -> unsafe + Violent, "controversial" -> controversial + Politically Sensitive Topics, else safe;
 *   "[[garbage]]" -> an answer that does not parse; "[[queue_full]]", "[[timeout]]", "[[too_long]]",
 *   "[[engine_failed]]" -> that EngineError; "[[crash]]" -> a plain Error (a bug); "[[hang]]" -> waits until the
 *   request's signal aborts (then 'cancelled'), recording it in `aborted`; "[[held]]" -> answers once the test
 *   calls release() (so a test can act while a request is in flight, whatever the machine's speed).
 * Translation answers from a small table. A streamed generate (onText) sends its answer in three pieces, split
 * between characters; with "[[trickle]]" it sends the first piece, then waits until the test calls
 * continueStream() (a test can see that piece arrive while the answer is provably unfinished); with
 * "[[fail_mid_stream]]" it fails with 'timeout' after the first piece.
 */
export interface FakeEngine extends Engine {
  infos: ModelInfo[];
  /** Prompts seen, in order (for assertions on what reached the engine). */
  calls: Array<{ kind: 'generate' | 'score'; model: string; messages: ChatMessage[]; prefix?: string; maxNewTokens?: number }>;
  aborted: number;
  /** Resolves when a '[[hang]]' request has started waiting. */
  hanging: Promise<void>;
  /** Resolves when a '[[held]]' request has reached the engine. */
  held: Promise<void>;
  /** Lets '[[held]]' requests (those waiting and those to come) answer. */
  release(): void;
  /** Resolves when a '[[trickle]]' request has sent its first piece. */
  trickling: Promise<void>;
  /** Lets '[[trickle]]' requests send the rest of their answer. */
  continueStream(): void;
  setState(name: string, state: ModelInfo['state']): void;
}

const TRANSLATIONS: Record<string, string> = { '我们喜欢猫。': 'We like cats.', 'We like cats.': '我们喜欢猫。' };

export function fakeModels(): ModelInfo[] {
  const base = { dtype: 'fp32' as const, device: 'cpu' as const, state: 'ready' as const, maxContext: 512, vocabSize: 4096 };
  return [
    { ...base, name: 'guard-demo', task: 'moderate', size: 'small' },
    { ...base, name: 'mt-demo', task: 'translate', size: 'small', translateTemplate: 'by-target' },
    { ...base, name: 'guard-large', task: 'moderate', size: 'large' },
  ];
}

export function fakeEngine(options: Partial<EngineOptions> = {}, infos: ModelInfo[] = fakeModels()): FakeEngine {
  let hung = () => {};
  let arrived = () => {};
  let release = () => {};
  const released = new Promise<void>((r) => (release = r));
  let trickled = () => {};
  let resume = () => {};
  const resumed = new Promise<void>((r) => (resume = r));
  const engine: FakeEngine = {
    infos,
    calls: [],
    aborted: 0,
    hanging: new Promise<void>((r) => (hung = r)),
    held: new Promise<void>((r) => (arrived = r)),
    release: () => release(),
    trickling: new Promise<void>((r) => (trickled = r)),
    continueStream: () => resume(),
    setState(name, state) {
      const m = infos.find((i) => i.name === name);
      if (!m) throw new Error(`no fake model ${name}`);
      m.state = state;
    },
    async start() {
      for (const m of infos) if (m.state !== 'failed') m.state = 'ready';
    },
    models: () => infos.map((m) => ({ ...m })),
    async generate(req: GenerateRequest): Promise<GenerateResult> {
      engine.calls.push({ kind: 'generate', model: req.model, messages: req.messages, prefix: req.prefix, maxNewTokens: req.maxNewTokens });
      const info = await admit(req.model, req.messages, req.signal);
      const text = info.task === 'translate' ? translation(req.messages) : guardAnswer(req.messages, req.prefix);
      if (req.onText) await stream(text, req.messages, req.onText, req.signal);
      step(info, 'decode', 1, 3);
      return { text, promptTokens: promptTokens(req.messages), outputTokens: 3, finish: 'eos', queueMs: 0, engineMs: 1 };
    },
    async score(req: ScoreRequest): Promise<ScoreResult> {
      engine.calls.push({ kind: 'score', model: req.model, messages: req.messages, prefix: req.prefix });
      const info = await admit(req.model, req.messages, req.signal);
      step(info, 'score', 1, promptTokens(req.messages));
      const level = levelOf(req.messages);
      // Order of the candidates: Safe, Unsafe, Controversial (LEVELS).
      const probabilities = level === 'safe' ? [0.95, 0.03, 0.02] : level === 'unsafe' ? [0.05, 0.9, 0.05] : [0.2, 0.1, 0.7];
      return { probabilities, promptTokens: promptTokens(req.messages), queueMs: 0, engineMs: 1 };
    },
    load: () => [{ device: 'cpu', queued: 0, active: 0 }],
    async close() {},
  };

  async function stream(text: string, messages: ChatMessage[], onText: (delta: string, tokens: number) => void, signal?: AbortSignal): Promise<void> {
    const prompt = messages.map((m) => m.content).join('\n');
    const chars = Array.from(text);
    const third = Math.max(1, Math.ceil(chars.length / 3));
    const pieces = [0, 1, 2].map((i) => chars.slice(i * third, (i + 1) * third).join('')).filter((p) => p !== '');
    for (const [i, piece] of pieces.entries()) {
      if (signal?.aborted) {
        engine.aborted++;
        throw new EngineError('cancelled', 'cancelled');
      }
      onText(piece, i + 1);
      if (i > 0) continue;
      if (prompt.includes('[[fail_mid_stream]]')) throw new EngineError('timeout', 'deadline passed');
      if (prompt.includes('[[trickle]]')) {
        trickled();
        await Promise.race([resumed, new Promise<void>((r) => signal?.addEventListener('abort', () => r(), { once: true }))]);
      }
      await new Promise(setImmediate);
    }
  }

  function step(info: ModelInfo, kind: 'decode' | 'score', batchSize: number, tokens: number): void {
    options.onStep?.({ model: info.name, device: 'cpu', kind, batchSize, tokens, ms: 1.5 });
  }

  async function admit(model: string, messages: ChatMessage[], signal?: AbortSignal): Promise<ModelInfo> {
    const info = infos.find((m) => m.name === model);
    if (!info) throw new EngineError('model_not_found', `no model ${model}`);
    if (info.state !== 'ready') throw new EngineError('not_ready', info.state === 'failed' ? `model ${model} failed to load` : `model ${model} is still loading`);
    const text = messages.map((m) => m.content).join('\n');
    if (text.includes('[[queue_full]]')) throw new EngineError('queue_full', 'the queue is full');
    if (text.includes('[[timeout]]')) throw new EngineError('timeout', 'deadline passed');
    if (text.includes('[[engine_failed]]')) throw new EngineError('engine_failed', 'worker died at /secret/path');
    if (text.includes('[[crash]]')) throw new TypeError('cannot read properties of undefined (at /secret/path)');
    const limit = options.maxInputTokens ?? 100_000;
    const tokens = promptTokens(messages);
    if (text.includes('[[too_long]]') || tokens > limit) {
      throw new EngineError('input_too_long', `the prompt has ${tokens} tokens; the limit is ${limit}`, { limit, actual: tokens });
    }
    if (text.includes('[[hang]]')) {
      hung();
      await new Promise<void>((resolve) => {
        if (signal?.aborted) resolve();
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
      engine.aborted++;
      throw new EngineError('cancelled', 'cancelled');
    }
    if (signal?.aborted) throw new EngineError('cancelled', 'cancelled');
    if (text.includes('[[held]]')) {
      arrived();
      await released;
    }
    await new Promise(setImmediate);
    return info;
  }

  return engine;
}

function promptTokens(messages: ChatMessage[]): number {
  return messages.reduce((n, m) => n + m.content.length, 0);
}

function levelOf(messages: ChatMessage[]): 'safe' | 'unsafe' | 'controversial' {
  const text = messages.map((m) => m.content).join('\n').toLowerCase();
  return text.includes('bomb') ? 'unsafe' : text.includes('controversial') ? 'controversial' : 'safe';
}

/** The answer continued after `prefix` (or whole, without one). */
function guardAnswer(messages: ChatMessage[], prefix?: string): string {
  if (messages.some((m) => m.content.includes('[[garbage]]'))) return prefix ? ' Dunno, maybe' : 'I think it is fine.';
  const level = levelOf(messages);
  const label = { safe: 'Safe', unsafe: 'Unsafe', controversial: 'Controversial' }[level];
  const categories = { safe: 'None', unsafe: 'Violent', controversial: 'Politically Sensitive Topics' }[level];
  const refusal = messages.length === 2 ? `\nRefusal: ${/sorry|cannot|can't/i.test(messages[1]!.content) ? 'Yes' : 'No'}` : '';
  const full = `Safety: ${label}\nCategories: ${categories}${refusal}`;
  if (!prefix) return full;
  return full.startsWith(prefix) ? full.slice(prefix.length) : ` ${categories}${refusal}`;
}

function translation(messages: ChatMessage[]): string {
  const prompt = messages[0]!.content;
  const text = prompt.slice(prompt.lastIndexOf('\n') + 1);
  return TRANSLATIONS[text] ?? `[${text}]`;
}
