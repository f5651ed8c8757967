import type { FastifyInstance } from 'fastify';
import type { RouteContext } from './shared.js';

export interface Readiness {
  ready: boolean;
  draining: boolean;
  /** States only: a load error's text (paths) stays behind auth in /api/v1/models. */
  models: Array<{ name: string; state: string }>;
  /** The shared gate state (Redis), when there is one: model routes answer 503 while it is down. */
  state?: { backend: string; up: boolean };
  /** Why not ready, for people. */
  reason?: string;
}

/** /healthz (the process answers), /readyz (every model warm, a shared gate state reachable, not draining), /metrics (Prometheus). No auth. */
export function opsRoutes(app: FastifyInstance, ctx: RouteContext, state: { draining: boolean }): void {
  app.get(ctx.path('/healthz'), async (_request, reply) => {
    reply.header('Cache-Control', 'no-store');
    return { status: 'ok' };
  });

  app.get(ctx.path('/readyz'), async (_request, reply) => {
    const r = readiness(ctx, state.draining);
    return reply.code(r.ready ? 200 : 503).header('Cache-Control', 'no-store').send(r);
  });

  app.get(ctx.path('/metrics'), async (_request, reply) => {
    const { contentType, body } = await ctx.metrics.expose();
    return reply.header('Cache-Control', 'no-store').type(contentType).send(body);
  });
}

export function readiness(ctx: RouteContext, draining: boolean): Readiness {
  const all = ctx.engine.models();
  const models = all.map((m) => ({ name: m.name, state: m.state }));
  const partial = ctx.config.allowPartial && all.some((m) => m.state === 'ready');
  const waiting = all.filter((m) => m.state !== 'ready' && !(partial && m.state === 'failed'));
  const health = ctx.stateHealth?.();
  const reason = draining ? 'draining: the server is shutting down'
    : models.length === 0 ? 'no models are configured'
    // The load error stays out of this public answer (it names paths on the host); the log and serve's exit give it.
    : waiting.length ? `not ready: ${waiting.map((m) => (m.state === 'failed' ? `${m.name} failed to load (the daemon's log says why)` : `${m.name} is ${m.state}`)).join(', ')}`
    : health && !health.up ? `not ready: ${health.reason}`
    : undefined;
  const state = health ? { state: { backend: health.backend, up: health.up } } : {};
  return { ready: reason === undefined, draining, models, ...state, ...(reason ? { reason } : {}) };
}
