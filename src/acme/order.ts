/**
 * One ACME order over DNS-01, in acme-client's "auto" shape but with every TXT record up before the CA is told:
 * an apex and its wildcard share one `_acme-challenge` name, so both values must be visible at once.
 *
 *   present every value (in parallel when the provider allows it) -> wait until every authoritative server
 *   has every value -> complete all challenges -> wait for each to settle -> finalize -> download.
 *
 * Cleanup runs in `finally` for every record whose present() was attempted; a failed cleanup is logged and
 * never replaces the real error. Authorizations whose challenge was never completed are deactivated.
 */
import type acme from 'acme-client';
import type { DnsProvider, TxtRecord } from '../dns/types.js';
import type { DnsServer } from './dns-query.js';

export type LogFn = (level: 'info' | 'warn' | 'error', message: string) => void;
export type NameState = 'pending' | 'dns' | 'propagating' | 'validating' | 'valid' | 'failed';

export interface Propagation {
  /** Resolves when every authoritative server of fqdn's zone serves all values; rejects on timeout. */
  waitForTxt(opts: { fqdn: string; values: string[]; timeoutMs: number; intervalMs: number; resolvers?: DnsServer[]; check?: 'authoritative' | 'resolvers'; signal?: AbortSignal; log: LogFn }): Promise<unknown>;
  /** The name the TXT record must be written at: fqdn itself, or where its CNAME chain ends. */
  resolveChallengeTarget(fqdn: string, resolvers?: DnsServer[]): Promise<string>;
}

export interface Solver {
  /** Which challenge it answers (default dns-01). For http-01 a record's fqdn is the token (http01.ts). */
  challenge?: 'dns-01' | 'http-01';
  /** What to check when the CA could not validate this solver's challenge (default: obtain.ts's DNS-01 hint). */
  failureHint?: string;
  provider: DnsProvider;
  /** Whether present()/cleanup() may run concurrently (ProviderMeta.parallel). */
  parallel: boolean;
  propagation: Propagation;
  timeoutMs: number;
  intervalMs: number;
  resolvers?: DnsServer[];
  check?: 'authoritative' | 'resolvers';
  ttl?: number;
}

export interface OrderRequest {
  names: string[];
  csr: Buffer;
  /** RFC 9773: the ARI certID of the certificate this order replaces. */
  replaces?: string;
  profile?: string;
}

export interface OrderHooks {
  log: LogFn;
  progress?: (name: string, state: NameState) => void;
  signal?: AbortSignal;
}

interface Task {
  name: string;
  authz: acme.Authorization;
  challenge: acme.Authorization['challenges'][number];
  record: TxtRecord;
  completed: boolean;
}

/** Runs fn over items, all at once or one after another; waits for all to settle, then throws the first error. */
export async function each<T>(items: T[], parallel: boolean, fn: (item: T) => Promise<void>): Promise<void> {
  const errors: unknown[] = [];
  if (parallel) {
    for (const r of await Promise.allSettled(items.map(fn))) if (r.status === 'rejected') errors.push(r.reason);
  } else {
    for (const item of items) {
      try {
        await fn(item);
      } catch (err) {
        errors.push(err);
        break;
      }
    }
  }
  if (errors.length > 0) throw errors[0];
}

export type OrderPhase = 'order' | 'challenge' | 'finalize';

/** Marks where a plain (acme-client) error happened, so the caller can give the right hint. */
function tagged(err: unknown, phase: OrderPhase): unknown {
  if (err instanceof Error && !('code' in err && String((err as { code: unknown }).code).startsWith('GUARD_E_'))) {
    Object.assign(err, { acmePhase: phase });
  }
  return err;
}

export function phaseOf(err: unknown): OrderPhase | undefined {
  return (err as { acmePhase?: OrderPhase } | null)?.acmePhase;
}

async function createOrder(client: acme.Client, req: OrderRequest, log: LogFn): Promise<acme.Order> {
  const payload: Record<string, unknown> = { identifiers: req.names.map((value) => ({ type: 'dns', value })) };
  if (req.profile) payload.profile = req.profile;
  if (req.replaces) payload.replaces = req.replaces;
  try {
    return await client.createOrder(payload as unknown as Parameters<acme.Client['createOrder']>[0]);
  } catch (err) {
    if (!req.replaces) throw err;
    // RFC 9773: a CA may refuse "replaces" (already replaced, unknown); ordering without it is always allowed.
    log('warn', `the CA refused "replaces" (${(err as Error).message}); ordering without it`);
    delete payload.replaces;
    return client.createOrder(payload as unknown as Parameters<acme.Client['createOrder']>[0]);
  }
}

