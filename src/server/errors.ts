import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isOpenaiRoute, openaiErrorFields } from '../core/openai-error.js';
import { REASONS } from '../gate/reasons.js';
import { StateUnavailableError } from '../gate/state.js';
import { ENGINE_ERROR_STATUS, EngineError } from '../infer/types.js';
import { GuardOutputError } from '../tasks/guard-output.js';
import { ModerationInputError } from '../tasks/moderate.js';
import { TranslateInputError } from '../tasks/translate.js';

/**
 * Every answer that is not a success is `{"error": {"code", "message", "request_id", ...extra}}`. Bad input is
 * 4xx naming what was wrong; a 500 says "internal error" and nothing more (the log has the details).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra members of the error object (field, limit, ...): never user text or secrets. */
    readonly extra: Record<string, string | number | boolean> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function sendError(reply: FastifyReply, request: FastifyRequest, err: ApiError): FastifyReply {
  request.failureCode = err.code;
  return reply
    .code(err.status)
    .headers(err.headers)
    .header('X-Request-Id', request.id)
    .type('application/json; charset=utf-8')
    .send({ error: { code: err.code, message: err.message, request_id: request.id, ...err.extra, ...openaiFields(request, err.status, err.extra.field) } });
}

function openaiFields(request: FastifyRequest, status: number, field: unknown): Record<string, unknown> {
  return !request.is404 && isOpenaiRoute(request.routeOptions.url) ? openaiErrorFields(status, field) : {};
}

/** What any thrown value becomes for the client. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof EngineError) return fromEngine(err);
  if (err instanceof StateUnavailableError) return new ApiError(503, 'state_unavailable', REASONS.state_unavailable.message, {}, { 'Retry-After': '1' });
  if (err instanceof GuardOutputError) {
    return new ApiError(502, 'bad_model_output', `the moderation model gave an answer that does not parse: ${err.message}`);
  }
  if (err instanceof ModerationInputError) return new ApiError(422, 'invalid_request', err.message);
  if (err instanceof TranslateInputError) return new ApiError(422, 'invalid_request', err.message, { field: err.field });
  const e = err as Partial<FastifyError> & { statusCode?: number };
  if (e && Array.isArray(e.validation)) return fromValidation(e as FastifyError);
  switch (e?.code) {
    case 'invalid_json':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError(400, 'invalid_json', 'the request body is not valid JSON');
    case 'json_too_deep':
      return new ApiError(400, 'json_too_deep', (e as Error).message);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'invalid_json', 'the request body is empty; send a JSON object');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'body_too_large', 'the request body is larger than this server accepts');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'unsupported_media_type', 'send the body as application/json');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError(400, 'bad_request', 'Content-Length does not match the body');
    case 'FST_ERR_BAD_URL':
      return new ApiError(400, 'bad_request', 'the request URL is malformed');
  }
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (status === 414) return new ApiError(414, 'uri_too_long', 'the request URL is too long');
  if (status >= 400 && status < 500) return new ApiError(status, 'bad_request', 'the request is malformed');
  return new ApiError(500, 'internal_error', 'internal error');
}

function fromEngine(err: EngineError): ApiError {
  const status = ENGINE_ERROR_STATUS[err.code] ?? 500;
  switch (err.code) {
    case 'input_too_long': {
      const extra: Record<string, number> = {};
      for (const [k, v] of Object.entries(err.details)) if (typeof v === 'number') extra[k] = v;
      return new ApiError(422, 'input_too_long', err.message, extra);
    }
    case 'queue_full':
      return new ApiError(503, 'queue_full', 'the server is busy; retry shortly', {}, { 'Retry-After': '1' });
    case 'not_ready':
      return new ApiError(503, 'not_ready', err.message, {}, { 'Retry-After': '5' });
    case 'timeout':
      return new ApiError(504, 'timeout', 'the model did not answer in time');
    case 'model_not_found':
      return new ApiError(404, 'model_not_found', err.message);
    case 'cancelled':
      // A client that went away is recorded as 499 by the error handler and never reads an answer; a client still
      // waiting had its request cancelled by the engine closing (shutdown past the drain timeout).
      return new ApiError(503, 'shutting_down', 'the server is shutting down; retry on another instance', {}, { 'Retry-After': '5' });
    default:
      return new ApiError(status, err.code, 'the inference engine failed');
  }
}

const CONTEXT_NAMES: Record<string, string> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' };

/** A schema failure, naming the field: "text: must be string", "unknown field extra". */
function fromValidation(err: FastifyError): ApiError {
  const first = err.validation![0]!;
  const where = CONTEXT_NAMES[err.validationContext ?? 'body'] ?? 'body';
  const params = first.params as Record<string, unknown>;
  const segments = first.instancePath.split('/').filter(Boolean).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  let message: string;
  if (first.keyword === 'required') segments.push(String(params.missingProperty));
  if (first.keyword === 'additionalProperties') segments.push(String(params.additionalProperty));
  const field = segments.length ? segments.join('.') : where;
  switch (first.keyword) {
    case 'required':
      message = `${field} is required`;
      break;
    case 'additionalProperties':
      message = `unknown ${where} field "${field}"`;
      break;
    case 'type':
      message = segments.length ? `${field} must be ${article(String(params.type))}` : `the ${where} must be ${article(String(params.type))}`;
      break;
    case 'minLength':
      message = `${field} must not be empty`;
      break;
    default:
      message = `${field} ${first.message ?? 'is invalid'}`;
  }
  return new ApiError(422, 'invalid_request', message, { field });
}

function article(type: string): string {
  const names: Record<string, string> = { object: 'a JSON object', array: 'an array', string: 'a string', boolean: 'true or false', number: 'a number', integer: 'a whole number' };
  return type.split(',').map((t) => names[t] ?? t).join(' or ');
}

/** Malformed HTTP (bad header, header too large, stalled request): answered on the socket, still in our JSON. */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const [status, code, message] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'headers_too_large', 'the request headers are too large']
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'request_timeout', 'the request did not arrive in time']
    : [400, 'bad_request', 'the request is not valid HTTP'];
  const body = JSON.stringify({ error: { code, message, request_id: randomUUID() } });
  const reason = status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
