import { createEngine } from '../../src/infer/engine.js';
import type { Engine, EngineOptions, ModelSpec } from '../../src/infer/types.js';

/** The embedded demo models, as the server's route tests serve them (on the CPU: the device choice has its own tests). */
export const DEMO_SPECS: ModelSpec[] = [
  { name: 'guard-demo', task: 'moderate', dir: 'models/guard-demo', size: 'small', device: 'cpu' },
  { name: 'mt-demo', task: 'translate', dir: 'models/mt-demo', size: 'small', translateTemplate: 'by-target', device: 'cpu' },
];

/** The real engine on the demo models, started (every model warm) unless `start` is false. The caller closes it. */
export async function demoEngine(
  onStep?: EngineOptions['onStep'], specs: ModelSpec[] = DEMO_SPECS, overrides: Partial<EngineOptions> = {}, start = true,
): Promise<Engine> {
  const engine = createEngine(specs, { maxBatch: 8, maxWaitMs: 2, maxQueue: 256, maxInputTokens: 256, onStep, ...overrides });
  if (!start) return engine;
  await engine.start();
  const failed = engine.models().filter((m) => m.state !== 'ready');
  if (failed.length) {
    await engine.close();
    throw new Error(`demo models did not load: ${failed.map((m) => `${m.name} ${m.state} ${m.error ?? ''}`).join('; ')}`);
  }
  return engine;
}
