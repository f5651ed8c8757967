import { setMaxListeners } from 'node:events';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ChatMessage } from '../../infer/types.js';
import { guardMessages, moderate, type Moderation } from '../../tasks/moderate.js';
import { ApiError } from '../errors.js';
import { MODERATION_MAX_NEW_TOKENS } from '../config.js';
import { boolString, clientSignal, elapsedMs, gatedConfig, modelFor, requireJson, type RouteContext } from './shared.js';

interface ModerateBody {
  text?: string | string[];
  messages?: ChatMessage[];
  model?: string;
}

interface ModerateQuery {
  categories?: 'auto' | 'always';
  fast_path?: 'true' | 'false';
}

const messageSchema = {
  type: 'object',
  required: ['role', 'content'],
  additionalProperties: false,
  properties: { role: { type: 'string', enum: ['user', 'assistant'] }, content: { type: 'string' } },
} as const;

/** POST {base}/api/v1/moderate: one text, a batch of texts, or a prompt (+ response) as messages. */
export function moderateRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const schema = {
    body: {
      type: 'object',
      additionalProperties: false,
      properties: {
        text: { type: ['string', 'array'], items: { type: 'string' }, minItems: 1, maxItems: ctx.config.maxBatchItems },
        messages: { type: 'array', items: messageSchema, minItems: 1, maxItems: 2 },
        model: { type: 'string', minLength: 1, maxLength: 200 },
      },
    },
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { categories: { type: 'string', enum: ['auto', 'always'] }, fast_path: boolString },
    },
  };
  app.post<{ Body: ModerateBody; Querystring: ModerateQuery }>(ctx.path('/api/v1/moderate'), {
    schema,
    config: gatedConfig(ctx, 'moderate'),
    preValidation: requireJson,
  }, async (request, reply) => {
    const start = performance.now();
    const body = request.body;
    if (body.text !== undefined && body.messages !== undefined) throw new ApiError('invalid_request', 'send either text or messages, not both', { field: 'messages' });
    if (body.text === undefined && body.messages === undefined) throw new ApiError('invalid_request', 'text is required (or messages)', { field: 'text' });
    const inputs = Array.isArray(body.text)
      ? body.text.map((text, i) => chatFor({ text }, `text.${i}`))
      : [chatFor({ text: body.text, messages: body.messages }, body.messages ? 'messages' : 'text')];
    const model = modelFor(ctx, 'moderate', request);
    const results = await moderateAll(ctx, request, reply, model.name, inputs, {
      categories: request.query.categories ?? 'auto',
      fastPath: request.query.fast_path !== 'false',
    });
    const latency_ms = elapsedMs(start);
    if (Array.isArray(body.text)) return { results: results.map(verdict), model: model.name, latency_ms };
    return { ...verdict(results[0]!), model: model.name, latency_ms };
  });
}

function chatFor(input: { text?: string; messages?: ChatMessage[] }, field: string): ChatMessage[] {
  try {
    return guardMessages(input);
  } catch (err) {
    throw new ApiError('invalid_request', `${field}: ${(err as Error).message}`, { field });
  }
}

/**
 * Runs the moderations together (the engine batches them); the first failure cancels the others. Shared with the
 * OpenAI route.
 */
export async function moderateAll(
  ctx: RouteContext, request: FastifyRequest, reply: FastifyReply, model: string, inputs: ChatMessage[][],
  opts: { categories: 'auto' | 'always'; fastPath: boolean },
): Promise<Moderation[]> {
  const controller = clientSignal(request, reply);
  // Every text in flight listens on this one signal (the engine's abort listener): more than Node's default 10 is
  // expected here, not a leak warning on stderr for every batch request.
  setMaxListeners(10 + inputs.length, controller.signal);
  const deadline = Date.now() + ctx.config.inferenceTimeoutMs;
  const start = performance.now();
  try {
    return await Promise.all(inputs.map((messages) => moderate(ctx.engine, messages, {
      model, categories: opts.categories, fastPath: opts.fastPath, maxNewTokens: Math.min(MODERATION_MAX_NEW_TOKENS, ctx.config.maxNewTokens),
      signal: controller.signal, deadline,
    })));
  } catch (err) {
    controller.abort(new Error('another text of the batch failed'));
    throw err;
  } finally {
    ctx.metrics.observeInference('moderate', model, (performance.now() - start) / 1000);
  }
}

export function verdict(m: Moderation): Record<string, unknown> {
  const out: Record<string, unknown> = { level: m.level, categories: m.categories };
  if (m.refusal !== undefined) out.refusal = m.refusal;
  if (m.score !== undefined) out.score = m.score;
  return out;
}
