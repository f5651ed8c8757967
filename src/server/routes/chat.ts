import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { openaiErrorFields } from '../../core/openai-error.js';
import { modelAllowed } from '../../keys/tiers.js';
import { EngineError } from '../../infer/types.js';
import { ChatInputError, chatMessages, StopMatcher, stopSequences } from '../../tasks/chat.js';
import { ApiError } from '../errors.js';
import { SAMPLING_FIELDS, samplingFromBody } from '../sampling-params.js';
import { openSse, streamFailed, type SseWriter } from '../sse.js';
import { answerTokens, clientSignal, gatedConfig, modelFor, requireJson, type RouteContext } from './shared.js';

interface ChatBody {
  model?: unknown;
  messages?: unknown;
  stream?: unknown;
  stream_options?: { include_usage?: unknown } | null;
  n?: unknown;
  stop?: unknown;
  max_tokens?: unknown;
  max_completion_tokens?: unknown;
  frequency_penalty?: unknown;
  presence_penalty?: unknown;
  logprobs?: unknown;
  [sampling: string]: unknown;
}

/**
 * OpenAI's model list and chat completions, as vLLM serves them: GET {base}/v1/models, and POST
 * {base}/v1/chat/completions for any served model (its own chat template, the request's sampling parameters,
 * `stream: true` as server-sent `chat.completion.chunk` events ending with `data: [DONE]`).
 */
export function chatRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const created = Math.floor(Date.now() / 1000);

  app.get(ctx.path('/v1/models'), { config: gatedConfig(ctx, null) }, async (request) => {
    const limits = request.gatePass?.limits;
    // With a key: the models its tier may use, as OpenAI lists the models a key can reach.
    const models = ctx.engine.models().filter((m) => !limits || modelAllowed(limits.models, { name: m.name, size: m.size }));
    return {
      object: 'list',
      data: models.map((m) => ({ id: m.name, object: 'model', created, owned_by: 'guardctl', max_model_len: m.maxContext, task: m.task, state: m.state })),
    };
  });

  const schema = {
    body: {
      type: 'object',
      required: ['model', 'messages'],
      additionalProperties: false,
      properties: {
        model: { type: 'string', minLength: 1, maxLength: 200 },
        // Checked by chatMessages(), whose refusals name the message and the field.
        messages: {},
        stream: { type: ['boolean', 'null'] },
        stream_options: { type: ['object', 'null'], additionalProperties: false, properties: { include_usage: { type: ['boolean', 'null'] } } },
        n: {},
        stop: {},
        max_completion_tokens: {},
        frequency_penalty: {},
        presence_penalty: {},
        logprobs: {},
        user: { type: 'string' },
        ...SAMPLING_FIELDS,
      },
    },
  };

  app.post<{ Body: ChatBody }>(ctx.path('/v1/chat/completions'), { schema, config: gatedConfig(ctx, 'any'), preValidation: requireJson }, async (request, reply) => {
    const body = request.body;
    let messages: ReturnType<typeof chatMessages>;
    let stops: string[];
    try {
      messages = chatMessages(body.messages);
      stops = stopSequences(body.stop);
    } catch (err) {
      if (err instanceof ChatInputError) throw new ApiError('invalid_request', err.message, { field: err.field });
      throw err;
    }
    refuseUnsupported(body);
    const model = modelFor(ctx, 'any', request);
    const cap = ctx.config.maxNewTokens;
    const maxTokens = answerLength(body);
    const { sampling, maxTokens: requested } = samplingFromBody({ ...body, max_tokens: maxTokens.value }, { maxTokens: cap, vocabSize: model.vocabSize }, maxTokens.field);
    const stream = body.stream === true;
    const includeUsage = stream && body.stream_options?.include_usage === true;
    if (body.stream_options != null && !stream) throw new ApiError('invalid_request', 'stream_options is only allowed with stream: true', { field: 'stream_options' });

    const client = clientSignal(request, reply);
    const stopped = new AbortController();
    const matcher = new StopMatcher(stops);
    const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
    const head = { id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: model.name };
    // Opened at the answer's first piece: errors before it stay JSON errors with their status.
    let sse: SseWriter | undefined;
    const startStream = () => {
      sse = openSse(reply);
      sse.send(chunk({ role: 'assistant', content: '' }, null));
      return sse;
    };
    let text = '';
    let tokens = 0;
    const chunk = (delta: Record<string, unknown>, finish: string | null) =>
      ({ ...head, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...(includeUsage ? { usage: null } : {}) });
    const onText = (delta: string, sofar: number) => {
      tokens = sofar;
      const out = matcher.push(delta);
      if (matcher.stopped) stopped.abort(new Error('a stop sequence was generated'));
      if (out === '') return;
      text += out;
      if (stream) (sse ?? startStream()).send(chunk({ content: out }, null));
    };

    let finish: 'stop' | 'length';
    let promptTokens = 0;
    try {
      const result = await ctx.engine.generate({
        model: model.name, messages, maxNewTokens: answerTokens(ctx, model, requested),
        // Always sampled with the model's generation_config.json under the request's overrides, as vLLM does.
        sampling,
        signal: AbortSignal.any([client.signal, stopped.signal]),
        deadline: Date.now() + ctx.config.inferenceTimeoutMs,
        ...(stops.length > 0 || stream ? { onText } : {}),
      });
      promptTokens = result.promptTokens;
      tokens = result.outputTokens;
      if (stops.length === 0 && !stream) text = result.text;
      else onText(matcher.flush(), tokens);
      finish = result.finish === 'length' && !matcher.stopped ? 'length' : 'stop';
    } catch (err) {
      if (!(stopped.signal.aborted && !client.signal.aborted && err instanceof EngineError && err.code === 'cancelled')) {
        if (!sse) throw err;
        // The stream has begun: the error can only be an event now (when the client is still there to read it).
        const api = streamFailed(request, err, client.signal.aborted);
        sse.send({ error: { message: api.message, ...openaiErrorFields(api.status, api.extra.field), code: api.code } });
        sse.end();
        return reply;
      }
      // Stopped by a stop sequence: the engine's cancellation says how long the prompt was.
      finish = 'stop';
      promptTokens = typeof err.details.promptTokens === 'number' ? err.details.promptTokens : 0;
    }
    const usage = { prompt_tokens: promptTokens, completion_tokens: tokens, total_tokens: promptTokens + tokens };
    if (!stream) {
      return {
        id, object: 'chat.completion', created: head.created, model: model.name,
        choices: [{ index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: finish }],
        usage,
      };
    }
    const events = sse ?? startStream();
    events.send(chunk({}, finish));
    if (includeUsage) events.send({ ...head, choices: [], usage });
    events.send('[DONE]');
    events.end();
    return reply;
  });
}

