/**
 * An onChange hook for the fakes that mirrors their TXT records into pebble-challtestsrv through its management
 * API, so Pebble's validation queries see what a provider wrote: POST /clear-txt {host}, then POST /set-txt
 * {host, value} for each value still there (challtestsrv keeps several values per host). Hosts carry the
 * trailing dot challtestsrv expects.
 */
export function forwardToChalltestsrv(managementUrl: string): (fqdn: string, values: string[]) => Promise<void> {
  const base = managementUrl.replace(/\/+$/, '');
  const post = async (path: string, body: Record<string, string>) => {
    const res = await fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`challtestsrv ${path} answered ${res.status}: ${await res.text()}`);
  };
  return async (fqdn, values) => {
    const host = `${fqdn.replace(/\.$/, '')}.`;
    await post('/clear-txt', { host });
    for (const value of values) await post('/set-txt', { host, value });
  };
}
