import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { guardMessages } from '../../tasks/moderate.js';
import { toOpenAI } from '../../tasks/openai-moderation.js';
import { ApiError } from '../errors.js';
import { moderateAll } from './moderate.js';
import { boolString, elapsedMs, gatedConfig, modelFor, requireJson, type RouteContext } from './shared.js';

interface OpenAIBody {
  input: string | string[];
  model?: string;
}

/**
 * POST {base}/v1/moderations, shaped like OpenAI's moderation endpoint: `input` is a string or an array of
 * strings; `?strict=true` flags controversial texts too.
 */
export function openaiRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const schema = {
    body: {
      type: 'object',
      required: ['input'],
      additionalProperties: false,
      properties: {
        input: { type: ['string', 'array'], items: { type: 'string' }, minItems: 1, maxItems: ctx.config.maxBatchItems },
        model: { type: 'string', minLength: 1, maxLength: 200 },
      },
    },
    querystring: { type: 'object', additionalProperties: false, properties: { strict: boolString } },
  };
  app.post<{ Body: OpenAIBody; Querystring: { strict?: 'true' | 'false' } }>(ctx.path('/v1/moderations'), {
    schema,
    config: gatedConfig(ctx, 'moderate'),
    preValidation: requireJson,
  }, async (request, reply) => {
    const start = performance.now();
    const texts = Array.isArray(request.body.input) ? request.body.input : [request.body.input];
    const inputs = texts.map((text, i) => {
      try {
        return guardMessages({ text });
      } catch (err) {
        const field = Array.isArray(request.body.input) ? `input.${i}` : 'input';
        throw new ApiError('invalid_request', `${field}: ${(err as Error).message.replace(/^text/, 'input')}`, { field });
      }
    });
    const model = modelFor(ctx, 'moderate', request);
    const results = await moderateAll(ctx, request, reply, model.name, inputs, { categories: 'auto', fastPath: true });
    const strict = request.query.strict === 'true';
    reply.header('openai-processing-ms', String(Math.round(elapsedMs(start))));
    return { id: `modr-${randomBytes(12).toString('hex')}`, model: model.name, results: results.map((m) => toOpenAI(m, strict)) };
  });
}
