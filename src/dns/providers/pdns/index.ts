import { apiProvider, type RecordApi, type RemoteRecord } from '../../api-provider.js';
import { readProviderEnv } from '../../env.js';
import { dnsError, providerLog } from '../../errors.js';
import { apiFailure, createHttp, type ApiResponse } from '../../http.js';
import type { ProviderContext, ProviderFactory, ProviderMeta } from '../../types.js';
import { normalizeName } from '../../zone.js';

/**
 * PowerDNS Authoritative through its HTTP API (v1). PowerDNS writes whole RRsets (`changetype: REPLACE`), so a
 * value is added by reading the TXT RRset and replacing it with the union, and removed by replacing it with the
 * remainder (or deleting the RRset when nothing remains): other values at the name survive. That read-then-write
 * is not atomic, so present() calls are serialised (parallel: false).
 */
const NAME = 'pdns';

export const meta: ProviderMeta = {
  name: NAME,
  description: 'PowerDNS Authoritative Server, HTTP API v1 with an API key',
  env: [
    { name: 'PDNS_API_URL', aliases: ['PDNS_Url'], required: true, secret: false, description: 'The API\'s base URL, e.g. http://127.0.0.1:8081 (webserver-address/port in pdns.conf; a trailing /api/v1 is accepted).' },
    { name: 'PDNS_API_KEY', aliases: ['PDNS_Token'], required: true, secret: true, description: 'The api-key from pdns.conf.' },
    { name: 'PDNS_SERVER_ID', aliases: ['PDNS_SERVER_NAME', 'PDNS_ServerId'], required: false, secret: false, description: 'The server id in API paths (default localhost).' },
  ],
  parallel: false,
  propagationTimeoutSec: 120,
  pollIntervalSec: 2,
  docs: 'https://doc.powerdns.com/authoritative/http-api/zone.html',
};

interface PdnsZone {
  name: string;
  /** The zone id in API paths (`example.com.`, special characters escaped by PowerDNS). */
  id: string;
  kind: string;
}

interface RRset {
  name: string;
  type: string;
  ttl: number;
  records: Array<{ content: string; disabled: boolean }>;
}

function describe(res: ApiResponse): string {
  const error = (res.json as { error?: unknown } | undefined)?.error;
  if (typeof error === 'string') return error.slice(0, 300);
  return res.text.length < 100 ? res.text.trim() : '';
}

function hintFor(res: ApiResponse): string {
  if (res.status === 401 || res.status === 403) return 'check PDNS_API_KEY: it must equal api-key in pdns.conf (and webserver-allow-from must allow this machine)';
  if (res.status === 404) return 'check PDNS_API_URL and PDNS_SERVER_ID (the id in /api/v1/servers/ID; usually localhost)';
  if (res.status === 422) return 'PowerDNS refused the change; the message above says why';
  return 'check the PowerDNS log (journalctl -u pdns) for this request';
}

export function baseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw dnsError(NAME, `PDNS_API_URL "${raw}" is not a URL`, { hint: 'use for example http://127.0.0.1:8081' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw dnsError(NAME, `PDNS_API_URL "${raw}" is not an http(s) URL`, { hint: 'use for example http://127.0.0.1:8081' });
  }
  return url.toString().replace(/\/+$/, '').replace(/\/api(\/v1)?$/, '');
}

/** TXT content in PowerDNS's zone-file syntax: one quoted string, with `"` and `\` escaped. */
export function quoteTxt(value: string): string {
  return `"${value.replace(/[\\"]/g, (m) => `\\${m}`)}"`;
}

