/**
 * Builds the DNS-01 solver of a lineage: the provider from the registry (configured from the environment and
 * the lineage's non-secret options) and the propagation checks, with the provider's timing defaults unless the
 * lineage overrides them.
 */
import { findProvider, getProvider, providerNames } from '../dns/registry.js';
import { usageError } from '../core/errors.js';
import { parseDnsServers } from './dns-query.js';
import { httpSolver, isHttp01 } from './http01.js';
import type { LogFn, Solver } from './order.js';
import { resolveChallengeTarget, waitForTxt } from './propagation.js';
import type { DnsSettings } from './types.js';

export function checkProviderName(name: string): string {
  const factory = findProvider(name);
  if (!factory) throw usageError(`unknown DNS provider "${name}"`, `use one of: ${providerNames().join(', ')} (see guardctl cert providers)`);
  return factory.meta.name;
}

export function solverFor(dns: DnsSettings, env: NodeJS.ProcessEnv, log: LogFn): Solver {
  if (isHttp01(dns)) return httpSolver(dns);
  const factory = findProvider(dns.provider);
  if (!factory) throw usageError(`unknown DNS provider "${dns.provider}"`, `use one of: ${providerNames().join(', ')}`);
  const provider = getProvider(factory.meta.name, { env, log, options: dns.options });
  return {
    provider,
    parallel: factory.meta.parallel,
    propagation: { waitForTxt, resolveChallengeTarget },
    timeoutMs: (dns.timeoutSec ?? factory.meta.propagationTimeoutSec) * 1000,
    intervalMs: (dns.intervalSec ?? factory.meta.pollIntervalSec) * 1000,
    ...(dns.resolvers && dns.resolvers.length > 0 ? { resolvers: parseDnsServers(dns.resolvers) } : {}),
    ...(dns.check ? { check: dns.check } : {}),
  };
}
