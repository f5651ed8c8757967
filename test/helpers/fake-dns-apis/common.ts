import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What the fake DNS APIs share: an in-memory record store per zone, fault injection, the onChange hook, and a
 * node:http server on 127.0.0.1:0. Each fake (aliyun.ts, cloudflare.ts, dnspod.ts) adds its own wire format and
 * verifies its real authentication scheme, so a provider that signs wrongly fails here as it would in production.
 */
export interface FakeDnsOptions {
  /** The zones the account holds, e.g. ['example.com', 'b.example.com']. */
  zones: string[];
  /** Called after every change with the name and all the TXT values now at it (forward them to pebble-challtestsrv). */
  onChange?: (fqdn: string, values: string[]) => void | Promise<void>;
}

export interface FakeRecord {
  id: string;
  zone: string;
  /** Absolute, lower case, no trailing dot. */
  fqdn: string;
  type: string;
  value: string;
  ttl: number;
}

export interface FakeDnsApi {
  /** Where the provider should send requests (its GUARDCTL_*_ENDPOINT). */
  endpoint: string;
  /** Working credentials and the endpoint, ready to spread into a ProviderContext's env. */
  env: Record<string, string>;
  /** The secret values in env, which must never appear in logs or errors. */
  secrets: string[];
  /** The TXT values at fqdn, in one zone or in all of them. */
  values(fqdn: string, zone?: string): string[];
  /** Adds a value directly, as another client would (in the longest zone that holds fqdn). */
  seed(fqdn: string, value: string): void;
  /** Answers the next `count` requests with `status` in the provider's error format (429, 500, 503). */
  failNext(count: number, status: number): void;
  /** Refuses the next `count` record creations with a non-retryable provider error. */
  failAdds(count: number): void;
  /** Every request: its action and the status answered (faults included). */
  requests: Array<{ action: string; status: number }>;
  close(): Promise<void>;
}

export interface FakeAnswer {
  status: number;
  body: unknown;
}

export const norm = (name: string) => name.replace(/\.$/, '').toLowerCase();

export class ZoneStore {
  private readonly records: FakeRecord[] = [];
  private nextId = 100001;
  readonly zones: string[];
  constructor(private readonly opts: FakeDnsOptions) {
    this.zones = opts.zones.map(norm);
  }

  hasZone(zone: string): boolean {
    return this.zones.includes(norm(zone));
  }

  /** The longest zone of the account that holds fqdn. */
  zoneOf(fqdn: string): string | undefined {
    const name = norm(fqdn);
    return this.zones.filter((z) => name === z || name.endsWith(`.${z}`)).sort((a, b) => b.length - a.length)[0];
  }

  list(zone: string, filter: (r: FakeRecord) => boolean = () => true): FakeRecord[] {
    return this.records.filter((r) => r.zone === norm(zone) && filter(r));
  }

  find(id: string): FakeRecord | undefined {
    return this.records.find((r) => r.id === id);
  }

  async add(zone: string, fqdn: string, type: string, value: string, ttl: number): Promise<FakeRecord> {
    const r: FakeRecord = { id: String(this.nextId++), zone: norm(zone), fqdn: norm(fqdn), type, value, ttl };
    this.records.push(r);
    await this.changed(r.fqdn);
    return r;
  }

  async remove(id: string): Promise<FakeRecord | undefined> {
    const i = this.records.findIndex((r) => r.id === id);
    if (i < 0) return undefined;
    const [r] = this.records.splice(i, 1);
    await this.changed(r!.fqdn);
    return r;
  }

  values(fqdn: string, zone?: string): string[] {
    return this.records.filter((r) => r.type === 'TXT' && r.fqdn === norm(fqdn) && (zone === undefined || r.zone === norm(zone))).map((r) => r.value);
  }

  private async changed(fqdn: string): Promise<void> {
    await this.opts.onChange?.(fqdn, this.values(fqdn));
  }
}

/** Pending faults, consumed one request at a time. */
export class Faults {
  private statuses: number[] = [];
  private adds = 0;
  failNext(count: number, status: number): void {
    for (let i = 0; i < count; i++) this.statuses.push(status);
  }
  failAdds(count: number): void {
    this.adds += count;
  }
  takeStatus(): number | undefined {
    return this.statuses.shift();
  }
  takeAdd(): boolean {
    if (this.adds <= 0) return false;
    this.adds--;
    return true;
  }
}

export interface ServerHandle {
  url: string;
  close(): Promise<void>;
}

/** Serves handler on 127.0.0.1 at a free port; JSON answers. */
export async function serve(handler: (req: http.IncomingMessage, body: string) => Promise<FakeAnswer>): Promise<ServerHandle> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handler(req, Buffer.concat(chunks).toString('utf8'))
        .catch((err: unknown): FakeAnswer => ({ status: 599, body: { fakeCrashed: String(err) } }))
        .then((answer) => {
          res.writeHead(answer.status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(answer.body));
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

export const requestId = () => crypto.randomUUID().toUpperCase();

/** Constant-time comparison of two signatures (the house rule for MACs, kept in the fakes too). */
export function sameSignature(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}
