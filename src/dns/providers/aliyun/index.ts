import crypto from 'node:crypto';
import { apiProvider, type RecordApi, type RemoteRecord } from '../../api-provider.js';
import { readProviderEnv } from '../../env.js';
import { providerLog } from '../../errors.js';
import { apiFailure, createHttp, endpointUrl, type ApiResponse } from '../../http.js';
import type { ProviderContext, ProviderFactory, ProviderMeta } from '../../types.js';
import { relativeName } from '../../zone.js';
import { signedQuery, timestamp } from './sign.js';

/**
 * Alibaba Cloud DNS (Alidns) through its RPC API, version 2015-01-09: AddDomainRecord, DescribeDomainRecords and
 * DeleteDomainRecord, signed GET requests. The zone is found with DescribeDomainRecords on each suffix (acme.sh's
 * way): an account that does not hold the domain answers InvalidDomainName.NoExist.
 */
const NAME = 'aliyun';
const DEFAULT_ENDPOINT = 'https://alidns.aliyuncs.com/';
const VERSION = '2015-01-09';
/** The free edition refuses TTLs under 600 s. */
const MIN_TTL = 600;
const NO_ZONE = new Set(['InvalidDomainName.NoExist', 'IncorrectDomainUser', 'InvalidDomainName.Format']);

export const meta: ProviderMeta = {
  name: NAME,
  description: 'Alibaba Cloud DNS (Alidns), RPC API with an AccessKey pair',
  env: [
    { name: 'Ali_Key', aliases: ['ALICLOUD_ACCESS_KEY'], required: true, secret: true, description: 'AccessKey ID of a RAM user allowed to manage the zone\'s records.' },
    { name: 'Ali_Secret', aliases: ['ALICLOUD_SECRET_KEY'], required: true, secret: true, description: 'AccessKey secret of that RAM user.' },
    { name: 'GUARDCTL_ALIYUN_ENDPOINT', required: false, secret: false, description: `API endpoint (default ${DEFAULT_ENDPOINT}).` },
  ],
  parallel: true,
  propagationTimeoutSec: 300,
  pollIntervalSec: 10,
  docs: 'https://www.alibabacloud.com/help/en/dns/api-alidns-2015-01-09-adddomainrecord',
};

interface AliError {
  Code?: string;
  Message?: string;
}

interface AliRecord {
  RR: string;
  Type: string;
  Value: string;
  RecordId: string;
}

interface DescribeAnswer {
  TotalCount?: number;
  DomainRecords?: { Record?: AliRecord[] };
}

const codeOf = (res: ApiResponse) => (res.json as AliError | undefined)?.Code;

function describe(res: ApiResponse): string {
  const body = res.json as AliError | undefined;
  if (!body?.Code) return '';
  const message = (body.Message ?? '').split(' server string to sign is:')[0]?.slice(0, 200);
  return message ? `${body.Code}: ${message}` : body.Code;
}

function hintFor(code: string | undefined): string {
  if (code?.startsWith('InvalidAccessKeyId') || code === 'SignatureDoesNotMatch' || code === 'IncompleteSignature') {
    return 'check Ali_Key and Ali_Secret: they must be one AccessKey pair of an active RAM user';
  }
  if (code?.startsWith('Forbidden')) return 'allow the RAM user alidns:DescribeDomainRecords, AddDomainRecord and DeleteDomainRecord (or attach AliyunDNSFullAccess)';
  if (code === 'InvalidTimeStamp.Expired' || code === 'SignatureNonceUsed') return 'check this machine\'s clock (timedatectl) and run the command again';
  return `look the code up at https://api.aliyun.com/troubleshoot?product=Alidns${code ? `&q=${encodeURIComponent(code)}` : ''}`;
}

function create(ctx: ProviderContext) {
  const env = readProviderEnv(meta, ctx.env);
  const keyId = env.need('Ali_Key');
  const secret = env.need('Ali_Secret');
  const endpoint = endpointUrl(NAME, 'GUARDCTL_ALIYUN_ENDPOINT', env.get('GUARDCTL_ALIYUN_ENDPOINT') ?? DEFAULT_ENDPOINT);
  const secrets = env.secrets;
  const retryable = (res: ApiResponse) => /^(Throttling|ServiceUnavailable|InternalError)/.test(codeOf(res) ?? '');
  const http = createHttp({ provider: NAME, ctx, secrets, describe, retryable });

  async function call(action: string, what: string, params: Record<string, string>, okCodes: string[] = []): Promise<{ body: unknown; code?: string }> {
    const res = await http(what, () => {
      // Rebuilt per try: a retried request needs a fresh nonce and timestamp.
      const all: Record<string, string> = {
        ...params, Action: action, Format: 'JSON', Version: VERSION, AccessKeyId: keyId,
        SignatureMethod: 'HMAC-SHA1', SignatureVersion: '1.0', SignatureNonce: crypto.randomUUID(), Timestamp: timestamp(new Date()),
      };
      const url = new URL(endpoint);
      url.search = signedQuery(all, secret);
      return { method: 'GET', url: url.toString() };
    });
    const code = codeOf(res);
    if (res.status === 200 && !code) return { body: res.json };
    if (code && okCodes.includes(code)) return { body: res.json, code };
    throw apiFailure({ provider: NAME, describe, secrets }, what, res, hintFor(code), code);
  }

  const api: RecordApi<{ name: string }> = {
    async findZone(name) {
      const { code } = await call('DescribeDomainRecords', `look up zone ${name}`, { DomainName: name, PageSize: '1' }, [...NO_ZONE]);
      return code ? undefined : { name };
    },
    async list(zone, fqdn) {
      const rr = relativeName(fqdn, zone.name);
      const out: RemoteRecord[] = [];
      // RRKeyWord is a fuzzy match: filter exactly here. Pages of 500 (the API's maximum), bounded.
      for (let page = 1; page <= 20; page++) {
        const { body } = await call('DescribeDomainRecords', `list TXT records at ${fqdn}`, {
          DomainName: zone.name, RRKeyWord: rr, TypeKeyWord: 'TXT', PageNumber: String(page), PageSize: '500',
        });
        const answer = body as DescribeAnswer;
        const records = answer.DomainRecords?.Record ?? [];
        for (const r of records) if (r.Type === 'TXT' && r.RR.toLowerCase() === rr) out.push({ id: String(r.RecordId), value: r.Value });
        if (records.length < 500 || page * 500 >= (answer.TotalCount ?? 0)) break;
      }
      return out;
    },
    async add(zone, fqdn, value, ttl) {
      await call('AddDomainRecord', `add TXT record at ${fqdn}`, {
        DomainName: zone.name, RR: relativeName(fqdn, zone.name), Type: 'TXT', Value: value, TTL: String(ttl),
      }, ['DomainRecordDuplicate']);
    },
    async remove(_zone, record) {
      await call('DeleteDomainRecord', `delete TXT record ${record.id}`, { RecordId: record.id }, ['DomainRecordNotBelongToUser']);
    },
  };
  return apiProvider({ name: NAME, api, log: providerLog(NAME, ctx, secrets), secrets, minTtl: MIN_TTL });
}

export const factory: ProviderFactory = { meta, create };
