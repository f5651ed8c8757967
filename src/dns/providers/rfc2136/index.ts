import { readProviderEnv } from '../../env.js';
import { dnsError, providerLog } from '../../errors.js';
import type { DnsProvider, ProviderContext, ProviderFactory, ProviderMeta, TxtRecord } from '../../types.js';
import { checkName, parseAlgorithm, parseNameserver, quoteTxt } from './config.js';
import { runNsupdate, type TsigSource } from './nsupdate.js';

/**
 * RFC 2136 dynamic updates through BIND's nsupdate (BIND, Knot, PowerDNS with dnsupdate=yes, Windows DNS, ...).
 * Each value is added and deleted on its own (`update delete NAME TXT "value"`), so values of other orders at
 * the same name survive and several present() calls may run at once.
 */
export const meta: ProviderMeta = {
  name: 'rfc2136',
  description: 'Any name server that accepts RFC 2136 dynamic updates (BIND, Knot, PowerDNS...), through nsupdate with a TSIG key.',
  env: [
    { name: 'RFC2136_NAMESERVER', aliases: ['NSUPDATE_SERVER'], required: true, secret: false, description: 'The primary name server to update: host[:port] (port 53 by default; [v6]:port for IPv6).' },
    { name: 'RFC2136_TSIG_KEY', required: false, secret: false, description: 'The TSIG key name, as in the server\'s `key "NAME"` statement.' },
    { name: 'RFC2136_TSIG_SECRET', required: false, secret: true, description: 'The TSIG key\'s base64 secret (handed to nsupdate in a 0600 temporary key file, never on its command line).' },
    { name: 'RFC2136_TSIG_ALGORITHM', required: false, secret: false, description: 'hmac-sha256 (default), hmac-sha384, hmac-sha512 (also hmac-sha224, hmac-sha1, hmac-md5; lego\'s `hmac-sha256.` spelling is accepted).' },
    { name: 'RFC2136_TSIG_FILE', aliases: ['NSUPDATE_KEY'], required: false, secret: false, description: 'A BIND key file (from tsig-keygen) to use instead of RFC2136_TSIG_KEY and RFC2136_TSIG_SECRET.' },
    { name: 'RFC2136_ZONE', aliases: ['NSUPDATE_ZONE'], required: false, secret: false, description: 'The zone to update; by default nsupdate finds it by asking the server for the SOA.' },
    { name: 'RFC2136_TIMEOUT', required: false, secret: false, description: 'nsupdate\'s timeout for one update in seconds (default 20).' },
  ],
  parallel: true,
  propagationTimeoutSec: 60,
  pollIntervalSec: 2,
  docs: 'https://datatracker.ietf.org/doc/html/rfc2136',
};

function tsigFrom(get: (name: string) => string | undefined): TsigSource {
  const name = get('RFC2136_TSIG_KEY');
  const secret = get('RFC2136_TSIG_SECRET');
  const file = get('RFC2136_TSIG_FILE');
  if (file !== undefined) {
    if (name !== undefined || secret !== undefined) {
      throw dnsError('rfc2136', 'RFC2136_TSIG_FILE and RFC2136_TSIG_KEY/RFC2136_TSIG_SECRET are both set', { hint: 'use either the key file or the key name and secret' });
    }
    return { kind: 'file', path: file };
  }
  if (name === undefined && secret === undefined) return { kind: 'none' };
  if (name === undefined || secret === undefined) {
    throw dnsError('rfc2136', `RFC2136_TSIG_${name === undefined ? 'KEY' : 'SECRET'} is missing`, {
      hint: 'set both RFC2136_TSIG_KEY (the key name) and RFC2136_TSIG_SECRET (its base64 secret), or neither for unsigned updates',
    });
  }
  if (!/^[A-Za-z0-9+/=]+$/.test(secret)) {
    throw dnsError('rfc2136', 'RFC2136_TSIG_SECRET is not base64', { hint: 'copy the secret "..." value of the key statement (tsig-keygen prints it)' }, [secret]);
  }
  return { kind: 'secret', name: checkName('RFC2136_TSIG_KEY', name), algorithm: parseAlgorithm(get('RFC2136_TSIG_ALGORITHM')), secret };
}

function create(ctx: ProviderContext): DnsProvider {
  const env = readProviderEnv(meta, ctx.env);
  const server = parseNameserver(env.need('RFC2136_NAMESERVER'));
  const tsig = tsigFrom(env.get);
  const zoneRaw = env.get('RFC2136_ZONE');
  const zone = zoneRaw === undefined ? undefined : checkName('RFC2136_ZONE', zoneRaw);
  const timeoutRaw = env.get('RFC2136_TIMEOUT');
  const timeoutSec = timeoutRaw === undefined ? 20 : Number(timeoutRaw);
  if (!Number.isInteger(timeoutSec) || timeoutSec < 1) {
    throw dnsError('rfc2136', `RFC2136_TIMEOUT must be a positive whole number of seconds, not "${timeoutRaw}"`);
  }
  const log = providerLog(meta.name, ctx, env.secrets);
  if (tsig.kind === 'none') log('warn', 'no TSIG key set: sending unsigned updates');
  const where = server.host.includes(':') ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;

  const update = async (record: TxtRecord, op: 'add' | 'delete') => {
    const fqdn = checkName('the record name', record.fqdn);
    const ttl = Math.max(1, Math.round(record.ttl));
    const line = op === 'add' ? `update add ${fqdn}. ${ttl} IN TXT ${quoteTxt(record.value)}` : `update delete ${fqdn}. IN TXT ${quoteTxt(record.value)}`;
    await runNsupdate({
      server, tsig, zone, timeoutSec, secrets: env.secrets,
      updates: [line],
      action: `${op} TXT at ${fqdn}`,
    });
    log('info', `${op === 'add' ? 'added' : 'removed'} one TXT value ${op === 'add' ? 'at' : 'from'} ${fqdn} through ${where}${zone ? ` (zone ${zone})` : ''}`);
  };

  return {
    name: meta.name,
    present: (record) => update(record, 'add'),
    cleanup: (record) => update(record, 'delete'),
  };
}

export const factory: ProviderFactory = { meta, create };
