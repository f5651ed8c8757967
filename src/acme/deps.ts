/** The ACME lifecycle's dependencies for a command run (cert issue/renew/rollback, and `guardctl up`). */
import acme from 'acme-client';
import type { Context } from '../core/context.js';
import { parseDuration } from '../core/duration.js';
import { configureAcmeTrust } from './directory.js';
import type { LifecycleDeps } from './obtain.js';
import type { Reporter } from './progress.js';
import { solverFor } from './solver.js';

export function lifecycleDeps(ctx: Context, reporter: Reporter): LifecycleDeps {
  configureAcmeTrust(ctx.env);
  acme.setLogger((message) => ctx.log.debug({ component: 'acme-client' }, message));
  const poll = ctx.env.GUARDCTL_ACME_POLL_MS;
  return {
    home: ctx.locations.home,
    env: ctx.env,
    now: ctx.now,
    log: reporter.log,
    progress: reporter.progress,
    solverFor: (dns) => solverFor(dns, ctx.env, reporter.log),
    ...(poll ? { pollMinMs: parseDuration(`${poll}ms`, 'GUARDCTL_ACME_POLL_MS') } : {}),
  };
}

