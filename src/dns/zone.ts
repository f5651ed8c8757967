/**
 * Names and zones. API providers find the zone that holds a name the way acme.sh does: ask their own API about
 * each suffix, longest first, so `_acme-challenge.a.b.example.com` lands in `b.example.com` when the account has
 * that zone and in `example.com` otherwise. Asking the API (not the SOA in public DNS) works for zones that are not
 * delegated yet and for split-horizon setups, and the most specific zone wins, as DNS itself would answer.
 */

/** Lower case, no trailing dot: the one spelling used for comparisons and API calls. */
export function normalizeName(name: string): string {
  return name.trim().replace(/\.$/, '').toLowerCase();
}

/** Every suffix of fqdn that could be a zone, longest first; a bare TLD is never one. */
export function zoneCandidates(fqdn: string): string[] {
  const labels = normalizeName(fqdn).split('.');
  const out: string[] = [];
  for (let i = 0; i <= labels.length - 2; i++) out.push(labels.slice(i).join('.'));
  return out;
}

/** The record name relative to its zone, as the Aliyun and DNSPod APIs want it: `_acme-challenge.a` or `@` at the apex. */
export function relativeName(fqdn: string, zone: string): string {
  const name = normalizeName(fqdn);
  const z = normalizeName(zone);
  if (name === z) return '@';
  if (!name.endsWith(`.${z}`)) throw new Error(`${name} is not inside zone ${z}`);
  return name.slice(0, -(z.length + 1));
}

/** The name back from a zone-relative one. */
export function absoluteName(relative: string, zone: string): string {
  return relative === '@' || relative === '' ? normalizeName(zone) : normalizeName(`${relative}.${zone}`);
}

/** TXT content as APIs may return it, with or without the surrounding quotes of the zone-file syntax. */
export function unquoteTxt(value: string): string {
  const v = value.trim();
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}