/** Deactivates authorizations whose challenge was never completed (best effort, like acme-client's auto). */
async function deactivate(client: acme.Client, authzs: acme.Authorization[], log: LogFn): Promise<void> {
  await each(authzs, true, async (authz) => {
    try {
      await client.deactivateAuthorization(authz);
    } catch (e) {
      log('warn', `${authz.identifier.value}: could not deactivate the authorization: ${(e as Error).message}`);
    }
  });
}

/** Places the order, solves its DNS-01 challenges and returns the certificate chain (PEM). */
export async function orderCertificate(client: acme.Client, req: OrderRequest, solver: Solver, hooks: OrderHooks): Promise<string> {
  const { log } = hooks;
  const progress = hooks.progress ?? (() => {});
  const order = await createOrder(client, req, log).catch((err: unknown) => Promise.reject(tagged(err, 'order')));
  const authzs = await client.getAuthorizations(order);
  const tasks: Task[] = [];
  try {
    for (const authz of authzs) {
      const name = `${authz.wildcard ? '*.' : ''}${authz.identifier.value}`;
      if (authz.status === 'valid') {
        progress(name, 'valid');
        continue;
      }
      if (authz.status !== 'pending') throw new Error(`the authorization for ${name} is ${authz.status}`);
      const type = solver.challenge ?? 'dns-01';
      const challenge = authz.challenges.find((c) => c.type === type);
      if (!challenge) throw new Error(`the CA offers no ${type} challenge for ${name}`);
      const value = await client.getChallengeKeyAuthorization(challenge);
      const fqdn = type === 'http-01'
        ? (challenge as { token: string }).token
        : await solver.propagation.resolveChallengeTarget(`_acme-challenge.${authz.identifier.value}`, solver.resolvers);
      tasks.push({ name, authz, challenge, record: { fqdn, value, ttl: solver.ttl ?? 60 }, completed: false });
    }
  } catch (err) {
    await deactivate(client, authzs.filter((a) => a.status === 'pending'), log);
    throw err;
  }

  const presented: Task[] = [];
  try {
    await each(tasks, solver.parallel, async (task) => {
      progress(task.name, 'dns');
      presented.push(task);
      await solver.provider.present(task.record);
    });
    const byFqdn = new Map<string, string[]>();
    for (const t of tasks) byFqdn.set(t.record.fqdn, [...(byFqdn.get(t.record.fqdn) ?? []), t.record.value]);
    for (const t of tasks) progress(t.name, 'propagating');
    await each([...byFqdn], true, async ([fqdn, values]) => {
      await solver.propagation.waitForTxt({ fqdn, values, timeoutMs: solver.timeoutMs, intervalMs: solver.intervalMs, resolvers: solver.resolvers, check: solver.check, signal: hooks.signal, log });
    });
    await each(tasks, true, async (task) => {
      progress(task.name, 'validating');
      await client.completeChallenge(task.challenge);
      task.completed = true;
      try {
        await client.waitForValidStatus(task.challenge);
      } catch (err) {
        progress(task.name, 'failed');
        throw tagged(new Error(`${task.name}: ${(err as Error).message}`, { cause: err }), 'challenge');
      }
      progress(task.name, 'valid');
    });
  } catch (err) {
    const open = tasks.filter((t) => !t.completed);
    for (const t of open) progress(t.name, 'failed');
    await deactivate(client, open.map((t) => t.authz), log);
    throw err;
  } finally {
    await each(presented, solver.parallel, async (t) => {
      try {
        await solver.provider.cleanup(t.record);
      } catch (e) {
        log('warn', `${t.name}: could not remove the TXT record at ${t.record.fqdn}: ${(e as Error).message}`);
      }
    }).catch(() => {});
  }
  try {
    const finalized = await client.finalizeOrder(order, req.csr);
    return await client.getCertificate(finalized);
  } catch (err) {
    throw tagged(err, 'finalize');
  }
}
