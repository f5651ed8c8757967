import crypto from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Faults, norm, requestId, sameSignature, serve, ZoneStore, type FakeAnswer, type FakeDnsApi, type FakeDnsOptions } from './common.js';

/**
 * A fake DNSPod (Tencent Cloud API 3.0, version 2021-03-23): DescribeRecordList, CreateRecord, DeleteRecord. It
 * recomputes the TC3-HMAC-SHA256 signature from the request as received (its own implementation, not the
 * provider's), refuses stale timestamps, and answers like Tencent: HTTP 200 with Response.Error for API errors.
 */
export interface FakeDnspodOptions extends FakeDnsOptions {
  secretId?: string;
  secretKey?: string;
}

const sha256 = (s: string) => crypto.createHash('sha256').update(s, 'utf8').digest('hex');
const hmac = (key: Buffer | string, s: string) => crypto.createHmac('sha256', key).update(s, 'utf8').digest();

const error = (code: string, message: string, status = 200): FakeAnswer => ({ status, body: { Response: { Error: { Code: code, Message: message }, RequestId: requestId() } } });
const ok = (fields: Record<string, unknown>): FakeAnswer => ({ status: 200, body: { Response: { ...fields, RequestId: requestId() } } });

/** Recomputes the signature the request claims, from the headers it actually carries. */
function verify(headers: IncomingHttpHeaders, body: string, secretId: string, secretKey: string): FakeAnswer | undefined {
  const auth = headers.authorization ?? '';
  const m = /^TC3-HMAC-SHA256 Credential=([^/]+)\/(\d{4}-\d\d-\d\d)\/([^/]+)\/tc3_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return error('AuthFailure.InvalidAuthorization', 'Authorization header is not in the TC3-HMAC-SHA256 format.');
  const [, id, date, service, signedHeaders, signature] = m as unknown as [string, string, string, string, string, string];
  if (id !== secretId) return error('AuthFailure.SecretIdNotFound', 'The SecretId is not found, please ensure that your SecretId is correct.');
  if (service !== 'dnspod') return error('AuthFailure.InvalidAuthorization', `Credential scope service ${service} is not dnspod.`);
  const ts = Number(headers['x-tc-timestamp']);
  if (!Number.isInteger(ts) || Math.abs(ts - Date.now() / 1000) > 300) return error('AuthFailure.SignatureExpire', 'Signature expired. Timestamp and server time cannot differ by more than 5 minutes.');
  if (new Date(ts * 1000).toISOString().slice(0, 10) !== date) return error('AuthFailure.SignatureFailure', 'Credential date does not match the timestamp.');
  const names = signedHeaders.split(';');
  if (!names.includes('content-type') || !names.includes('host')) return error('AuthFailure.SignatureFailure', 'content-type and host must be signed.');
  const canonicalHeaders = [...names].sort().map((n) => `${n}:${String(headers[n] ?? '').trim().toLowerCase()}\n`).join('');
  const canonical = `POST\n/\n\n${canonicalHeaders}\n${[...names].sort().join(';')}\n${sha256(body)}`;
  const toSign = `TC3-HMAC-SHA256\n${ts}\n${date}/${service}/tc3_request\n${sha256(canonical)}`;
  const key = hmac(hmac(hmac(`TC3${secretKey}`, date), service), 'tc3_request');
  const expected = crypto.createHmac('sha256', key).update(toSign).digest('hex');
  if (!sameSignature(signature, expected)) return error('AuthFailure.SignatureFailure', 'The provided credentials could not be validated. Please check your signature is correct.');
  return undefined;
}

export interface FakeDnspodApi extends FakeDnsApi {
  /** Answers the next `count` requests with HTTP 200 and RequestLimitExceeded, as Tencent rate-limits. */
  throttleNext(count: number): void;
}

