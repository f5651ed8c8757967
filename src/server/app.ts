import { randomUUID } from 'node:crypto';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import { pino } from 'pino';
import type { AuditSink } from '../gate/audit.js';
import { bindGate, keepRawBodies, type GateApp } from '../gate/fastify.js';
import type { Gate } from '../gate/gate.js';
import type { CidrList } from '../gate/ip.js';
import type { StateHealth } from '../gate/state.js';
import type { Engine } from '../infer/types.js';
import type { ServeConfig } from './config.js';
import { HTTP_ERRORS } from './error-catalogue.js';
import { ApiError, clientErrorHandler, sendDenial, sendError, shuttingDown, toApiError } from './errors.js';
import { answerHalfClosedClients } from './half-close.js';
import { requestSerializers } from './logging.js';
import { createServerMetrics, type ServerMetrics } from './metrics.js';
import { moderateRoutes } from './routes/moderate.js';
import { modelRoutes } from './routes/models.js';
import { chatRoutes } from './routes/chat.js';
import { openaiRoutes } from './routes/openai.js';
import { opsRoutes } from './routes/ops.js';
import type { RouteContext } from './routes/shared.js';
import { translateRoutes } from './routes/translate.js';
import { webRoutes } from './routes/web.js';

export interface BuildServerOptions {
  config: ServeConfig;
  engine: Engine;
  /** Required unless config.insecureNoAuth: the gate in front of the model routes and its audit sink. */
  gate?: { gate: Gate; audit: AuditSink };
  /** A pino logger (the request serializers are applied to it); false for none; default: info to stdout. */
  logger?: FastifyBaseLogger | false;
  /** Pass the instance whose onStep the engine was created with; default: a fresh one. */
  metrics?: ServerMetrics;
  /** Serve HTTPS with these options (cert, key, ...); default: plain HTTP (behind nginx). */
  https?: HttpsServerOptions;
  /** A shared gate state's health (Redis): /readyz is 503 while it is down, /metrics shows it. */
  stateHealth?: () => StateHealth;
  /** Proxies in front (the gate's trusted_proxies): their FIN means the client went away, never a half-close. */
  trustedProxies?: CidrList;
}

export interface GuardServer extends FastifyInstance {
  readonly metrics: ServerMetrics;
  /** True after drain(): /readyz answers 503 so load balancers move away before close(). */
  readonly draining: boolean;
  drain(): void;
}

/**
 * The daemon's HTTP app: the gate (unless auth is off) in front of the model routes, open ops routes and web
 * page, JSON errors everywhere. It does not start the engine or listen: the serve command does both.
 */
