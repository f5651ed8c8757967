// What `guardctl cert` runs, loaded by its actions only: acme-client and the DNS providers are a large part of
// start-up, and no other command needs them.
import { setTimeout as sleep } from 'node:timers/promises';
import acme from 'acme-client';
import type { Context } from '../core/context.js';
import { parseDuration } from '../core/duration.js';
import { configureAcmeTrust } from '../acme/directory.js';
import { issueCertificate } from '../acme/issue.js';
import type { LifecycleDeps } from '../acme/obtain.js';
import { issueOptionsFrom, type IssueFlags } from '../acme/options.js';
import { createReporter, isInteractive, type Reporter } from '../acme/progress.js';
import { renewMany } from '../acme/renew-all.js';
import type { RenewDeps, RenewOutcome } from '../acme/renew.js';
import { jitterMs } from '../acme/renewal.js';
import { checkReason, revokeLineage } from '../acme/revoke.js';
import { rollbackLineage } from '../acme/rollback.js';
import { solverFor } from '../acme/solver.js';
import { CertStore } from '../acme/store.js';
import { lineageRows } from '../acme/summary.js';

export function reporterFor(ctx: Context): Reporter {
  return createReporter({ out: ctx.out, logger: ctx.log, interactive: isInteractive(ctx.out.json, ctx.env) });
}

export function depsFor(ctx: Context, reporter: Reporter): LifecycleDeps {
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

/** The random delay before renewing off a TTY (a timer); GUARDCTL_RENEW_JITTER sets its bound, 0 turns it off. */
export function jitterStep(ctx: Context, reporter: Reporter, force: boolean): () => Promise<void> {
  let done = false;
  return async () => {
    if (done || force || process.stdout.isTTY) return;
    done = true;
    const raw = ctx.env.GUARDCTL_RENEW_JITTER ?? '10m';
    const max = raw === '0' ? 0 : parseDuration(raw, 'GUARDCTL_RENEW_JITTER');
    const wait = jitterMs(max);
    if (wait <= 0) return;
    reporter.log('info', `waiting ${Math.round(wait / 1000)}s before renewing (random delay for timer runs; GUARDCTL_RENEW_JITTER=0 turns it off)`);
    await sleep(wait);
  };
}

export { issueCertificate, issueOptionsFrom, renewMany, checkReason, revokeLineage, rollbackLineage, CertStore, lineageRows };
