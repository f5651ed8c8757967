import net from 'node:net';

/** "::ffff:1.2.3.4" (how Node reports IPv4 clients on a dual-stack socket) -> "1.2.3.4". */
export function normalizeIp(ip: string): string {
  if (ip.length < 14 || ip.charCodeAt(0) !== 58 /* : */) return ip;
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

/** 127.0.0.0/8 and ::1: a client on this machine. */
export function isLoopback(ip: string): boolean {
  const n = normalizeIp(ip);
  return n === '::1' || /^127\.\d+\.\d+\.\d+$/.test(n);
}

export interface CidrList {
  readonly entries: readonly string[];
  has(ip: string): boolean;
}

/** Parses CIDRs and plain addresses (IPv4 and IPv6); throws naming the first bad entry. */
export function parseCidrList(entries: readonly string[]): CidrList {
  const list = new net.BlockList();
  for (const entry of entries) {
    const [addr, bits, extra] = entry.trim().split('/');
    const family = net.isIP(addr ?? '');
    const max = family === 4 ? 32 : 128;
    if (!family || extra !== undefined || (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > max))) {
      throw new Error(`"${entry}" is not an IPv4 or IPv6 address or CIDR (like 203.0.113.0/24 or 2001:db8::/32)`);
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(addr!, type);
    else list.addSubnet(addr!, Number(bits), type);
  }
  return {
    entries: [...entries],
    has(ip) {
      const n = normalizeIp(ip);
      const family = net.isIP(n);
      return family !== 0 && list.check(n, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

/**
 * The client's address: the socket peer, unless that peer is a trusted proxy, in which case X-Forwarded-For is
 * walked from the right, skipping trusted proxies, to the first address that is not one. Untrusted peers' XFF
 * is ignored entirely, since anyone can send the header.
 */
export function clientIp(peer: string, forwardedFor: string | undefined, trusted: CidrList | undefined): string {
  let ip = normalizeIp(peer);
  if (!trusted || !forwardedFor || !trusted.has(ip)) return ip;
  const hops = forwardedFor.split(',').map((h) => normalizeIp(h.trim())).filter((h) => net.isIP(h) !== 0);
  for (let i = hops.length - 1; i >= 0; i--) {
    ip = hops[i]!;
    if (!trusted.has(ip)) return ip;
  }
  return ip;
}

/** For audit records: IPv4 to its /24, IPv6 to its /48, so records identify networks, not people. */
export function truncateIp(ip: string): string {
  const n = normalizeIp(ip);
  const family = net.isIP(n);
  if (family === 4) return `${n.slice(0, n.lastIndexOf('.'))}.0/24`;
  if (family === 6) {
    const groups = [...expandIpv6(n).slice(0, 3), '0', '0', '0', '0', '0'];
    // The WHATWG URL parser prints IPv6 in its canonical compressed form.
    return `${new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1)}/48`;
  }
  return 'unknown';
}

function expandIpv6(ip: string): string[] {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (::ffff:a.b.c.d forms) takes two groups; it never reaches the first three.
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t];
}