export async function buildServer(opts: BuildServerOptions): Promise<GuardServer> {
  const { config, engine } = opts;
  if (!config.insecureNoAuth && !opts.gate) throw new Error('buildServer: auth is on but no gate was given');
  const metrics = opts.metrics ?? createServerMetrics();
  metrics.attach(engine);
  if (opts.stateHealth) metrics.attachState(opts.stateHealth);
  const app = Fastify({
    // TLS sockets need the net-level half-open too (plain HTTP servers have it): see half-close.ts.
    ...(opts.https ? { https: { allowHalfOpen: true, ...opts.https } } : {}),
    ...(opts.logger === false ? { logger: false } : { loggerInstance: withSerializers(opts.logger) }),
    bodyLimit: config.maxBodyBytes,
    connectionTimeout: config.connectionTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    requestTimeout: config.receiveTimeoutMs,
    // Node enforces the request and header deadlines at this interval (30 s by default, too coarse for them).
    http: {
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(config.receiveTimeoutMs / 4))),
      headersTimeout: Math.min(60_000, config.receiveTimeoutMs),
    },
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    // Answered by the onRequest hook below instead, in our JSON format.
    return503OnClosing: false,
    // Validation must not change the body: version 1 signatures cover its members as the client sent them.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, allowUnionTypes: true } },
    frameworkErrors: (err, request, reply) => sendError(reply, request, withLimits(toApiError(err))),
    clientErrorHandler,
  }) as unknown as GateApp;

  /** A refused body says how large a body may be, and which setting says so (the limit is this server's). */
  const withLimits = (api: ApiError): ApiError => (api.code === 'body_too_large'
    ? new ApiError('body_too_large', `the request body is larger than this server accepts: at most ${config.maxBodyBytes} bytes (${sizeText(config.maxBodyBytes)}, guardctl serve --max-body)`, { limit_bytes: config.maxBodyBytes }, api.headers)
    : api);

  answerHalfClosedClients(app.server, opts.trustedProxies);
  if (!config.insecureNoAuth) bindGate(app, opts.gate!, sendDenial);
  else keepRawBodies(app);

  const state = { draining: false, closing: false };
  const base = config.basePath;
  const ctx: RouteContext = { config, engine, metrics, stateHealth: opts.stateHealth, path: (route) => `${base}${route}` };

  app.setErrorHandler((err, request, reply) => {
    if (reply.raw.destroyed && !reply.raw.writableFinished && reply.raw.listenerCount('error') > 0) {
      // The client is gone: nothing can be sent, and fastify runs the onResponse hooks (audit, metrics) only on
      // the response's 'finish' or 'error'. Record the exchange as 499 cancelled; nothing failed on our side, so
      // it is not an error in the log (the engine's 'cancelled' would otherwise read as shutting_down).
      request.failureCode = 'cancelled';
      request.log.info({ code: 'cancelled' }, 'client went away before the answer');
      reply.code(HTTP_ERRORS.cancelled.status);
      reply.raw.emit('error', new Error('the client closed the connection'));
      return;
    }
    const api = withLimits(toApiError(err));
    if (api.status >= 500) {
      const e = err as Error;
      // Only the type, message and stack: a model-output error carries the answer, which may echo user text.
      const logged = api.code === 'internal_error' ? { type: e?.name, message: e?.message, stack: e?.stack } : { code: api.code };
      request.log.error({ err: logged }, 'request failed');
    }
    return sendError(reply, request, api);
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, request, new ApiError('not_found')));

  app.addHook('preClose', async () => {
    state.draining = true;
    state.closing = true;
  });
  app.addHook('onRequest', async (request, reply) => {
    if (!state.closing) return;
    reply.header('Connection', 'close');
    return sendError(reply, request, shuttingDown());
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('X-Request-Id', request.id);
    reply.header('X-Content-Type-Options', 'nosniff');
    if (!reply.hasHeader('Cache-Control')) reply.header('Cache-Control', 'no-store');
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.observeRequest(routeLabel(request), reply.statusCode, request.gateDenial?.code ?? request.failureCode ?? '', reply.elapsedTime / 1000);
  });

  opsRoutes(app, ctx, state);
  modelRoutes(app, ctx);
  moderateRoutes(app, ctx);
  openaiRoutes(app, ctx);
  chatRoutes(app, ctx);
  translateRoutes(app, ctx);
  webRoutes(app, ctx);
  await app.ready();

  return Object.defineProperties(app, {
    metrics: { value: metrics },
    draining: { get: () => state.draining },
    drain: { value: () => void (state.draining = true) },
  }) as unknown as GuardServer;
}

function withSerializers(logger: FastifyBaseLogger | undefined): FastifyBaseLogger {
  const base = logger ?? (pino({ level: 'info' }) as unknown as FastifyBaseLogger);
  return base.child({}, { serializers: requestSerializers as never });
}

/** Route patterns only (bounded label values); everything unmatched is one label. */
function routeLabel(request: FastifyRequest): string {
  return request.is404 ? 'unmatched' : request.routeOptions.url ?? 'unmatched';
}

function sizeText(bytes: number): string {
  for (const [unit, size] of [['g', 1024 ** 3], ['m', 1024 ** 2], ['k', 1024]] as const) if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  return `${bytes} bytes`;
}
