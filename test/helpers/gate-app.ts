import Fastify, { type FastifyInstance } from 'fastify';
import { type AuditRecord, type AuditSink } from '../../src/gate/audit.js';
import { bindGate } from '../../src/gate/fastify.js';
import { sendDenial } from '../../src/server/errors.js';
import { Gate } from '../../src/gate/gate.js';
import { MemoryGateState } from '../../src/gate/memory-state.js';
import { DEFAULT_GATE_OPTIONS, type GateOptions } from '../../src/gate/options.js';
import { signRequest } from '../../src/gate/sign-request.js';
import { SqliteGateState } from '../../src/gate/sqlite-state.js';
import { loadTiers } from '../../src/keys/tiers.js';
import { newKeyId } from '../../src/keys/token.js';
import type { KeyCredentials, KeyLookup, KeyRecord, ModelRef } from '../../src/keys/types.js';

/** Keys held in a Map: lets a test revoke, rotate or expire a key by editing the record in place. */
export class MemoryKeys implements KeyLookup {
  readonly keys = new Map<string, KeyCredentials>();
  touched: string[] = [];

  add(secret: string, record: Partial<KeyRecord> = {}): KeyRecord {
    const full: KeyRecord = {
      id: newKeyId(), name: 'test', tier: 'enterprise', status: 'active', createdAt: 0, expiresAt: null, revokedAt: null,
      lastUsedAt: null, allowIps: [], overrides: {}, previousValidUntil: null, allowBearer: false, ...record,
    };
    this.keys.set(full.id, { record: full, secrets: [{ value: Buffer.from(secret), notAfter: null }] });
    return full;
  }

  lookup(id: string): KeyCredentials | undefined {
    return this.keys.get(id);
  }

  touch(id: string): void {
    this.touched.push(id);
  }
}

export class MemoryAudit implements AuditSink {
  readonly records: AuditRecord[] = [];
  write(record: AuditRecord): void {
    this.records.push(record);
  }
  async close(): Promise<void> {}
}

export interface GateFixture {
  app: FastifyInstance;
  keys: MemoryKeys;
  audit: MemoryAudit;
  state: MemoryGateState | SqliteGateState;
  clock: { now: number };
  /** Signs and injects a request; `at` overrides the signing time (Unix seconds). */
  send(opts: SendOptions): Promise<import('fastify').LightMyRequestResponse>;
}

export interface SendOptions {
  keyId: string;
  secret: string;
  method?: string;
  url?: string;
  body?: string;
  version?: 1 | 2;
  timestamp?: string;
  nonce?: string;
  headers?: Record<string, string>;
  remoteAddress?: string;
}

/**
 * A fastify app with the gate in front of stub routes: POST /api/v1/moderate (model from the body's "model",
 * default guard-small of size small), POST /api/v1/translate, GET /api/v1/models (no model) and GET /open (no gate).
 * The stub routes echo what the gate decided. POST /api/v1/slow waits until `releaseSlow()` is called;
 * `slowWaiting()` counts the requests waiting there.
 */
export async function gateFixture(options: Partial<GateOptions> = {}, tiersSection?: Record<string, unknown>, stateFile?: string): Promise<GateFixture & { releaseSlow(): void; slowWaiting(): number }> {
  const clock = { now: Date.UTC(2026, 0, 1, 0, 0, 0) };
  const keys = new MemoryKeys();
  const audit = new MemoryAudit();
  const opts: GateOptions = { ...DEFAULT_GATE_OPTIONS, ...options };
  // With a file, the state is the daemon's default (--state sqlite).
  const stateOptions = { nonceCapacity: opts.nonceCapacity, authFailures: opts.authFailures, clock: () => clock.now };
  const state = stateFile ? SqliteGateState.open({ file: stateFile, ...stateOptions }) : new MemoryGateState(stateOptions);
  const gate = new Gate({ keys, state, tiers: loadTiers(tiersSection), options: opts, now: () => clock.now });
  const app = Fastify({ logger: false });
  bindGate(app, { gate, audit }, sendDenial);
  const model = (req: { body?: unknown }): ModelRef => {
    const name = (req.body as { model?: string } | undefined)?.model ?? 'guard-small';
    return { name, size: name.includes('large') ? 'large' : 'small' };
  };
  const echo = async (req: import('fastify').FastifyRequest) => ({ ok: true, key: req.gatePass?.key.id, model: req.gateModel?.name });
  app.post('/api/v1/moderate', { config: { gate: { model } } }, echo);
  app.post('/api/v1/translate', { config: { gate: { model } } }, echo);
  app.get('/api/v1/models', { config: { gate: {} } }, echo);
  app.get('/open', async () => ({ open: true }));
  const waiting: Array<() => void> = [];
  app.post('/api/v1/slow', { config: { gate: { model } } }, async () => {
    await new Promise<void>((resolve) => waiting.push(resolve));
    return { ok: true };
  });
  await app.ready();
  const send: GateFixture['send'] = (o) => {
    const method = o.method ?? 'POST';
    const url = o.url ?? '/api/v1/moderate';
    const signed = signRequest({
      method, url, body: o.body, keyId: o.keyId, secret: o.secret, version: o.version,
      timestamp: o.timestamp ?? String(Math.floor(clock.now / 1000)), nonce: o.nonce,
    });
    return app.inject({
      method: method as 'POST',
      url,
      payload: o.body,
      remoteAddress: o.remoteAddress ?? '203.0.113.10',
      headers: { ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}), ...signed.headers, ...o.headers },
    });
  };
  return { app, keys, audit, state, clock, send, releaseSlow: () => waiting.splice(0).forEach((r) => r()), slowWaiting: () => waiting.length };
}
