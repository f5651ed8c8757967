import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { resolveLanguages, translate, TranslateInputError, type Translation } from '../../tasks/translate.js';
import { ApiError } from '../errors.js';
import { openSse, streamFailed } from '../sse.js';
import { SAMPLING_FIELDS, samplingFromBody, type SamplingBody } from '../sampling-params.js';
import { answerTokens, boolString, clientSignal, elapsedMs, gatedConfig, modelFor, requireJson, type RouteContext } from './shared.js';

interface TranslateBody extends SamplingBody {
  text: string;
  model?: string;
  terms?: Record<string, string>;
  context?: string;
  preserve_format?: boolean;
  style?: string;
  preferences?: string[];
  keep_delimiters?: boolean;
  data_format?: string;
  background?: string;
  source_lang?: string;
  target_lang?: string;
}

interface TranslateQuery {
  source_lang?: string;
  target_lang?: string;
  preserve_format?: 'true' | 'false';
  stream?: 'true' | 'false';
}

const lang = { type: 'string', minLength: 1, maxLength: 16 } as const;

/**
 * POST {base}/api/v1/translate?source_lang=zh&target_lang=en with {text, model?, terms?, context?, preserve_format?,
 * style?, preferences?, keep_delimiters?, data_format?, background?}; `stream=true` answers with server-sent events.
 */
export function translateRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const schema = {
    body: {
      type: 'object',
      required: ['text'],
      additionalProperties: false,
      properties: {
        text: { type: 'string' },
        model: { type: 'string', minLength: 1, maxLength: 200 },
        terms: { type: 'object', maxProperties: 100, additionalProperties: { type: 'string' } },
        context: { type: 'string' },
        preserve_format: { type: 'boolean' },
        // Hy-MT2's prompt families (src/tasks/hy-mt2-prompts.ts); their content is checked by the task.
        style: { type: 'string' },
        preferences: { type: 'array', maxItems: 64, items: { type: 'string' } },
        keep_delimiters: { type: 'boolean' },
        data_format: { type: 'string' },
        background: { type: 'string' },
        // Also accepted in the body, for clients that send every parameter there (never in both places).
        source_lang: lang,
        target_lang: lang,
        ...SAMPLING_FIELDS,
      },
    },
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { source_lang: lang, target_lang: lang, preserve_format: boolString, stream: boolString },
    },
  };
  app.post<{ Body: TranslateBody; Querystring: TranslateQuery }>(ctx.path('/api/v1/translate'), {
    schema,
    config: gatedConfig(ctx, 'translate'),
    preValidation: requireJson,
  }, async (request, reply) => {
    const start = performance.now();
    const { body, query } = request;
    const source = param('source_lang', query.source_lang, body.source_lang);
    const target = param('target_lang', query.target_lang, body.target_lang);
    const preserveFormat = body.preserve_format ?? (query.preserve_format === undefined ? false : query.preserve_format === 'true');
    let languages: ReturnType<typeof resolveLanguages>;
    try {
      languages = resolveLanguages(source, target);
    } catch (err) {
      if (!(err instanceof TranslateInputError)) throw err;
      if (!err.message.startsWith('unknown')) throw new ApiError('invalid_request', err.message, { field: err.field });
      throw new ApiError('unsupported_language', `${err.message}; see GET /api/v1/languages`, { field: err.field });
    }
    if (body.text.trim() === '') throw new ApiError('invalid_request', 'text must not be empty', { field: 'text' });
    const model = modelFor(ctx, 'translate', request);
    const cap = ctx.config.maxNewTokens;
    const { sampling, maxTokens } = samplingFromBody(body, { maxTokens: cap, vocabSize: model.vocabSize });
    const controller = clientSignal(request, reply);
    const inferStart = performance.now();
    const answer = (out: Translation) => ({
      result: out.result, model: model.name, source_lang: languages.from.code, target_lang: languages.to.code, latency_ms: elapsedMs(start),
    });
    const run = (onDelta?: (delta: string) => void) => translate(ctx.engine, {
      text: body.text, source, target, terms: body.terms, context: body.context, preserveFormat,
      style: body.style, preferences: body.preferences, keepDelimiters: body.keep_delimiters, dataFormat: body.data_format, background: body.background,
    }, {
      model: model.name, template: model.translateTemplate ?? 'hy-mt', maxNewTokens: answerTokens(ctx, model, maxTokens), sampling,
      signal: controller.signal, deadline: Date.now() + ctx.config.inferenceTimeoutMs, ...(onDelta ? { onDelta } : {}),
    });
    try {
      if (query.stream === 'true') return await streamed(request, reply, run, answer);
      return answer(await run());
    } finally {
      ctx.metrics.observeInference('translate', model.name, (performance.now() - inferStart) / 1000);
    }
  });
}

/**
 * The answer as server-sent events: `delta` events ({text}) as the model decodes, then `done` with the fields of
 * the plain answer. Nothing is sent before the first piece of text, so a request refused before it (bad input,
 * queue full, too long, gate) gets its usual JSON error and status; a failure after that is an `error` event
 * ({error: {code, message, request_id}}) and the stream ends.
 */
async function streamed(
  request: FastifyRequest, reply: FastifyReply, run: (onDelta: (delta: string) => void) => Promise<Translation>, answer: (out: Translation) => object,
): Promise<FastifyReply> {
  const early: string[] = [];
  let sse: ReturnType<typeof openSse> | undefined;
  let first!: () => void;
  const firstPiece = new Promise<void>((resolve) => (first = resolve));
  const job = run((delta) => {
    if (sse) sse.send({ text: delta }, 'delta');
    else {
      early.push(delta);
      first();
    }
  });
  // Rejects (a JSON error) only when the job fails before its first piece.
  await Promise.race([firstPiece, job]);
  sse = openSse(reply);
  if (early.length) sse.send({ text: early.join('') }, 'delta');
  try {
    sse.send(answer(await job), 'done');
  } catch (err) {
    const api = streamFailed(request, err);
    sse.send({ error: { code: api.code, message: api.message, request_id: request.id } }, 'error');
  } finally {
    sse.end();
  }
  return reply;
}

function param(name: string, fromQuery: string | undefined, fromBody: string | undefined): string {
  if (fromQuery !== undefined && fromBody !== undefined) {
    throw new ApiError('duplicate_param', `${name} appears in both the query and the body`, { field: name });
  }
  const value = fromQuery ?? fromBody;
  if (value === undefined) throw new ApiError('invalid_request', `${name} is required (as a query parameter)`, { field: name });
  return value;
}
