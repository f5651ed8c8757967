import crypto from 'node:crypto';
import { Faults, norm, requestId, sameSignature, serve, ZoneStore, type FakeAnswer, type FakeDnsApi, type FakeDnsOptions } from './common.js';

/**
 * A fake Alidns RPC API (2015-01-09): DescribeDomainRecords, AddDomainRecord, DeleteDomainRecord. It recomputes the
 * HMAC-SHA1 signature of every request from the raw query with its own percent-encoder (written independently of
 * src/dns/providers/aliyun/sign.ts), refuses reused nonces and stale timestamps, and answers errors the way Alibaba
 * does: an HTTP 4xx with {RequestId, HostId, Code, Message, Recommend}.
 */
export interface FakeAliyunOptions extends FakeDnsOptions {
  accessKeyId?: string;
  accessKeySecret?: string;
}

/** RFC 3986 over the UTF-8 bytes: only A-Z a-z 0-9 - _ . ~ stay as they are. */
function encode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-_.~]/.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The query as sent, decoded without URLSearchParams' "+ means space" (Alibaba never sends +). */
function parseQuery(raw: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const part of raw.split('&').filter(Boolean)) {
    const eq = part.indexOf('=');
    const key = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    params.set(key, eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1)));
  }
  return params;
}

function expectedSignature(method: string, params: Map<string, string>, secret: string): { signature: string; toSign: string } {
  const pairs = [...params.entries()].filter(([k]) => k !== 'Signature').sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const canonical = pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&');
  const toSign = `${method}&${encode('/')}&${encode(canonical)}`;
  return { signature: crypto.createHmac('sha1', `${secret}&`).update(toSign).digest('base64'), toSign };
}

const error = (status: number, code: string, message: string): FakeAnswer => ({
  status,
  body: { RequestId: requestId(), HostId: 'alidns.aliyuncs.com', Code: code, Message: message, Recommend: `https://api.aliyun.com/troubleshoot?q=${code}&product=Alidns` },
});

const FAULTS: Record<number, [string, string]> = {
  429: ['Throttling.User', 'Request was denied due to user flow control.'],
  500: ['InternalError', 'The request processing has failed due to some unknown error, exception or failure.'],
  503: ['ServiceUnavailable', 'The request has failed due to a temporary failure of the server.'],
};

