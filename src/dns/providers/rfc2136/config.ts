import { dnsError } from '../../errors.js';

/** The TSIG algorithms nsupdate accepts (BIND's names). */
export const TSIG_ALGORITHMS = ['hmac-md5', 'hmac-sha1', 'hmac-sha224', 'hmac-sha256', 'hmac-sha384', 'hmac-sha512'] as const;
export type TsigAlgorithm = (typeof TSIG_ALGORITHMS)[number];

export interface NameServer {
  host: string;
  port: number;
}

/**
 * `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address; port 53 by default. Hosts may be names:
 * nsupdate resolves them itself.
 */
export function parseNameserver(raw: string): NameServer {
  const text = raw.trim();
  const fail = () =>
    dnsError('rfc2136', `RFC2136_NAMESERVER "${text}" is not host[:port]`, { hint: 'use for example 192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53' });
  let host = text;
  let port = '53';
  const bracketed = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    port = bracketed[2] ?? '53';
  } else if ((text.match(/:/g) ?? []).length === 1) {
    [host, port] = text.split(':') as [string, string];
  } else if (text.includes(':') && !/^[0-9a-fA-F:.]+$/.test(text)) {
    throw fail();
  }
  const portNum = Number(port);
  if (!host || !/^[A-Za-z0-9_.:-]+$/.test(host) || !/^\d+$/.test(port) || portNum < 1 || portNum > 65535) throw fail();
  return { host, port: portNum };
}

/** Accepts BIND's names in any case, lego's `hmac-sha256.` spelling and bare `sha256`; hmac-sha256 when unset. */
export function parseAlgorithm(raw: string | undefined): TsigAlgorithm {
  if (raw === undefined || raw.trim() === '') return 'hmac-sha256';
  let name = raw.trim().toLowerCase().replace(/\.+$/, '');
  if (!name.startsWith('hmac-')) name = `hmac-${name}`;
  if (name === 'hmac-md5.sig-alg.reg.int') name = 'hmac-md5';
  if ((TSIG_ALGORITHMS as readonly string[]).includes(name)) return name as TsigAlgorithm;
  throw dnsError('rfc2136', `RFC2136_TSIG_ALGORITHM "${raw.trim()}" is not supported`, {
    hint: `use one of ${TSIG_ALGORITHMS.join(', ')} (hmac-sha256 when unset)`,
  });
}

/** A DNS name as nsupdate must see it: letters, digits, `_`, `-` and dots only, so nothing can inject a command. */
export function checkName(what: string, name: string): string {
  const n = name.trim().replace(/\.$/, '');
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(n) || n.length > 253) {
    throw dnsError('rfc2136', `${what} "${name}" is not a valid DNS name`);
  }
  return n;
}

/** A TXT value as nsupdate's quoted character strings (at most 255 bytes each); control characters refused. */
export function quoteTxt(value: string): string {
  if (/[\u0000-\u001f\u007f]/.test(value)) throw dnsError('rfc2136', 'a TXT value contains control characters');
  const chunks: string[] = [''];
  for (const ch of value) {
    const last = chunks[chunks.length - 1]!;
    if (Buffer.byteLength(last + ch, 'utf8') > 255) chunks.push(ch);
    else chunks[chunks.length - 1] = last + ch;
  }
  return chunks.map((c) => `"${c.replace(/[\\"]/g, (m) => `\\${m}`)}"`).join(' ');
}
