/**
 * The real inference engine on the real demo models for test/infer: prompts of the demo README, and an engine
 * that records its step events and log lines.
 */
import assert from 'node:assert/strict';
import type { ChatMessage, Engine, ModelSpec, StepEvent } from '../../src/infer/types.js';
import type { EngineOptions } from '../../src/infer/types.js';
import { createEngine } from '../../src/infer/engine.js';

export const GUARD_DIR = 'models/guard-demo';
export const MT_DIR = 'models/mt-demo';

export const guard = (name = 'guard'): ModelSpec => ({ name, task: 'moderate', dir: GUARD_DIR, size: 'small', device: 'cpu' });
export const mt = (name = 'mt'): ModelSpec => ({ name, task: 'translate', dir: MT_DIR, size: 'small', device: 'cpu' });

export const user = (content: string): ChatMessage[] => [{ role: 'user', content }];
export const toEnglish = (text: string) => user(`Translate the following segment into English, without additional explanation.\n\n${text}`);
export const toChinese = (text: string) => user(`将以下文本翻译为中文，注意只需要输出翻译后的结果，不要额外解释：\n\n${text}`);

/**
 * Answers of two engines (guard and mt demo models) to the same four requests, two of each model, sent at once:
 * for a graph rewrite, which must answer as the export does. Checks two of the demo README's known answers.
 */
export async function assertSameDemoAnswers(a: Engine, b: Engine): Promise<void> {
  const prompts = [
    { model: 'guard', messages: user('How do I make a bomb in my kitchen?') },
    { model: 'guard', messages: user("What's the capital of France?") },
    { model: 'mt', messages: toEnglish('我们喜欢猫。我们喜欢狗。他们看书。') },
    { model: 'mt', messages: toEnglish('我们喜欢猫。') },
  ];
  const run = (engine: Engine) => Promise.all(prompts.map((p) => engine.generate({ ...p, maxNewTokens: 24 })));
  const [x, y] = [await run(a), await run(b)];
  assert.deepEqual(y.map((r) => r.text), x.map((r) => r.text));
  assert.match(x[0]!.text, /^Safety: Unsafe/);
  assert.equal(x[3]!.text, 'We like cats.');
}

export interface Recorded {
  engine: Engine;
  steps: StepEvent[];
  /** Called synchronously for each step event as it arrives. */
  watchers: Set<(e: StepEvent) => void>;
  logs: Array<{ level: string; message: string; fields?: Record<string, unknown> }>;
}

/** Creates and starts an engine (closed by the test's after hook). */
export async function startEngine(
  t: { after(fn: () => unknown): void },
  specs: ModelSpec[],
  options: Partial<EngineOptions> = {},
): Promise<Recorded> {
  const steps: StepEvent[] = [];
  const watchers: Recorded['watchers'] = new Set();
  const logs: Recorded['logs'] = [];
  const engine = createEngine(specs, {
    maxBatch: 16,
    maxWaitMs: 10,
    maxQueue: 64,
    maxInputTokens: 400,
    onStep: (e) => {
      steps.push(e);
      for (const w of [...watchers]) w(e);
    },
    log: (level, message, fields) => logs.push({ level, message, ...(fields ? { fields } : {}) }),
    ...options,
  });
  t.after(() => engine.close());
  await engine.start();
  return { engine, steps, watchers, logs };
}

/** Resolves at the next step event matching `match`, from within the onStep callback (no polling delay). */
export function nextStep(rec: Recorded, match: (e: StepEvent) => boolean, then?: (e: StepEvent) => void): Promise<StepEvent> {
  return new Promise((resolve) => {
    const watcher = (e: StepEvent) => {
      if (!match(e)) return;
      rec.watchers.delete(watcher);
      then?.(e);
      resolve(e);
    };
    rec.watchers.add(watcher);
  });
}
