import { dnsError } from './errors.js';
import type { DnsProvider, ProviderContext, TxtRecord } from './types.js';
import { normalizeName, unquoteTxt, zoneCandidates } from './zone.js';

/**
 * The present/cleanup logic shared by every API provider, written once so that all of them keep the same
 * promises: records are added and removed by value (an apex and its wildcard share `_acme-challenge.example.com`
 * and must both stay while both are validated), present is idempotent, cleanup of a value that is not there is not
 * an error, and the zone is found by asking the API about each suffix. A provider only says how to talk to its API.
 */
export interface RemoteRecord {
  id: string;
  value: string;
}

export interface RecordApi<Z extends { name: string }> {
  /** The zone called `name` in this account, or undefined when the account has no such zone. Other failures throw. */
  findZone(name: string): Promise<Z | undefined>;
  /** The TXT records at exactly fqdn. */
  list(zone: Z, fqdn: string): Promise<RemoteRecord[]>;
  /** Adds one TXT value; an answer "that record already exists" counts as success (a retried create may have landed). */
  add(zone: Z, fqdn: string, value: string, ttl: number): Promise<void>;
  /** Deletes one record by id; "no such record" counts as success (someone else removed it). */
  remove(zone: Z, record: RemoteRecord): Promise<void>;
}

export interface ApiProviderOptions<Z extends { name: string }> {
  name: string;
  api: RecordApi<Z>;
  /** Already prefixed with the provider's name and scrubbed (providerLog). */
  log: ProviderContext['log'];
  secrets: readonly string[];
  /** The provider's minimum TTL: lower values are raised to it rather than refused. */
  minTtl?: number;
}

export function apiProvider<Z extends { name: string }>(opts: ApiProviderOptions<Z>): DnsProvider {
  const { name, api, log } = opts;
  // Lookups are cached as promises so that parallel present() calls for one domain ask the API once.
  const zones = new Map<string, Promise<Z | undefined>>();
  const lookup = (candidate: string) => {
    let p = zones.get(candidate);
    if (!p) {
      p = api.findZone(candidate);
      zones.set(candidate, p);
      p.catch(() => zones.delete(candidate));
    }
    return p;
  };

  async function zoneFor(fqdn: string): Promise<Z> {
    const candidates = zoneCandidates(fqdn);
    for (const candidate of candidates) {
      const zone = await lookup(candidate);
      if (zone) return zone;
    }
    throw dnsError(name, `no zone in this account holds ${fqdn} (tried ${candidates.join(', ') || 'nothing'})`, {
      hint: 'check that the domain is managed by this account and that the credentials may read it; a challenge delegated by CNAME is written at the CNAME target',
      details: { fqdn },
    }, opts.secrets);
  }

  const matching = (records: RemoteRecord[], value: string) => records.filter((r) => unquoteTxt(r.value) === value);

  return {
    name,
    async present(record: TxtRecord) {
      const fqdn = normalizeName(record.fqdn);
      const zone = await zoneFor(fqdn);
      const existing = await api.list(zone, fqdn);
      if (matching(existing, record.value).length > 0) {
        log('info', `TXT ${fqdn} already holds this value; nothing to add`);
        return;
      }
      const ttl = Math.max(record.ttl, opts.minTtl ?? 0);
      await api.add(zone, fqdn, record.value, ttl);
      log('info', `added TXT ${fqdn} in zone ${zone.name} (ttl ${ttl}s, ${existing.length} other value${existing.length === 1 ? '' : 's'} kept)`);
    },
    async cleanup(record: TxtRecord) {
      const fqdn = normalizeName(record.fqdn);
      const zone = await zoneFor(fqdn);
      const mine = matching(await api.list(zone, fqdn), record.value);
      if (mine.length === 0) {
        log('info', `TXT ${fqdn} does not hold this value; nothing to remove`);
        return;
      }
      for (const r of mine) await api.remove(zone, r);
      log('info', `removed TXT ${fqdn} from zone ${zone.name}`);
    },
  };
}
