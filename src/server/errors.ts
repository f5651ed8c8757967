import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isOpenaiRoute, openaiErrorFields } from '../core/openai-error.js';
import type { DenialSender } from '../gate/fastify.js';
import type { GateDenial } from '../gate/gate.js';
import { StateUnavailableError } from '../gate/state.js';
import { EngineError } from '../infer/types.js';
import { GuardOutputError } from '../tasks/guard-output.js';
import { ModerationInputError } from '../tasks/moderate.js';
import { TranslateInputError } from '../tasks/translate.js';
import { HTTP_ERRORS, type HttpErrorCode } from './error-catalogue.js';

/**
 * Every answer that is not a success is `{"error": {"code", "message", "request_id", ...extra}}`. Bad input is
 * 4xx naming what was wrong; a 500 says "internal error" and nothing more (the log has the details). The status
 * comes from the code's row in error-catalogue.ts, and so does the message where the call site gives none.
 */
export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: HttpErrorCode,
    message: string = HTTP_ERRORS[code].message,
    /** Extra members of the error object (field, limit, ...): never user text or secrets. */
    readonly extra: Record<string, string | number | boolean> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = HTTP_ERRORS[code].status;
  }
}

/** How the daemon answers a gate refusal (bindGate's third argument). */
export const sendDenial: DenialSender = (reply, request, denial) => sendError(reply, request, fromGate(denial));

/** A gate refusal as an answer: the reason's catalogue message, with the gate's detail after it. */
export function fromGate(denial: GateDenial): ApiError {
  const code: HttpErrorCode = denial.code;
  const message = denial.detail ? `${HTTP_ERRORS[code].message}: ${denial.detail}` : HTTP_ERRORS[code].message;
  return new ApiError(code, message, denial.stringToSign === undefined ? {} : { string_to_sign: denial.stringToSign }, denial.headers);
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
  if (err instanceof StateUnavailableError) return new ApiError('state_unavailable', undefined, {}, { 'Retry-After': '1' });
  if (err instanceof GuardOutputError) return new ApiError('bad_model_output', `${HTTP_ERRORS.bad_model_output.message}: ${err.message}`);
  if (err instanceof ModerationInputError) return new ApiError('invalid_request', err.message);
  if (err instanceof TranslateInputError) return new ApiError('invalid_request', err.message, { field: err.field });
  const e = err as Partial<FastifyError> & { statusCode?: number };
  if (e && Array.isArray(e.validation)) return fromValidation(e as FastifyError);
  switch (e?.code) {
    case 'invalid_json':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError('invalid_json');
    case 'json_too_deep':
      return new ApiError('json_too_deep', (e as Error).message);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('invalid_json', 'the request body is empty; send a JSON object');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('body_too_large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('unsupported_media_type');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('bad_request', 'Content-Length does not match the body');
    case 'FST_ERR_BAD_URL':
      return new ApiError('bad_request', 'the request URL is malformed');
  }
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (status === 414) return new ApiError('uri_too_long');
  // Any other 4xx fastify raises is the client's fault in a way no route sees: one code, status 400.
  if (status >= 400 && status < 500) return new ApiError('bad_request');
  return new ApiError('internal_error');
}

/** The engine names what went wrong; the status is chosen here, from the catalogue. */
function fromEngine(err: EngineError): ApiError {
  switch (err.code) {
    case 'input_too_long': {
      const extra: Record<string, number> = {};
      for (const [k, v] of Object.entries(err.details)) if (typeof v === 'number') extra[k] = v;
      return new ApiError('input_too_long', err.message, extra);
    }
    case 'queue_full':
      return new ApiError('queue_full', undefined, {}, { 'Retry-After': '1' });
    case 'not_ready':
      return new ApiError('not_ready', err.message, {}, { 'Retry-After': '5' });
    case 'timeout':
      return new ApiError('timeout');
    case 'model_not_found':
      return new ApiError('model_not_found', err.message);
    case 'cancelled':
      // A client that went away is recorded as 499 cancelled by the error handler and never reads an answer; a
      // client still waiting had its request cancelled by the engine closing (shutdown past the drain timeout).
      return shuttingDown();
    case 'ambiguous_candidates':
    case 'engine_failed':
      return new ApiError(err.code);
  }
}

export function shuttingDown(): ApiError {
  return new ApiError('shutting_down', undefined, {}, { 'Retry-After': '5' });
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
  return new ApiError('invalid_request', message, { field });
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
  const { status, code, message } = err.code === 'HPE_HEADER_OVERFLOW' ? new ApiError('headers_too_large')
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? new ApiError('request_timeout')
    : new ApiError('bad_request', 'the request is not valid HTTP');
  const body = JSON.stringify({ error: { code, message, request_id: randomUUID() } });
  const reason = status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
