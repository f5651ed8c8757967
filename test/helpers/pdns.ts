/**
 * A real PowerDNS Authoritative server for tests: gsqlite3 backend in a temporary directory, DNS and the HTTP
 * API on random free loopback ports, packet/query caches off (answers change as soon as the API writes).
 *
 *   const pdns = await startPdns(t);                // skips the test when pdns_server is missing
 *   if (!pdns) return;
 *   pdns.dnsPort, pdns.apiUrl ('http://127.0.0.1:PORT', no /api/v1), pdns.apiKey
 *   await pdns.dig('_acme-challenge.example.test', 'TXT')   // ['value', ...] from this server
 *   await pdns.api('POST', '/zones', { name: 'other.test.', kind: 'Native', nameservers: [...] })
 *
 * The zone `example.test` (Native, `NS ns1.example.test.`, `ns1 A 127.0.0.1`) exists on start; opts.zones
 * creates more the same way. Stopped in t.after (SIGTERM, then SIGKILL), temporary directory removed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { digAt, freeLoopbackPort, tail } from './bind.js';
import { haveProgram } from './system.js';
import { HANG_BOUND_MS } from './wait.js';

export interface PdnsOptions {
  /** Zones to create besides example.test (names without trailing dot). */
  zones?: string[];
  /** Start timeout, ms (default HANG_BOUND_MS: pdns_server starts slowly on a busy machine). */
  startTimeoutMs?: number;
}

export interface PdnsServer {
  dnsPort: number;
  apiUrl: string;
  apiKey: string;
  zones: string[];
  /** Calls the API under /api/v1/servers/localhost; returns the parsed JSON (or undefined for 204). */
  api(method: string, route: string, body?: unknown): Promise<unknown>;
  /** Asks this server and returns the answers; TXT strings are unquoted and joined. */
  dig(name: string, type: string): Promise<string[]>;
  output(): string;
  stop(): Promise<void>;
}

interface TestContext {
  skip(message?: string): void;
  after(fn: () => unknown): void;
}

/** The gsqlite3 schema shipped by pdns-backend-sqlite3 (found through dpkg, else the usual places). */
export function findPdnsSchema(): string {
  const listed = spawnSync('dpkg', ['-L', 'pdns-backend-sqlite3'], { encoding: 'utf8' });
  const candidates = [
    ...(listed.status === 0 ? listed.stdout.split('\n').filter((l) => /\/schema\.sqlite3\.sql$/.test(l)) : []),
    '/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql',
    '/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql',
    '/usr/local/share/doc/pdns/schema.sqlite3.sql',
  ];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) throw new Error('the PowerDNS sqlite3 schema (schema.sqlite3.sql) was not found; install pdns-backend-sqlite3');
  return found;
}

export async function startPdns(t: TestContext, opts: PdnsOptions = {}): Promise<PdnsServer | undefined> {
  if (!haveProgram(t, 'pdns_server', '--help')) return undefined;
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const result = await launch(t, opts);
    if (typeof result !== 'string') return result;
    lastError = result;
    if (!/address already in use|unable to bind/i.test(result)) break;
  }
  throw new Error(`pdns_server did not start:\n${lastError}`);
}

async function launch(t: TestContext, opts: PdnsOptions): Promise<PdnsServer | string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-pdns-'));
  const db = path.join(dir, 'pdns.sqlite3');
  const sqlite = new Database(db);
  sqlite.exec(fs.readFileSync(findPdnsSchema(), 'utf8'));
  sqlite.close();
  fs.writeFileSync(path.join(dir, 'pdns.conf'), '');
  const dnsPort = await freeLoopbackPort();
  let webPort = await freeLoopbackPort();
  while (webPort === dnsPort) webPort = await freeLoopbackPort();
  const apiKey = randomBytes(16).toString('hex');
  const apiUrl = `http://127.0.0.1:${webPort}`;
  const args = [
    `--config-dir=${dir}`, '--daemon=no', '--guardian=no', `--socket-dir=${dir}`, '--write-pid=no', '--disable-syslog',
    '--local-address=127.0.0.1', `--local-port=${dnsPort}`, '--launch=gsqlite3', `--gsqlite3-database=${db}`,
    '--api=yes', `--api-key=${apiKey}`, '--webserver=yes', '--webserver-address=127.0.0.1', `--webserver-port=${webPort}`,
    '--webserver-allow-from=127.0.0.1/32', '--cache-ttl=0', '--negquery-cache-ttl=0', '--query-cache-ttl=0',
    '--security-poll-suffix=', '--default-soa-content=ns1.example.test. hostmaster.@ 0 10800 3600 604800 1',
  ];
  const child = spawn('pdns_server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  let exitedNow = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => ((exitedNow = true), resolve())));
  const stop = async () => {
    if (!exitedNow) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  t.after(stop);

  const api = async (method: string, route: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`${apiUrl}/api/v1/servers/localhost${route}`, {
      method,
      headers: { 'X-API-Key': apiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(HANG_BOUND_MS),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`PowerDNS API ${method} ${route}: HTTP ${res.status} ${text}`);
    return text === '' ? undefined : JSON.parse(text);
  };
  const resolver = () => {
    const r = new Resolver({ timeout: 500, tries: 1 });
    r.setServers([`127.0.0.1:${dnsPort}`]);
    return r;
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? HANG_BOUND_MS);
  for (;;) {
    if (exitedNow) {
      await stop();
      return `${tail(out)}\n(pdns_server exited; DNS port ${dnsPort}, API port ${webPort})`;
    }
    try {
      await api('GET', '');
      await resolver().resolveSoa('nothing.invalid').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ETIMEOUT' || e.code === 'ECONNREFUSED') throw e;
      });
      break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      await stop();
      return `${tail(out)}\n(pdns_server did not answer within ${opts.startTimeoutMs ?? HANG_BOUND_MS} ms)`;
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const zones = ['example.test', ...(opts.zones ?? [])];
  for (const zone of zones) {
    await api('POST', '/zones', { name: `${zone}.`, kind: 'Native', nameservers: ['ns1.example.test.'] });
  }
  await api('PATCH', '/zones/example.test.', {
    rrsets: [{ name: 'ns1.example.test.', type: 'A', ttl: 60, changetype: 'REPLACE', records: [{ content: '127.0.0.1', disabled: false }] }],
  });

  return {
    dnsPort, apiUrl, apiKey, zones, api,
    dig: async (name, type) => digAt('127.0.0.1', dnsPort, name, type),
    output: () => out,
    stop,
  };
}
