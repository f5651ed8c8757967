import { apiProvider, type RecordApi, type RemoteRecord } from '../../api-provider.js';
import { readProviderEnv } from '../../env.js';
import { providerLog } from '../../errors.js';
import { apiFailure, createHttp, endpointUrl, type ApiResponse } from '../../http.js';
import type { ProviderContext, ProviderFactory, ProviderMeta } from '../../types.js';

/**
 * Cloudflare through API v4 with a scoped API token (Bearer): zones looked up by name (GET /zones?name=), TXT
 * records listed by exact name, created and deleted by id. Names are absolute in this API.
 */
const NAME = 'cloudflare';
const DEFAULT_ENDPOINT = 'https://api.cloudflare.com/client/v4';
/** lego's minimum: lower TTLs are refused on some plans. */
const MIN_TTL = 120;
const DUPLICATE = 81058; // "An identical record already exists."
const NOT_FOUND = 81044; // "Record does not exist."

export const meta: ProviderMeta = {
  name: NAME,
  description: 'Cloudflare DNS, API v4 with an API token',
  env: [
    { name: 'CF_Token', aliases: ['CLOUDFLARE_DNS_API_TOKEN', 'CF_DNS_API_TOKEN'], required: true, secret: true, description: 'API token with Zone:Read and DNS:Edit permissions on the zone (not the Global API Key).' },
    { name: 'GUARDCTL_CLOUDFLARE_ENDPOINT', required: false, secret: false, description: `API base URL (default ${DEFAULT_ENDPOINT}).` },
  ],
  parallel: true,
  propagationTimeoutSec: 120,
  pollIntervalSec: 5,
  docs: 'https://developers.cloudflare.com/api/resources/dns/subresources/records/',
};

interface Envelope<T> {
  success?: boolean;
  errors?: { code: number; message: string }[];
  result?: T;
  result_info?: { page?: number; total_pages?: number };
}

const codesOf = (res: ApiResponse) => ((res.json as Envelope<unknown> | undefined)?.errors ?? []).map((e) => e.code);

function describe(res: ApiResponse): string {
  const errors = (res.json as Envelope<unknown> | undefined)?.errors ?? [];
  return errors.map((e) => `${e.code}: ${String(e.message).slice(0, 200)}`).join('; ');
}

function hintFor(res: ApiResponse): string {
  const codes = codesOf(res);
  if (res.status === 401 || res.status === 403 || codes.some((c) => [6003, 6111, 9109, 10000].includes(c))) {
    return 'check CF_Token: an API token (not the Global API Key) with Zone:Read and DNS:Edit on this zone';
  }
  return 'see the error code in Cloudflare\'s API documentation';
}

function create(ctx: ProviderContext) {
  const env = readProviderEnv(meta, ctx.env);
  const token = env.need('CF_Token');
  const base = endpointUrl(NAME, 'GUARDCTL_CLOUDFLARE_ENDPOINT', env.get('GUARDCTL_CLOUDFLARE_ENDPOINT') ?? DEFAULT_ENDPOINT).toString().replace(/\/+$/, '');
  const secrets = env.secrets;
  const http = createHttp({ provider: NAME, ctx, secrets, describe });

  async function call<T>(what: string, method: string, path: string, body?: unknown, okCodes: number[] = []): Promise<Envelope<T>> {
    const res = await http(what, () => ({
      method,
      url: `${base}${path}`,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    }));
    const env = res.json as Envelope<T> | undefined;
    if (res.status >= 200 && res.status < 300 && env?.success !== false) return env ?? {};
    if (codesOf(res).some((c) => okCodes.includes(c))) return {};
    throw apiFailure({ provider: NAME, describe, secrets }, what, res, hintFor(res), codesOf(res)[0]?.toString());
  }

  const api: RecordApi<{ name: string; id: string }> = {
    async findZone(name) {
      const answer = await call<{ id: string; name: string }[]>(`look up zone ${name}`, 'GET', `/zones?name=${encodeURIComponent(name)}`);
      const zone = (answer.result ?? []).find((z) => z.name.toLowerCase() === name);
      return zone ? { name, id: zone.id } : undefined;
    },
    async list(zone, fqdn) {
      const out: RemoteRecord[] = [];
      for (let page = 1; page <= 20; page++) {
        const q = new URLSearchParams({ type: 'TXT', name: fqdn, per_page: '100', page: String(page) });
        const answer = await call<{ id: string; name: string; content: string }[]>(`list TXT records at ${fqdn}`, 'GET', `/zones/${zone.id}/dns_records?${q}`);
        for (const r of answer.result ?? []) if (r.name.toLowerCase() === fqdn) out.push({ id: r.id, value: r.content });
        if (page >= (answer.result_info?.total_pages ?? 1)) break;
      }
      return out;
    },
    async add(zone, fqdn, value, ttl) {
      await call(`add TXT record at ${fqdn}`, 'POST', `/zones/${zone.id}/dns_records`, { type: 'TXT', name: fqdn, content: value, ttl }, [DUPLICATE]);
    },
    async remove(zone, record) {
      await call(`delete TXT record ${record.id}`, 'DELETE', `/zones/${zone.id}/dns_records/${encodeURIComponent(record.id)}`, undefined, [NOT_FOUND]);
    },
  };
  return apiProvider({ name: NAME, api, log: providerLog(NAME, ctx, secrets), secrets, minTtl: MIN_TTL });
}

export const factory: ProviderFactory = { meta, create };