export async function startFakeAliyun(opts: FakeAliyunOptions): Promise<FakeDnsApi> {
  const keyId = opts.accessKeyId ?? 'LTAI5tFakeAccessKeyId01';
  const secret = opts.accessKeySecret ?? 'fake-aliyun-secret-Qx81pZ';
  const store = new ZoneStore(opts);
  const faults = new Faults();
  const nonces = new Set<string>();
  const requests: FakeDnsApi['requests'] = [];

  function authenticate(method: string, p: Map<string, string>): FakeAnswer | undefined {
    for (const name of ['AccessKeyId', 'Signature', 'SignatureMethod', 'SignatureVersion', 'SignatureNonce', 'Timestamp', 'Version', 'Action']) {
      if (!p.get(name)) return error(400, `Missing${name}`, `${name} is mandatory for this action.`);
    }
    if (p.get('SignatureMethod') !== 'HMAC-SHA1' || p.get('SignatureVersion') !== '1.0') return error(400, 'InvalidSignatureMethod', 'Specified signature method is not supported.');
    if (p.get('Version') !== '2015-01-09') return error(400, 'InvalidVersion', 'Specified parameter Version is not valid.');
    const ts = p.get('Timestamp')!;
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(ts)) return error(400, 'InvalidTimeStamp.Format', 'Specified time stamp or date value is not well formatted.');
    if (Math.abs(Date.parse(ts) - Date.now()) > 15 * 60_000) return error(400, 'InvalidTimeStamp.Expired', 'Specified time stamp or date value is expired.');
    if (p.get('AccessKeyId') !== keyId) return error(404, 'InvalidAccessKeyId.NotFound', 'Specified access key is not found.');
    const { signature, toSign } = expectedSignature(method, p, secret);
    if (!sameSignature(p.get('Signature')!, signature)) {
      return error(400, 'SignatureDoesNotMatch', `Specified signature is not matched with our calculation. server string to sign is:${toSign}`);
    }
    const nonce = p.get('SignatureNonce')!;
    if (nonces.has(nonce)) return error(400, 'SignatureNonceUsed', 'Specified signature nonce was used already.');
    nonces.add(nonce);
    return undefined;
  }

  async function act(p: Map<string, string>): Promise<FakeAnswer> {
    const domain = norm(p.get('DomainName') ?? '');
    const needZone = () => (store.hasZone(domain) ? undefined : error(400, 'InvalidDomainName.NoExist', 'The specified domain name does not exist. Refresh the page and try again.'));
    switch (p.get('Action')) {
      case 'DescribeDomainRecords': {
        const missing = needZone();
        if (missing) return missing;
        const rrWord = (p.get('RRKeyWord') ?? '').toLowerCase();
        const typeWord = (p.get('TypeKeyWord') ?? '').toUpperCase();
        const all = store.list(domain, (r) => relative(r.fqdn, domain).includes(rrWord) && (!typeWord || r.type.includes(typeWord)));
        const size = Math.min(Number(p.get('PageSize') ?? 20), 500);
        const page = Number(p.get('PageNumber') ?? 1);
        const slice = all.slice((page - 1) * size, page * size);
        const Record = slice.map((r) => ({ DomainName: domain, RecordId: r.id, RR: relative(r.fqdn, domain), Type: r.type, Value: r.value, TTL: r.ttl, Line: 'default', Status: 'ENABLE', Locked: false, Weight: 1 }));
        return { status: 200, body: { RequestId: requestId(), TotalCount: all.length, PageNumber: page, PageSize: size, DomainRecords: { Record } } };
      }
      case 'AddDomainRecord': {
        const missing = needZone();
        if (missing) return missing;
        if (faults.takeAdd()) return error(403, 'Forbidden.RAM', 'User not authorized to operate on the specified resource, or this API doesn\'t support RAM.');
        const rr = p.get('RR');
        const type = p.get('Type');
        const value = p.get('Value');
        if (!rr || !type || !value) return error(400, 'MissingParameter', 'RR, Type and Value are mandatory for this action.');
        const fqdn = rr === '@' ? domain : `${rr}.${domain}`;
        if (store.list(domain, (r) => r.fqdn === norm(fqdn) && r.type === type && r.value === value).length) {
          return error(400, 'DomainRecordDuplicate', 'The DNS record already exists.');
        }
        const r = await store.add(domain, fqdn, type, value, Number(p.get('TTL') ?? 600));
        return { status: 200, body: { RequestId: requestId(), RecordId: r.id } };
      }
      case 'DeleteDomainRecord': {
        const r = await store.remove(p.get('RecordId') ?? '');
        if (!r) return error(400, 'DomainRecordNotBelongToUser', 'The DNS record does not belong to you.');
        return { status: 200, body: { RequestId: requestId(), RecordId: r.id } };
      }
      default:
        return error(404, 'InvalidAction.NotFound', 'Specified api is not found, please check your url and method.');
    }
  }

  const server = await serve(async (req) => {
    const raw = (req.url ?? '').split('?')[1] ?? '';
    const p = parseQuery(raw);
    const action = p.get('Action') ?? '?';
    const record = (a: FakeAnswer) => (requests.push({ action, status: a.status }), a);
    const fault = faults.takeStatus();
    if (fault !== undefined) {
      const [code, message] = FAULTS[fault] ?? ['InternalError', 'fault'];
      return record(error(fault, code, message));
    }
    return record(authenticate(req.method ?? 'GET', p) ?? (await act(p)));
  });

  const endpoint = `${server.url}/`;
  return {
    endpoint,
    env: { Ali_Key: keyId, Ali_Secret: secret, GUARDCTL_ALIYUN_ENDPOINT: endpoint },
    secrets: [keyId, secret],
    values: (fqdn, zone) => store.values(fqdn, zone),
    seed: (fqdn, value) => void store.add(store.zoneOf(fqdn) ?? '', fqdn, 'TXT', value, 600),
    failNext: (count, status) => faults.failNext(count, status),
    failAdds: (count) => faults.failAdds(count),
    requests,
    close: server.close,
  };
}

function relative(fqdn: string, zone: string): string {
  return fqdn === zone ? '@' : fqdn.slice(0, -(zone.length + 1));
}
