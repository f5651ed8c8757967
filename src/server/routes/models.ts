import type { FastifyInstance } from 'fastify';
import { modelAllowed } from '../../keys/tiers.js';
import { LANGUAGES } from '../../tasks/languages.js';
import { gatedConfig, type RouteContext } from './shared.js';

/** GET {base}/api/v1/models (behind the gate) and GET {base}/api/v1/languages (open: a static list). */
export function modelRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get(ctx.path('/api/v1/models'), { config: gatedConfig(ctx, null) }, async (request) => {
    const limits = request.gatePass?.limits;
    const models = ctx.engine.models().map((m) => {
      const out: Record<string, unknown> = {
        name: m.name, task: m.task, size: m.size, dtype: m.dtype, device: m.device, state: m.state, max_context: m.maxContext,
      };
      if (m.error !== undefined) out.error = m.error;
      if (m.translateTemplate !== undefined) out.translate_template = m.translateTemplate;
      // With a key, whether its tier may use the model (a 403 model_not_allowed otherwise).
      if (limits) out.allowed = modelAllowed(limits.models, { name: m.name, size: m.size });
      return out;
    });
    const tasks = [...new Set(models.map((m) => m.task as string))];
    const devices = ctx.engine.load().map((d) => ({ device: d.device, queued: d.queued, active: d.active }));
    return { models, tasks, devices };
  });

  const languages = LANGUAGES.map((l) => ({ code: l.code, english: l.english, chinese: l.chinese, ...(l.variant ? { variant: true } : {}) }));
  app.get(ctx.path('/api/v1/languages'), async (_request, reply) => {
    reply.header('Cache-Control', 'public, max-age=3600');
    return { languages };
  });
}
