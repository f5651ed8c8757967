/**
 * `cert renew NAME | --all`: renews each lineage in turn; a failure runs the --on-failure hook (with
 * GUARDCTL_LINEAGE and GUARDCTL_ERROR: Let's Encrypt no longer mails expiry warnings, so this is how a person
 * hears about it) and stops the run unless --keep-going.
 */
import { runHook } from './deploy.js';
import { errorLine } from './errors.js';
import { renewLineage, type RenewDeps, type RenewOptions, type RenewOutcome } from './renew.js';
import { CertStore } from './store.js';

export interface RenewManyOptions extends RenewOptions {
  keepGoing?: boolean;
  onFailure?: string;
  /** Progress for people: a lineage starts, or ends with its outcome (or failure). */
  onLineage?: (name: string, outcome: RenewOutcome | 'start' | 'failed') => void;
}

export interface RenewFailure {
  lineage: string;
  error: unknown;
  message: string;
}

export interface RenewReport {
  results: RenewOutcome[];
  failures: RenewFailure[];
  /** Lineages not attempted because an earlier one failed (no --keep-going). */
  skipped: string[];
}

export async function renewMany(names: string[], opts: RenewManyOptions, deps: RenewDeps): Promise<RenewReport> {
  const report: RenewReport = { results: [], failures: [], skipped: [] };
  const store = new CertStore(deps.home);
  for (const [i, name] of names.entries()) {
    opts.onLineage?.(name, 'start');
    try {
      const outcome = await renewLineage(name, opts, deps);
      report.results.push(outcome);
      opts.onLineage?.(name, outcome);
    } catch (error) {
      opts.onLineage?.(name, 'failed');
      const message = errorLine(error);
      report.failures.push({ lineage: name, error, message });
      deps.log('error', `${name}: renewal failed: ${message}`);
      if (opts.onFailure && !opts.dryRun) {
        try {
          await runHook('on-failure', opts.onFailure, deps.env, { lineage: name, certDir: store.lineageDir(name), names: namesOf(store, name), error: message });
        } catch (hookErr) {
          deps.log('warn', `${name}: ${errorLine(hookErr)}`);
        }
      }
      if (!opts.keepGoing) {
        report.skipped = names.slice(i + 1);
        break;
      }
    }
  }
  return report;
}

function namesOf(store: CertStore, name: string): string[] {
  try {
    return store.readMeta(name).names;
  } catch {
    return [];
  }
}
