import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { StateHealth } from '../gate/state.js';
import type { Engine, LoadState, StepEvent } from '../infer/types.js';

/**
 * The daemon's Prometheus metrics, in a Registry of their own (never prom-client's global one, so that two
 * servers in one process, as in the tests, do not share counts). Create them before the engine and hand
 * `onStep` to EngineOptions.onStep; buildServer attaches the engine for the gauges read at scrape time.
 */
export interface ServerMetrics {
  readonly registry: Registry;
  /** EngineOptions.onStep: one call per executed batch step. */
  readonly onStep: (event: StepEvent) => void;
  /** One finished HTTP exchange. `reason` is '' for a success, else the error or gate code. */
  observeRequest(route: string, status: number, reason: string, seconds: number): void;
  /** Time one task call (moderation, translation) spent in the engine, as the route saw it. */
  observeInference(task: string, model: string, seconds: number): void;
  /** The engine whose queues and model states the gauges report. */
  attach(engine: Engine): void;
  /** The gate state whose health guard_state_up and guard_state_errors_total report (a shared one: Redis). */
  attachState(health: () => StateHealth): void;
  /** The exposition text and its content type. */
  expose(): Promise<{ contentType: string; body: string }>;
}

export const METRIC_NAMES = [
  'guard_http_requests_total', 'guard_http_request_duration_seconds', 'guard_request_errors_total',
  'guard_inference_duration_seconds', 'guard_engine_queue_length', 'guard_engine_active_requests',
  'guard_engine_batch_size', 'guard_engine_tokens_total', 'guard_engine_step_duration_seconds',
  'guard_model_state', 'guard_model_execution_provider', 'guard_prefix_tokens_reused_total',
] as const;

const LOAD_STATES: LoadState[] = ['loading', 'warming', 'ready', 'failed'];
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface MetricsOptions {
  /** Also collect prom-client's process metrics (CPU, memory, event loop lag) with the guard_ prefix. */
  processMetrics?: boolean;
}

export function createServerMetrics(options: MetricsOptions = {}): ServerMetrics {
  const registry = new Registry();
  const registers = [registry];
  let engine: Engine | undefined;
  let stateHealth: (() => StateHealth) | undefined;

  const requests = new Counter({ name: 'guard_http_requests_total', help: 'HTTP requests by route, status and reason (gate or error code; empty for success)', labelNames: ['route', 'status', 'reason'], registers });
  const latency = new Histogram({ name: 'guard_http_request_duration_seconds', help: 'HTTP request latency by route', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers });
  const errors = new Counter({ name: 'guard_request_errors_total', help: 'Failed requests by error code', labelNames: ['code'], registers });
  const inference = new Histogram({ name: 'guard_inference_duration_seconds', help: 'Time a task call spent in the engine (queue + compute), by task and model', labelNames: ['task', 'model'], buckets: LATENCY_BUCKETS, registers });
  new Gauge({
    name: 'guard_engine_queue_length', help: 'Requests waiting for admission, per device', labelNames: ['device'], registers,
    collect() {
      this.reset();
      for (const l of safeLoad(engine)) this.set({ device: l.device }, l.queued);
    },
  });
  new Gauge({
    name: 'guard_engine_active_requests', help: 'Requests being decoded, per device', labelNames: ['device'], registers,
    collect() {
      this.reset();
      for (const l of safeLoad(engine)) this.set({ device: l.device }, l.active);
    },
  });
  const batch = new Histogram({ name: 'guard_engine_batch_size', help: 'Sequences per executed batch step', labelNames: ['model', 'kind'], buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers });
  const tokens = new Counter({ name: 'guard_engine_tokens_total', help: 'Tokens processed (prefill, decode, score); tokens/s is rate() of this', labelNames: ['model', 'kind'], registers });
  const reused = new Counter({ name: 'guard_prefix_tokens_reused_total', help: 'Prompt tokens taken from the prefix cache (a shared head\'s KV) instead of being prefilled', labelNames: ['model'], registers });
  const steps = new Histogram({ name: 'guard_engine_step_duration_seconds', help: 'Duration of one batch step', labelNames: ['model', 'kind'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers });
  new Gauge({
    name: 'guard_model_state', help: 'Load state per model: 1 for the current state, 0 for the others', labelNames: ['model', 'state'], registers,
    collect() {
      this.reset();
      for (const m of engine?.models() ?? []) for (const s of LOAD_STATES) this.set({ model: m.name, state: s }, m.state === s ? 1 : 0);
    },
  });
  new Gauge({
    name: 'guard_model_execution_provider', help: 'The execution provider each model runs on (1), "none" until it has one', labelNames: ['model', 'provider', 'dtype'], registers,
    collect() {
      this.reset();
      for (const m of engine?.models() ?? []) this.set({ model: m.name, provider: m.device ?? 'none', dtype: m.dtype }, 1);
    },
  });
  new Gauge({
    name: 'guard_engine_kv_cache_bytes', help: 'KV cache held by each model\'s running batch (GPU memory on webgpu)', labelNames: ['model', 'device'], registers,
    collect() {
      this.reset();
      for (const m of engine?.models() ?? []) if (m.device) this.set({ model: m.name, device: m.device }, m.kvCacheBytes ?? 0);
    },
  });
  new Gauge({
    name: 'guard_state_up', help: 'Whether the shared gate state (Redis) answers: 1 up, 0 down (model routes answer 503 state_unavailable)', labelNames: ['backend'], registers,
    collect() {
      this.reset();
      const h = stateHealth?.();
      if (h) this.set({ backend: h.backend }, h.up ? 1 : 0);
    },
  });
  new Counter({
    name: 'guard_state_errors_total', help: 'Gate state operations that failed (unreachable or timed out), by backend', labelNames: ['backend'], registers,
    collect() {
      this.reset();
      const h = stateHealth?.();
      if (h) this.inc({ backend: h.backend }, h.errors);
    },
  });
  if (options.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'guard_' });

  return {
    registry,
    onStep(event: StepEvent) {
      const labels = { model: event.model, kind: event.kind };
      batch.observe(labels, event.batchSize);
      if (event.tokens > 0) tokens.inc(labels, event.tokens);
      if (event.reusedTokens) reused.inc({ model: event.model }, event.reusedTokens);
      steps.observe(labels, event.ms / 1000);
    },
    observeRequest(route, status, reason, seconds) {
      requests.inc({ route, status: String(status), reason });
      latency.observe({ route }, seconds);
      if (status >= 400) errors.inc({ code: reason || `http_${status}` });
    },
    observeInference(task, model, seconds) {
      inference.observe({ task, model }, seconds);
    },
    attach(e) {
      engine = e;
    },
    attachState(health) {
      stateHealth = health;
    },
    async expose() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

/** Turns engine step events into metric updates: `createEngine(specs, { ..., onStep: stepRecorder(metrics) })`. */
export function stepRecorder(metrics: ServerMetrics): (event: StepEvent) => void {
  return metrics.onStep;
}

function safeLoad(engine: Engine | undefined): ReturnType<Engine['load']> {
  try {
    return engine?.load() ?? [];
  } catch {
    return [];
  }
}