/** max_tokens (deprecated by OpenAI) and max_completion_tokens mean the same; both set must agree. */
function answerLength(body: ChatBody): { value: unknown; field: string } {
  const a = body.max_tokens ?? undefined;
  const b = body.max_completion_tokens ?? undefined;
  if (a !== undefined && b !== undefined && a !== b) {
    throw new ApiError('invalid_request', 'max_tokens and max_completion_tokens differ; send one of them', { field: 'max_completion_tokens' });
  }
  return b !== undefined ? { value: b, field: 'max_completion_tokens' } : { value: a, field: 'max_tokens' };
}

/** Parameters OpenAI defines that this server cannot honour: refused by name rather than ignored. */
function refuseUnsupported(body: ChatBody): void {
  if (body.n !== undefined && body.n !== null && body.n !== 1) {
    throw new ApiError('invalid_request', 'n must be 1: this server generates one choice per request (send several requests for more)', { field: 'n' });
  }
  for (const field of ['frequency_penalty', 'presence_penalty'] as const) {
    const v = body[field];
    if (v !== undefined && v !== null && v !== 0) {
      throw new ApiError('invalid_request', `${field} is not supported by this server (only 0); use repetition_penalty instead`, { field });
    }
  }
  if (body.logprobs !== undefined && body.logprobs !== null && body.logprobs !== false) {
    throw new ApiError('invalid_request', 'logprobs is not supported by this server', { field: 'logprobs' });
  }
}

