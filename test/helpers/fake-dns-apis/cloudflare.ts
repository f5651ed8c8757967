import crypto from 'node:crypto';
import { Faults, norm, sameSignature, serve, ZoneStore, type FakeAnswer, type FakeDnsApi, type FakeDnsOptions } from './common.js';

/**
 * A fake Cloudflare API v4: GET /zones?name=, and GET/POST/DELETE on /zones/:id/dns_records. It checks the Bearer
 * token on every request and answers in Cloudflare's envelope ({success, errors[{code, message}], messages, result}).
 */
export interface FakeCloudflareOptions extends FakeDnsOptions {
  token?: string;
}

const BASE = '/client/v4';

const ok = (result: unknown, extra: Record<string, unknown> = {}): FakeAnswer => ({ status: 200, body: { success: true, errors: [], messages: [], result, ...extra } });
const fail = (status: number, code: number, message: string): FakeAnswer => ({ status, body: { success: false, errors: [{ code, message }], messages: [], result: null } });

const FAULTS: Record<number, [number, string]> = {
  429: [971, 'Please wait and consider throttling your request speed'],
  500: [10000, 'Internal server error'],
  503: [10000, 'Service temporarily unavailable'],
};

export async function startFakeCloudflare(opts: FakeCloudflareOptions): Promise<FakeDnsApi> {
  const token = opts.token ?? 'fake-cf-token-9Zt2LmQw7v';
  const store = new ZoneStore(opts);
  const faults = new Faults();
  const requests: FakeDnsApi['requests'] = [];
  const zoneIds = new Map(store.zones.map((z) => [crypto.createHash('md5').update(z).digest('hex'), z]));
  const idOf = (zone: string) => [...zoneIds].find(([, z]) => z === zone)?.[0] ?? '';

  function authenticate(header: string | undefined): FakeAnswer | undefined {
    const m = /^Bearer (\S+)$/.exec(header ?? '');
    if (!m) return { status: 400, body: { success: false, errors: [{ code: 6003, message: 'Invalid request headers', error_chain: [{ code: 6111, message: 'Invalid format for Authorization header' }] }], messages: [], result: null } };
    if (!sameSignature(m[1]!, token)) return fail(403, 10000, 'Authentication error');
    return undefined;
  }

  const record = (r: { id: string; fqdn: string; value: string; ttl: number; zone: string }) => ({
    id: r.id, zone_id: idOf(r.zone), zone_name: r.zone, name: r.fqdn, type: 'TXT', content: r.value, ttl: r.ttl, proxiable: false, proxied: false,
  });

  async function route(method: string, url: URL, body: string): Promise<[string, FakeAnswer]> {
    const path = url.pathname.startsWith(BASE) ? url.pathname.slice(BASE.length) : url.pathname;
    if (method === 'GET' && path === '/zones') {
      const name = norm(url.searchParams.get('name') ?? '');
      const zones = store.zones.filter((z) => !name || z === name).map((z) => ({ id: idOf(z), name: z, status: 'active' }));
      return ['zones.list', ok(zones, { result_info: { page: 1, per_page: 20, count: zones.length, total_count: zones.length, total_pages: 1 } })];
    }
    const m = /^\/zones\/([0-9a-f]+)\/dns_records(?:\/([^/]+))?$/.exec(path);
    const zone = m ? zoneIds.get(m[1]!) : undefined;
    if (!m || !zone) return ['unknown', fail(404, 7003, 'Could not route to ' + path + ', perhaps your object identifier is invalid?')];
    const recordId = m[2] ? decodeURIComponent(m[2]) : undefined;
    if (method === 'GET' && !recordId) {
      const name = url.searchParams.get('name');
      const type = url.searchParams.get('type');
      const perPage = Number(url.searchParams.get('per_page') ?? 100);
      const page = Number(url.searchParams.get('page') ?? 1);
      const all = store.list(zone, (r) => (!name || r.fqdn === norm(name)) && (!type || r.type === type));
      const result = all.slice((page - 1) * perPage, page * perPage).map(record);
      const info = { page, per_page: perPage, count: result.length, total_count: all.length, total_pages: Math.max(1, Math.ceil(all.length / perPage)) };
      return ['dns_records.list', ok(result, { result_info: info })];
    }
    if (method === 'POST' && !recordId) {
      if (faults.takeAdd()) return ['dns_records.create', fail(400, 1004, 'DNS Validation Error')];
      let input: { type?: string; name?: string; content?: string; ttl?: number };
      try {
        input = JSON.parse(body) as typeof input;
      } catch {
        return ['dns_records.create', fail(400, 9207, 'Request body is invalid.')];
      }
      if (!input.type || !input.name || input.content === undefined) return ['dns_records.create', fail(400, 9000, 'DNS name, type and content are required')];
      const fqdn = norm(input.name);
      if (fqdn !== zone && !fqdn.endsWith(`.${zone}`)) return ['dns_records.create', fail(400, 9005, 'Name is not within the zone')];
      if (store.list(zone, (r) => r.fqdn === fqdn && r.type === input.type && r.value === input.content).length) {
        return ['dns_records.create', fail(400, 81058, 'An identical record already exists.')];
      }
      const r = await store.add(zone, fqdn, input.type, input.content, input.ttl ?? 1);
      return ['dns_records.create', ok(record(r))];
    }
    if (method === 'DELETE' && recordId) {
      const existing = store.find(recordId);
      if (!existing || existing.zone !== zone) return ['dns_records.delete', fail(404, 81044, 'Record does not exist.')];
      await store.remove(recordId);
      return ['dns_records.delete', ok({ id: recordId })];
    }
    return ['unknown', fail(405, 10405, 'Method not allowed')];
  }

  const server = await serve(async (req, body) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const fault = faults.takeStatus();
    if (fault !== undefined) {
      const [code, message] = FAULTS[fault] ?? [10000, 'fault'];
      requests.push({ action: 'fault', status: fault });
      return fail(fault, code, message);
    }
    const denied = authenticate(req.headers.authorization);
    if (denied) {
      requests.push({ action: 'auth', status: denied.status });
      return denied;
    }
    const [action, answer] = await route(req.method ?? 'GET', url, body);
    requests.push({ action, status: answer.status });
    return answer;
  });

  const endpoint = `${server.url}${BASE}`;
  return {
    endpoint,
    env: { CF_Token: token, GUARDCTL_CLOUDFLARE_ENDPOINT: endpoint },
    secrets: [token],
    values: (fqdn, zone) => store.values(fqdn, zone),
    seed: (fqdn, value) => void store.add(store.zoneOf(fqdn) ?? '', fqdn, 'TXT', value, 120),
    failNext: (count, status) => faults.failNext(count, status),
    failAdds: (count) => faults.failAdds(count),
    requests,
    close: server.close,
  };
}
