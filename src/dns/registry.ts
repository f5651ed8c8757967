import { usageError } from '../core/errors.js';
import { factory as aliyun } from './providers/aliyun/index.js';
import { factory as cloudflare } from './providers/cloudflare/index.js';
import { factory as dnspod } from './providers/dnspod/index.js';
import { factory as exec } from './providers/exec/index.js';
import { factory as manual } from './providers/manual/index.js';
import { factory as pdns } from './providers/pdns/index.js';
import { factory as rfc2136 } from './providers/rfc2136/index.js';
import type { DnsProvider, ProviderContext, ProviderFactory, ProviderMeta } from './types.js';

/**
 * Every DNS provider, the one list that `--dns NAME`, `guardctl cert providers` and docs/providers.md read
 * (lego's single source of provider metadata). Adding a provider means adding its folder and one line here.
 */
export const PROVIDERS: readonly ProviderFactory[] = [aliyun, cloudflare, dnspod, pdns, rfc2136, exec, manual];

export function providerNames(): string[] {
  return PROVIDERS.map((f) => f.meta.name);
}

export function findProvider(name: string): ProviderFactory | undefined {
  const wanted = name.trim().toLowerCase();
  return PROVIDERS.find((f) => f.meta.name === wanted);
}

/** The provider called `name`, configured from ctx; an unknown name is a usage error that lists the known ones. */
export function getProvider(name: string, ctx: ProviderContext): DnsProvider {
  const f = findProvider(name);
  if (!f) throw usageError(`unknown DNS provider "${name}"`, `use one of: ${providerNames().join(', ')}`);
  return f.create(ctx);
}

export function providerMetadata(): ProviderMeta[] {
  return PROVIDERS.map((f) => f.meta);
}