function create(ctx: ProviderContext) {
  const env = readProviderEnv(meta, ctx.env);
  const base = baseUrl(env.need('PDNS_API_URL'));
  const apiKey = env.need('PDNS_API_KEY');
  const serverId = env.get('PDNS_SERVER_ID') ?? 'localhost';
  const secrets = env.secrets;
  const log = providerLog(NAME, ctx, secrets);
  const http = createHttp({ provider: NAME, ctx, secrets, describe });
  const zonesUrl = `${base}/api/v1/servers/${encodeURIComponent(serverId)}/zones`;

  async function call(what: string, method: string, url: string, body?: unknown, okStatuses: number[] = []): Promise<ApiResponse> {
    const res = await http(what, () => ({
      method,
      url,
      headers: { 'X-API-Key': apiKey, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    }));
    if ((res.status >= 200 && res.status < 300) || okStatuses.includes(res.status)) return res;
    throw apiFailure({ provider: NAME, describe, secrets }, what, res, hintFor(res));
  }

  const zoneUrl = (zone: PdnsZone) => `${zonesUrl}/${encodeURIComponent(zone.id)}`;

  async function readRRset(zone: PdnsZone, fqdn: string): Promise<RRset | undefined> {
    // rrset_name/rrset_type narrow the answer on PowerDNS 4.7+; older versions send the whole zone.
    const query = `?rrset_name=${encodeURIComponent(`${fqdn}.`)}&rrset_type=TXT`;
    const res = await call(`read TXT at ${fqdn}`, 'GET', `${zoneUrl(zone)}${query}`);
    const rrsets = (res.json as { rrsets?: RRset[] } | undefined)?.rrsets ?? [];
    return rrsets.find((r) => r.type === 'TXT' && normalizeName(r.name) === fqdn);
  }

  async function write(zone: PdnsZone, fqdn: string, ttl: number, contents: string[]): Promise<void> {
    const rrset = contents.length === 0
      ? { name: `${fqdn}.`, type: 'TXT', changetype: 'DELETE' }
      : { name: `${fqdn}.`, type: 'TXT', ttl, changetype: 'REPLACE', records: contents.map((content) => ({ content, disabled: false })) };
    await call(`${contents.length === 0 ? 'delete' : 'replace'} TXT at ${fqdn}`, 'PATCH', zoneUrl(zone), { rrsets: [rrset] });
    // Secondaries of a primary zone hear of the change now rather than at their next refresh.
    if (/^(master|primary)$/i.test(zone.kind)) {
      await call(`notify secondaries of ${zone.name}`, 'PUT', `${zoneUrl(zone)}/notify`).catch((err: unknown) => {
        log('warn', `could not queue NOTIFY for ${zone.name}: ${(err as Error).message}`);
      });
    }
  }

  // PowerDNS answers a bare 404 both for a missing zone and for a wrong server id: the first 404 checks the latter.
  let serverChecked: Promise<void> | undefined;
  const checkServer = () => (serverChecked ??= call(`look up server ${serverId}`, 'GET', `${base}/api/v1/servers/${encodeURIComponent(serverId)}`, undefined, [404])
    .then((res) => {
      if (res.status === 404) {
        throw dnsError(NAME, `the API at ${base} has no server "${serverId}"`, { hint: 'set PDNS_SERVER_ID to the id GET /api/v1/servers lists (usually localhost), or check PDNS_API_URL' });
      }
    }));

  const api: RecordApi<PdnsZone> = {
    async findZone(name) {
      const res = await call(`look up zone ${name}`, 'GET', `${zonesUrl}/${encodeURIComponent(`${name}.`)}?rrsets=false`, undefined, [404, 422]);
      if (res.status === 404 || res.status === 422) {
        await checkServer();
        return undefined;
      }
      const zone = res.json as { id?: string; name?: string; kind?: string } | undefined;
      return { name, id: zone?.id ?? `${name}.`, kind: zone?.kind ?? 'Native' };
    },
    async list(zone, fqdn) {
      const rrset = await readRRset(zone, fqdn);
      // The id carries the name too: remove() re-reads the RRset it belongs to.
      return (rrset?.records ?? []).map((r): RemoteRecord => ({ id: `${fqdn} ${r.content}`, value: r.content }));
    },
    async add(zone, fqdn, value, ttl) {
      const current = (await readRRset(zone, fqdn))?.records.map((r) => r.content) ?? [];
      const content = quoteTxt(value);
      if (current.includes(content)) return;
      await write(zone, fqdn, ttl, [...current, content]);
    },
    async remove(zone, record) {
      const cut = record.id.indexOf(' ');
      const fqdn = record.id.slice(0, cut);
      const content = record.id.slice(cut + 1);
      const rrset = await readRRset(zone, fqdn);
      const current = rrset?.records.map((r) => r.content) ?? [];
      if (!current.includes(content)) return;
      await write(zone, fqdn, rrset?.ttl ?? 60, current.filter((c) => c !== content));
    },
  };
  return apiProvider({ name: NAME, api, log, secrets });
}

export const factory: ProviderFactory = { meta, create };
