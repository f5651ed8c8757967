import { apiProvider, type RecordApi, type RemoteRecord } from '../../api-provider.js';
import { readProviderEnv } from '../../env.js';
import { providerLog } from '../../errors.js';
import { apiFailure, createHttp, endpointUrl, type ApiResponse } from '../../http.js';
import type { ProviderContext, ProviderFactory, ProviderMeta } from '../../types.js';
import { relativeName } from '../../zone.js';
import { authorization } from './sign.js';

/**
 * DNSPod through Tencent Cloud API 3.0 (service dnspod, version 2021-03-23): CreateRecord, DescribeRecordList and
 * DeleteRecord, JSON POSTs signed with TC3-HMAC-SHA256. Tencent answers errors with HTTP 200 and
 * Response.Error, including "rate limited" (RequestLimitExceeded), which is retried like a 429, and "no records"
 * (ResourceNotFound.NoDataOfRecord), which is an empty list, not an error.
 */
const NAME = 'dnspod';
const DEFAULT_ENDPOINT = 'https://dnspod.tencentcloudapi.com/';
const SERVICE = 'dnspod';
const VERSION = '2021-03-23';
/** The free plan refuses TTLs under 600 s. */
const MIN_TTL = 600;
/** DNSPod's name for the default resolution line; CreateRecord requires one. */
const DEFAULT_LINE = '默认';
const NO_RECORDS = 'ResourceNotFound.NoDataOfRecord';
const NO_ZONE = ['InvalidParameterValue.DomainNotExists', 'ResourceNotFound.NoDataOfDomain', 'InvalidParameter.DomainInvalid', 'FailedOperation.NotDomainOwner'];

export const meta: ProviderMeta = {
  name: NAME,
  description: 'DNSPod (Tencent Cloud DNS), API 3.0 with a SecretId/SecretKey pair',
  env: [
    { name: 'TENCENTCLOUD_SECRET_ID', aliases: ['Tencent_SecretId'], required: true, secret: true, description: 'SecretId of a CAM user allowed to manage the domain\'s records.' },
    { name: 'TENCENTCLOUD_SECRET_KEY', aliases: ['Tencent_SecretKey'], required: true, secret: true, description: 'SecretKey of that CAM user.' },
    { name: 'GUARDCTL_DNSPOD_ENDPOINT', required: false, secret: false, description: `API endpoint (default ${DEFAULT_ENDPOINT}).` },
  ],
  parallel: true,
  propagationTimeoutSec: 300,
  pollIntervalSec: 10,
  docs: 'https://www.tencentcloud.com/document/product/1157/51290',
};

interface TcAnswer<T> {
  Response?: T & { Error?: { Code: string; Message?: string }; RequestId?: string };
}

const errorOf = (res: ApiResponse) => (res.json as TcAnswer<object> | undefined)?.Response?.Error;

function describe(res: ApiResponse): string {
  const e = errorOf(res);
  return e ? `${e.Code}: ${String(e.Message ?? '').slice(0, 200)}` : '';
}

function hintFor(code: string | undefined): string {
  if (code === 'AuthFailure.SignatureExpire') return 'check this machine\'s clock (timedatectl): Tencent Cloud refuses requests more than 5 minutes off';
  if (code === 'AuthFailure.UnauthorizedOperation' || code?.startsWith('OperationDenied')) return 'allow the CAM user the DNSPod record actions (for example with the QcloudDNSPodFullAccess policy)';
  if (code?.startsWith('AuthFailure')) return 'check TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY: they must be one API key pair (CAM console, API keys)';
  return 'look the error code up in the DNSPod API documentation (error codes)';
}

function create(ctx: ProviderContext) {
  const env = readProviderEnv(meta, ctx.env);
  const secretId = env.need('TENCENTCLOUD_SECRET_ID');
  const secretKey = env.need('TENCENTCLOUD_SECRET_KEY');
  const endpoint = endpointUrl(NAME, 'GUARDCTL_DNSPOD_ENDPOINT', env.get('GUARDCTL_DNSPOD_ENDPOINT') ?? DEFAULT_ENDPOINT);
  const secrets = env.secrets;
  const retryable = (res: ApiResponse) => /^(RequestLimitExceeded|InternalError)/.test(errorOf(res)?.Code ?? '');
  const http = createHttp({ provider: NAME, ctx, secrets, describe, retryable });

  async function call<T>(action: string, what: string, params: Record<string, unknown>, okCodes: string[] = []): Promise<{ body?: T; code?: string }> {
    const payload = JSON.stringify(params);
    const res = await http(what, () => {
      const timestampSec = Math.floor(Date.now() / 1000);
      // fetch sends Host from the URL itself; it is listed here only to be signed.
      const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', host: endpoint.host, 'x-tc-action': action };
      const auth = authorization({ method: 'POST', headers, signedHeaders: ['content-type', 'host', 'x-tc-action'], payload, secretId, secretKey, service: SERVICE, timestampSec });
      const { host: _host, ...sent } = headers;
      return {
        method: 'POST',
        url: endpoint.toString(),
        headers: { ...sent, 'x-tc-timestamp': String(timestampSec), 'x-tc-version': VERSION, authorization: auth },
        body: payload,
      };
    });
    const error = errorOf(res);
    if (res.status === 200 && !error && res.json) return { body: (res.json as TcAnswer<T>).Response };
    if (error && okCodes.includes(error.Code)) return { code: error.Code };
    throw apiFailure({ provider: NAME, describe, secrets }, what, res, hintFor(error?.Code), error?.Code);
  }

  type RecordList = { RecordList?: { RecordId: number; Name: string; Type: string; Value: string }[]; RecordCountInfo?: { TotalCount?: number } };

  const api: RecordApi<{ name: string }> = {
    async findZone(name) {
      const { code } = await call('DescribeRecordList', `look up zone ${name}`, { Domain: name, Limit: 1 }, [NO_RECORDS, ...NO_ZONE]);
      return code && code !== NO_RECORDS ? undefined : { name };
    },
    async list(zone, fqdn) {
      const rr = relativeName(fqdn, zone.name);
      const out: RemoteRecord[] = [];
      const limit = 3000; // the API's maximum page
      for (let offset = 0; offset < 20 * limit; offset += limit) {
        const { body } = await call<RecordList>('DescribeRecordList', `list TXT records at ${fqdn}`, {
          Domain: zone.name, Subdomain: rr, RecordType: 'TXT', Limit: limit, Offset: offset,
        }, [NO_RECORDS]);
        const records = body?.RecordList ?? [];
        for (const r of records) if (r.Type === 'TXT' && r.Name.toLowerCase() === rr) out.push({ id: String(r.RecordId), value: r.Value });
        if (records.length < limit || offset + limit >= (body?.RecordCountInfo?.TotalCount ?? 0)) break;
      }
      return out;
    },
    async add(zone, fqdn, value, ttl) {
      await call('CreateRecord', `add TXT record at ${fqdn}`, {
        Domain: zone.name, SubDomain: relativeName(fqdn, zone.name), RecordType: 'TXT', RecordLine: DEFAULT_LINE, Value: value, TTL: ttl,
      }, ['InvalidParameter.DomainRecordExist']);
    },
    async remove(zone, record) {
      await call('DeleteRecord', `delete TXT record ${record.id}`, { Domain: zone.name, RecordId: Number(record.id) }, [NO_RECORDS]);
    },
  };
  return apiProvider({ name: NAME, api, log: providerLog(NAME, ctx, secrets), secrets, minTtl: MIN_TTL });
}

export const factory: ProviderFactory = { meta, create };
