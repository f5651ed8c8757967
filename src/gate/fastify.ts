import type {
  FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, onErrorAsyncHookHandler, onResponseAsyncHookHandler,
  preHandlerAsyncHookHandler, RawServerDefault,
} from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ModelRef } from '../keys/types.js';
import { auditRecord, type AuditSink } from './audit.js';
import type { Gate, GateDenial, GatePass } from './gate.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The body's exact bytes, kept for version 2's X-Content-SHA256. */
    rawBody?: Buffer;
    gatePass?: GatePass;
    gateDenial?: GateDenial;
    gateModel?: ModelRef;
    /** The code of an error that ended a gated request before or after the gate (invalid_json, ...). */
    failureCode?: string;
  }
  interface FastifyContextConfig {
    /** Present on routes behind the gate; `model` names what the request asks for (from its body or query). */
    gate?: { model?: (request: FastifyRequest) => ModelRef | undefined };
  }
}

export interface GateBinding {
  gate: Gate;
  audit: AuditSink;
}

/** Any fastify app on a plain HTTP(S) server, whatever logger it was built with. */
export type GateApp = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger>;

/**
 * JSON bodies parsed from, and every body kept as, their exact bytes (request.rawBody): version 2 hashes them
 * and version 1 reads number members' source text. Used with and without the gate, so both parse alike.
 */
export function keepRawBodies(app: GateApp): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const raw = body as Buffer;
    request.rawBody = raw;
    if (raw.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(raw.toString('utf8')));
    } catch {
      done(Object.assign(new Error('the request body is not valid JSON'), { statusCode: 400, code: 'invalid_json' }), undefined);
    }
  });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    request.rawBody = body as Buffer;
    done(null, body);
  });
}

/**
 * Puts the gate in front of every route whose config has `gate`: keeps raw bodies, runs the checks in a
 * preHandler, frees the concurrency slot however the exchange ends (client disconnects included) and writes one
 * audit record per gated request.
 */
export function bindGate(app: GateApp, { gate, audit }: GateBinding): void {
  keepRawBodies(app);

  // Hooks are attached to gated routes only, when they are declared: open routes pay nothing, and the hooks
  // never read request.routeOptions (fastify builds that object anew on every access).
  app.addHook('onRoute', (route) => {
    const config = route.config?.gate;
    if (!config) return;
    const routeUrl = route.url;
    const preHandler: preHandlerAsyncHookHandler = async (request, reply) => {
      const url = request.raw.url ?? '/';
      const q = url.indexOf('?');
      const result = await gate.check({
        method: request.method,
        path: q === -1 ? url : url.slice(0, q),
        rawQuery: q === -1 ? '' : url.slice(q + 1),
        headers: request.headers,
        body: request.rawBody,
        json: request.rawBody && isJson(request) ? request.body : undefined,
        peerIp: request.socket.remoteAddress ?? '',
        model: () => (request.gateModel = config.model?.(request)),
      });
      if (!result.ok) {
        request.gateDenial = result;
        return sendDenial(reply, request, result);
      }
      request.gatePass = result;
      reply.headers(result.headers);
      reply.raw.once('close', result.release);
    };
    const onError: onErrorAsyncHookHandler = async (request, _reply, error) => {
      const code = (error as { code?: unknown }).code;
      request.failureCode = typeof code === 'string' ? code : 'internal_error';
    };
    const onResponse: onResponseAsyncHookHandler = async (request, reply) => {
      const pass = request.gatePass;
      const denial = request.gateDenial;
      pass?.release();
      audit.write(auditRecord({
        request_id: request.id,
        key_id: pass?.key.id ?? denial?.keyId ?? null,
        tier: pass?.key.tier ?? denial?.tier ?? null,
        route: routeUrl,
        model: request.gateModel?.name ?? null,
        status: reply.statusCode,
        reason: denial?.code ?? request.failureCode ?? null,
        latency_ms: Math.round(reply.elapsedTime * 1000) / 1000,
        input_bytes: request.rawBody?.length ?? 0,
        output_bytes: Number(reply.getHeader('content-length') ?? 0),
        clientIp: pass?.clientIp ?? denial?.clientIp ?? request.socket.remoteAddress ?? '',
      }));
    };
    route.preHandler = [preHandler, ...asArray(route.preHandler)];
    route.onError = [...asArray(route.onError), onError];
    route.onResponse = [...asArray(route.onResponse), onResponse];
  });
}

function asArray<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function isJson(request: FastifyRequest): boolean {
  return (request.headers['content-type'] ?? '').toLowerCase().startsWith('application/json');
}

export function sendDenial(reply: FastifyReply, request: FastifyRequest, denial: GateDenial): FastifyReply {
  const error: Record<string, unknown> = { code: denial.code, message: denial.message, request_id: request.id };
  if (denial.stringToSign !== undefined) error.string_to_sign = denial.stringToSign;
  return reply.code(denial.status).headers(denial.headers).send({ error });
}
