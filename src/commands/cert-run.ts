// What `guardctl cert` runs, loaded by its actions only: acme-client and the DNS providers are a large part of
// start-up, and no other command needs them.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from '../core/context.js';
import { parseDuration } from '../core/duration.js';
import { createReporter, isInteractive, type Reporter } from '../acme/progress.js';
import { jitterMs } from '../acme/renewal.js';

export { lifecycleDeps } from '../acme/deps.js';
export { issueCertificate } from '../acme/issue.js';
export { issueOptionsFrom } from '../acme/options.js';
export { renewMany } from '../acme/renew-all.js';
export { checkReason, revokeLineage } from '../acme/revoke.js';
export { rollbackLineage } from '../acme/rollback.js';
export { CertStore } from '../acme/store.js';
export { lineageRows } from '../acme/summary.js';

export function reporterFor(ctx: Context): Reporter {
  return createReporter({ out: ctx.out, logger: ctx.log, interactive: isInteractive(ctx.out.json, ctx.env) });
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
