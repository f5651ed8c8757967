import type { FastifyBaseLogger, LightMyRequestResponse as Response } from 'fastify';
import { Gate } from '../../src/gate/gate.js';
import { MemoryGateState } from '../../src/gate/memory-state.js';
import { DEFAULT_GATE_OPTIONS, type GateOptions } from '../../src/gate/options.js';
import { signRequest } from '../../src/gate/sign-request.js';
import { loadTiers } from '../../src/keys/tiers.js';
import type { KeyRecord } from '../../src/keys/types.js';
import type { GateState } from '../../src/gate/state.js';
import type { Engine } from '../../src/infer/types.js';
import { buildServer, type GuardServer } from '../../src/server/app.js';
import { serveConfig, type ServeConfig } from '../../src/server/config.js';
import { createServerMetrics, type ServerMetrics } from '../../src/server/metrics.js';
import { fakeEngine } from './fake-engine.js';
import { MemoryAudit, MemoryKeys } from './gate-app.js';

export interface TestKey {
  id: string;
  secret: string;
}

export interface SendOptions {
  method?: string;
  /** Path (with the base path) and query. */
  url: string;
  /** An object is sent as JSON; a string as is. */
  body?: unknown;
  /** Signs with this key; none: unsigned. */
  key?: TestKey;
  headers?: Record<string, string>;
  contentType?: string;
  /** The signature version (default 2: version 1 refuses bodies with arrays or objects). */
  version?: 1 | 2;
}

export interface ServerFixture {
  app: GuardServer;
  engine: Engine;
  keys: MemoryKeys;
  audit: MemoryAudit;
  metrics: ServerMetrics;
  /** A fresh key of the tier (default enterprise). */
  key(tier?: string, record?: Partial<KeyRecord>): TestKey;
  send(o: SendOptions): Promise<Response>;
}

export interface FixtureOptions {
  /** The engine (not closed by the fixture); default: a fresh fake engine reporting steps to the metrics. */
  engine?: Engine;
  /** Default: fresh metrics (those the engine reports its steps to, if it was made with their onStep). */
  metrics?: ServerMetrics;
  config?: Partial<ServeConfig>;
  tiers?: Record<string, unknown>;
  gate?: Partial<GateOptions>;
  logger?: FastifyBaseLogger | false;
  https?: import('node:https').ServerOptions;
  /** The gate state (not closed by the fixture); default: a fresh memory state. */
  state?: GateState;
  /** Keys to share with other fixtures (several daemons, one key store); default: fresh. */
  keys?: MemoryKeys;
}

let counter = 0;

/** buildServer with the real gate (keys in memory, real clock) and a test engine; closed when the test ends. */
export async function serverFixture(t: { after(fn: () => unknown): void }, opts: FixtureOptions = {}): Promise<ServerFixture> {
  const keys = opts.keys ?? new MemoryKeys();
  const audit = new MemoryAudit();
  const gateOptions: GateOptions = { ...DEFAULT_GATE_OPTIONS, ...opts.gate };
  const state = opts.state ?? new MemoryGateState({ nonceCapacity: 100_000, authFailures: { limit: 1_000_000, windowSec: 60, blockSec: 1 } });
  const gate = new Gate({ keys, state, tiers: loadTiers(opts.tiers), options: gateOptions });
  const metrics = opts.metrics ?? createServerMetrics();
  const engine = opts.engine ?? fakeEngine({ onStep: metrics.onStep });
  const config = serveConfig({ webDir: null, ...opts.config });
  const app = await buildServer({ config, engine, metrics, gate: { gate, audit }, logger: opts.logger ?? false, https: opts.https, trustedProxies: gateOptions.trustedProxies, stateHealth: (state as GateState).health?.bind(state) });
  t.after(() => app.close());
  return {
    app, engine, keys, audit, metrics,
    key(tier = 'enterprise', record = {}) {
      const secret = `gs_test_secret_${++counter}_${Math.random().toString(36).slice(2)}`;
      const rec = keys.add(secret, { tier, ...record });
      return { id: rec.id, secret };
    },
    send(o) {
      const method = o.method ?? (o.body === undefined ? 'GET' : 'POST');
      const payload = o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
      const signed = o.key ? signRequest({ method, url: o.url, body: payload, keyId: o.key.id, secret: o.key.secret, version: o.version ?? 2 }).headers : {};
      const type = o.contentType ?? (payload !== undefined ? 'application/json' : undefined);
      return app.inject({
        method: method as 'GET',
        url: o.url,
        payload,
        remoteAddress: '203.0.113.7',
        headers: { ...(type ? { 'content-type': type } : {}), ...signed, ...o.headers },
      });
    },
  };
}