export async function startFakeDnspod(opts: FakeDnspodOptions): Promise<FakeDnspodApi> {
  const secretId = opts.secretId ?? 'AKIDfakeDnspodSecretId0001';
  const secretKey = opts.secretKey ?? 'fake-dnspod-key-Hq4Rz7Yt';
  const store = new ZoneStore(opts);
  const faults = new Faults();
  let throttled = 0;
  const requests: FakeDnsApi['requests'] = [];

  async function act(action: string, p: Record<string, unknown>): Promise<FakeAnswer> {
    const domain = norm(String(p.Domain ?? ''));
    if (!store.hasZone(domain)) return error('InvalidParameterValue.DomainNotExists', '当前域名有误，请返回重新操作。');
    const rrOf = (fqdn: string) => (fqdn === domain ? '@' : fqdn.slice(0, -(domain.length + 1)));
    switch (action) {
      case 'DescribeRecordList': {
        const sub = p.Subdomain === undefined ? undefined : String(p.Subdomain).toLowerCase();
        const all = store.list(domain, (r) => (sub === undefined || rrOf(r.fqdn) === sub) && (!p.RecordType || r.type === p.RecordType));
        if (all.length === 0) return error('ResourceNotFound.NoDataOfRecord', '记录列表为空。');
        const offset = Number(p.Offset ?? 0);
        const limit = Math.min(Number(p.Limit ?? 100), 3000);
        const RecordList = all.slice(offset, offset + limit).map((r) => ({
          RecordId: Number(r.id), Value: r.value, Status: 'ENABLE', UpdatedOn: '2026-01-01 00:00:00', Name: rrOf(r.fqdn), Line: '默认', LineId: '0',
          Type: r.type, Weight: null, MonitorStatus: '', Remark: '', TTL: r.ttl, MX: 0, DefaultNS: false,
        }));
        return ok({ RecordCountInfo: { SubdomainCount: all.length, ListCount: RecordList.length, TotalCount: all.length }, RecordList });
      }
      case 'CreateRecord': {
        for (const name of ['SubDomain', 'RecordType', 'RecordLine', 'Value']) {
          if (p[name] === undefined || p[name] === '') return error('MissingParameter', `The request is missing a required parameter \`${name}\`.`);
        }
        if (faults.takeAdd()) return error('LimitExceeded.SubdomainRollLimit', '子域名负载均衡数量超出限制。');
        const sub = String(p.SubDomain).toLowerCase();
        const fqdn = sub === '@' ? domain : `${sub}.${domain}`;
        if (store.list(domain, (r) => r.fqdn === fqdn && r.type === p.RecordType && r.value === p.Value).length) {
          return error('InvalidParameter.DomainRecordExist', '记录已经存在，无需再次添加。');
        }
        const r = await store.add(domain, fqdn, String(p.RecordType), String(p.Value), Number(p.TTL ?? 600));
        return ok({ RecordId: Number(r.id) });
      }
      case 'DeleteRecord': {
        const existing = store.find(String(p.RecordId));
        if (!existing || existing.zone !== domain) return error('ResourceNotFound.NoDataOfRecord', '记录列表为空。');
        await store.remove(existing.id);
        return ok({});
      }
      default:
        return error('InvalidAction', `The requested action ${action} does not exist.`);
    }
  }

  const server = await serve(async (req, body) => {
    const action = String(req.headers['x-tc-action'] ?? '?');
    const answer = await (async (): Promise<FakeAnswer> => {
      const fault = faults.takeStatus();
      if (fault !== undefined) return error(fault === 429 ? 'RequestLimitExceeded' : 'InternalError', 'fault injected', fault);
      if (throttled > 0) {
        throttled--;
        return error('RequestLimitExceeded', 'Your current request times equals to `20` in a second, which exceeds the frequency limit `20` for a second.');
      }
      if (req.method !== 'POST') return error('InvalidParameter', 'Only POST with a JSON body is supported here.');
      if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) return error('InvalidParameter', 'Content-Type must be application/json.');
      const denied = verify(req.headers, body, secretId, secretKey);
      if (denied) return denied;
      if (req.headers['x-tc-version'] !== '2021-03-23') return error('NoSuchVersion', 'The requested version does not exist.');
      let params: Record<string, unknown>;
      try {
        params = JSON.parse(body) as Record<string, unknown>;
      } catch {
        return error('InvalidParameter', 'The request body is not valid JSON.');
      }
      return act(action, params);
    })();
    requests.push({ action, status: answer.status });
    return answer;
  });

  const endpoint = `${server.url}/`;
  return {
    endpoint,
    env: { TENCENTCLOUD_SECRET_ID: secretId, TENCENTCLOUD_SECRET_KEY: secretKey, GUARDCTL_DNSPOD_ENDPOINT: endpoint },
    secrets: [secretId, secretKey],
    values: (fqdn, zone) => store.values(fqdn, zone),
    seed: (fqdn, value) => void store.add(store.zoneOf(fqdn) ?? '', fqdn, 'TXT', value, 600),
    failNext: (count, status) => faults.failNext(count, status),
    failAdds: (count) => faults.failAdds(count),
    throttleNext: (count) => void (throttled += count),
    requests,
    close: server.close,
  };
}
