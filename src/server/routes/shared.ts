import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ModelRef } from '../../keys/types.js';
import type { Engine, ModelInfo, Task } from '../../infer/types.js';
import type { ServeConfig } from '../config.js';
import { ApiError } from '../errors.js';
import type { ServerMetrics } from '../metrics.js';
import type { StateHealth } from '../../gate/state.js';
// Brings in the FastifyContextConfig `gate` declaration and the request fields the gate adds.
import type {} from '../../gate/fastify.js';

/** What every route module gets. */
export interface RouteContext {
  config: ServeConfig;
  engine: Engine;
  metrics: ServerMetrics;
  /** A shared gate state's health, when there is one (see BuildServerOptions). */
  stateHealth?: () => StateHealth;
  /** The full path of a route under the base path: path('/healthz') -> '/guard/healthz'. */
  path(route: string): string;
}

const TASK_NAMES: Record<Task, string> = { moderate: 'moderation', translate: 'translation' };

/** The model a request will use: the one it names, or the first ready model of the task. Memoized per request. */
const chosen = new WeakMap<FastifyRequest, ModelInfo | ApiError>();

/** The models a route serves: one task's, or 'any' for a route that serves every model and must be told which. */
export type ModelScope = Task | 'any';

export function chooseModel(engine: Engine, task: ModelScope, request: FastifyRequest): ModelInfo | ApiError {
  let choice = chosen.get(request);
  if (choice === undefined) {
    const name = (request.body as { model?: unknown } | undefined)?.model;
    choice = resolveModel(engine.models(), task, typeof name === 'string' ? name : undefined);
    chosen.set(request, choice);
  }
  return choice;
}

export function resolveModel(models: ModelInfo[], task: ModelScope, name: string | undefined): ModelInfo | ApiError {
  // The OpenAI-style route lists its models at /v1/models, the task routes at /api/v1/models.
  const list = task === 'any' ? 'GET /v1/models' : 'GET /api/v1/models';
  if (task === 'any') {
    if (name === undefined) return new ApiError('model_not_found', `name a model; see ${list}`, { field: 'model' });
  } else if (name === undefined) {
    const ofTask = models.filter((m) => m.task === task);
    const ready = ofTask.find((m) => m.state === 'ready');
    if (ready) return ready;
    if (ofTask.length === 0) return new ApiError('model_not_found', `this server has no ${TASK_NAMES[task]} model`);
    return new ApiError('not_ready', `no ${TASK_NAMES[task]} model is ready yet`, {}, { 'Retry-After': '5' });
  }
  const model = models.find((m) => m.name === name);
  if (!model) return new ApiError('model_not_found', `no model is named "${clip(name)}"; see ${list}`, { field: 'model' });
  if (task !== 'any' && model.task !== task) {
    return new ApiError('wrong_task', `model "${model.name}" is a ${TASK_NAMES[model.task]} model; this route needs a ${TASK_NAMES[task]} model`, { field: 'model' });
  }
  if (model.state === 'failed') return new ApiError('not_ready', `model "${model.name}" failed to load`);
  if (model.state !== 'ready') return new ApiError('not_ready', `model "${model.name}" is still ${model.state}`, {}, { 'Retry-After': '5' });
  return model;
}

/** The route config for a model route: behind the gate (when auth is on) with the model the request will use. */
export function gatedConfig(ctx: RouteContext, task: ModelScope | null): { gate?: { model?: (request: FastifyRequest) => ModelRef | undefined } } {
  if (ctx.config.insecureNoAuth) return {};
  if (task === null) return { gate: {} };
  return {
    gate: {
      model: (request: FastifyRequest): ModelRef | undefined => {
        // An unknown or unready model passes the tier check here and is answered 404/422/503 by the handler.
        const m = chooseModel(ctx.engine, task, request);
        return m instanceof ApiError ? undefined : { name: m.name, size: m.size };
      },
    },
  };
}

/**
 * How many tokens an answer may have: what the request asked for (already checked against the cap), else the
 * model's own default (generation_config.json's max_new_tokens) within the server's cap.
 */
export function answerTokens(ctx: RouteContext, model: ModelInfo, requested: number | undefined): number {
  const cap = ctx.config.maxNewTokens;
  return requested ?? Math.min(cap, model.defaultMaxNewTokens ?? cap);
}

/** The model for the handler, or the reason there is none. */
export function modelFor(ctx: RouteContext, task: ModelScope, request: FastifyRequest): ModelInfo {
  const m = chooseModel(ctx.engine, task, request);
  if (m instanceof ApiError) throw m;
  return m;
}

/**
 * Aborted when the client goes away before the answer is sent, so the engine stops decoding for nobody. The
 * response's 'close' fires once per exchange (also for keep-alive sockets), after a finished answer or on a broken
 * connection; only the latter aborts.
 */
export function clientSignal(request: FastifyRequest, reply: FastifyReply): AbortController {
  const controller = new AbortController();
  const res = reply.raw;
  const onClose = () => {
    // Ended by us (a streamed answer's last bytes may still be in flight when 'close' comes): nothing to cancel.
    if (res.writableEnded) return;
    request.failureCode = 'cancelled';
    controller.abort(new Error('the client closed the connection'));
  };
  if (res.destroyed || request.raw.socket?.destroyed) onClose();
  else res.once('close', onClose);
  return controller;
}

/** POST routes take JSON only (other content types reach here unparsed, as bytes or text). */
export async function requireJson(request: FastifyRequest): Promise<void> {
  const type = request.headers['content-type'] ?? '';
  if (request.body !== undefined && !/^application\/json\s*(;|$)/i.test(type)) throw new ApiError('unsupported_media_type');
}

export function elapsedMs(start: number): number {
  return Math.round((performance.now() - start) * 10) / 10;
}

function clip(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}...` : text;
}

/** The query strings of the task routes take only these, as strings (the signature signs them as sent). */
export const boolString = { type: 'string', enum: ['true', 'false'] } as const;
