/**
 * A plain-HTTP nginx site in front of a pool of daemons, the upstream block `guardctl nginx render --upstream`
 * writes (least_conn, passive health, keepalive, proxy_next_upstream for connection errors only) without the TLS
 * server around it: for tests and benchmarks on loopback.
 */
export function upstreamSite(port: number, daemons: string[]): string {
  const servers = daemons.map((u) => `    server ${new URL(u).host} max_fails=1 fail_timeout=10s;`);
  return [
    'upstream guard_pool {',
    '    least_conn;',
    ...servers,
    '    keepalive 32;',
    '}',
    'server {',
    `    listen 127.0.0.1:${port};`,
    '    location / {',
    '        proxy_pass http://guard_pool;',
    '        proxy_http_version 1.1;',
    '        proxy_set_header Connection "";',
    // A signed POST that reached one daemon is never sent to a second: only failed connections move on.
    '        proxy_next_upstream error;',
    '        proxy_next_upstream_tries 3;',
    '    }',
    '}',
    '',
  ].join('\n');
}
