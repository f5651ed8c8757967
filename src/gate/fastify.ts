import type {
  FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, onErrorAsyncHookHandler, onRequestAsyncHookHandler,
  onResponseHookHandler, onSendHookHandler, preValidationAsyncHookHandler, RawServerDefault,
} from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ModelRef } from '../keys/types.js';
import { auditRecord, type AuditSink } from './audit.js';
import type { Gate, GateDenial, GateHeaderPass, GatePass } from './gate.js';
import { jsonDeeperThan, MAX_JSON_DEPTH } from './json-depth.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The body's exact bytes, kept for version 2's X-Content-SHA256. */
    rawBody?: Buffer;
    /** The header stage's pass (onRequest), before the body is read. */
    gateHeaders?: GateHeaderPass;
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

/** Answers a refusal: the server maps the reason code to its status and message (src/server/error-catalogue.ts). */
export type DenialSender = (reply: FastifyReply, request: FastifyRequest, denial: GateDenial) => FastifyReply;

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
    if (jsonDeeperThan(raw, MAX_JSON_DEPTH)) {
      const message = `the request body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`;
      return done(Object.assign(new Error(message), { statusCode: 400, code: 'json_too_deep' }), undefined);
    }
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
 * Puts the gate in front of every route whose config has `gate`: keeps raw bodies, runs the header checks in
 * onRequest (before the body is read) and the rest in preValidation (before the schema sees an unsigned body),
 * counts bodies refused before their signature was checked as failed authentications, frees the concurrency
 * slot however the exchange ends (client disconnects included) and writes one audit record per gated request.
 */
export function bindGate(app: GateApp, { gate, audit }: GateBinding, sendDenial: DenialSender): void {
  keepRawBodies(app);

  // Hooks are attached to gated routes only, when they are declared: open routes pay nothing, and the hooks
  // never read request.routeOptions (fastify builds that object anew on every access).
  app.addHook('onRoute', (route) => {
    const config = route.config?.gate;
    if (!config) return;
    const routeUrl = route.url;
    const accepts = acceptedNames(route.schema);
    const onRequest: onRequestAsyncHookHandler = async (request, reply) => {
      const result = await gate.checkHeaders({ headers: request.headers, peerIp: request.socket.remoteAddress ?? '', tls: isTls(request) });
      if (!result.ok) {
        request.gateDenial = result;
        // The body was never read: closing the connection spares reading (and discarding) it, and keeps a
        // stalled body from earning a second answer (408) on the same socket.
        if (hasBody(request)) reply.header('Connection', 'close');
        return sendDenial(reply, request, result);
      }
      request.gateHeaders = result;
    };
    const preValidation: preValidationAsyncHookHandler = async (request, reply) => {
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
        tls: isTls(request),
        model: modelOf(request, config.model),
        accepts,
      }, request.gateHeaders);
      if (!result.ok) {
        request.gateDenial = result;
        return sendDenial(reply, request, result);
      }
      request.gatePass = result;
      reply.headers(result.headers);
      // Only a held concurrency slot needs freeing when the client goes away; a listener per request costs ~1 µs.
      if (result.limits.concurrency !== null) reply.raw.once('close', result.release);
    };
    const onError: onErrorAsyncHookHandler = async (request, _reply, error) => {
      const code = (error as { code?: unknown }).code;
      request.failureCode = typeof code === 'string' ? code : 'internal_error';
      // Past the header stage, but the body was refused before its signature could be checked: such senders
      // are not authenticated, and must not get unlimited parsing for free.
      if (request.gateHeaders && !request.gatePass && !request.gateDenial && isBadBody(error)) {
        await gate.recordBodyFailure(request.gateHeaders.clientIp);
      }
    };
    // Callback style, not async: the audit write is synchronous, so a promise per request would buy nothing.
    const onResponse: onResponseHookHandler = (request, reply, done) => {
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
        clientIp: pass?.clientIp ?? denial?.clientIp ?? request.gateHeaders?.clientIp ?? request.socket.remoteAddress ?? '',
      }));
      done();
    };
    route.onRequest = [onRequest, ...asArray(route.onRequest)];
    route.preValidation = [preValidation, ...asArray(route.preValidation)];
    route.onError = [...asArray(route.onError), onError];
    route.onResponse = [...asArray(route.onResponse), onResponse];
    route.onSend = [...asArray(route.onSend), awaitCommit];
  });
}

/**
 * What the gate calls, once the signature verified, to learn the model. Built here rather than as an arrow in
 * the object literal: tsx (the bench, running from source) names such an arrow with a defineProperty per request.
 */
function modelOf(request: FastifyRequest, pick: ((request: FastifyRequest) => ModelRef | undefined) | undefined): () => ModelRef | undefined {
  return () => (request.gateModel = pick?.(request));
}

/** No answer leaves before the request's state is durable (see GatePass.committed); a failed commit answers 5xx. */
const awaitCommit: onSendHookHandler = (request, _reply, payload, done) => {
  const committed = request.gatePass?.committed;
  if (committed === undefined) return done(null, payload);
  committed.then(() => done(null, payload), (err: Error) => {
    // The error's own answer passes through here again: it must not wait for the failed commit once more.
    request.gatePass!.committed = undefined;
    done(err);
  });
};

function asArray<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

const BAD_BODY_CODES = new Set([
  'invalid_json', 'json_too_deep', 'FST_ERR_CTP_INVALID_JSON_BODY', 'FST_ERR_CTP_EMPTY_JSON_BODY', 'FST_ERR_CTP_BODY_TOO_LARGE',
  'FST_ERR_CTP_INVALID_CONTENT_LENGTH', 'FST_ERR_CTP_INVALID_MEDIA_TYPE', 'FST_ERR_CTP_INVALID_TYPE',
]);

/** A body refused as such (not a client that went away, not a server fault). */
function isBadBody(error: unknown): boolean {
  const e = error as { code?: unknown; validation?: unknown };
  return Array.isArray(e.validation) || (typeof e.code === 'string' && BAD_BODY_CODES.has(e.code));
}

/** The query and body member names a route's schema declares; undefined when it declares none. */
function acceptedNames(schema: unknown): ReadonlySet<string> | undefined {
  const s = schema as { body?: { properties?: object }; querystring?: { properties?: object } } | undefined;
  if (!s?.body?.properties && !s?.querystring?.properties) return undefined;
  return new Set([...Object.keys(s.body?.properties ?? {}), ...Object.keys(s.querystring?.properties ?? {})]);
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** A TLS socket has `encrypted` set (node:tls); light-my-request's fake socket has none. */
function isTls(request: FastifyRequest): boolean {
  return (request.socket as { encrypted?: boolean }).encrypted === true;
}

function isJson(request: FastifyRequest): boolean {
  return (request.headers['content-type'] ?? '').toLowerCase().startsWith('application/json');
}
