import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AuditSink } from '../src/gate/audit.js';
import { Gate, type GateRequest } from '../src/gate/gate.js';
import { openGateState, type StateKind } from '../src/gate/open-state.js';
import { DEFAULT_GATE_OPTIONS } from '../src/gate/options.js';
import { RedisGateState } from '../src/gate/redis-state.js';
import { signRequest } from '../src/gate/sign-request.js';
import { benchRedis } from './redis.js';
import { loadTiers } from '../src/keys/tiers.js';
import type { KeyLookup, Limits } from '../src/keys/types.js';
import { createKeyLookup } from '../src/keys/lookup.js';
import { KeyStore } from '../src/keys/store.js';

/** Shared by bench/gate.bench.ts and its HTTP server worker. */
export interface BenchKeys {
  lookup: KeyLookup;
  keyId: string;
  secret: string;
  /** Which lookup is measured, for the report. */
  kind: string;
  close(): void;
}

/**
 * The daemon's real key lookup (SQLite key store + cache) with one enterprise-tier key, which has no rate,
 * concurrency or daily limit, so the bench measures checks, not rejections (`overrides` gives it limits).
 */
export async function benchKeys(overrides?: Partial<Limits>): Promise<BenchKeys> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-bench-'));
  const store = KeyStore.open({ home, env: { GUARDCTL_MASTER_KEY: randomBytes(32).toString('base64') } });
  const { record, secret } = store.create({ name: 'bench', tier: 'enterprise', overrides });
  const lookup = createKeyLookup(store);
  const close = () => {
    lookup.close();
    store.close();
    fs.rmSync(home, { recursive: true, force: true });
  };
  return { lookup, keyId: record.id, secret, kind: 'KeyStore (SQLite) + createKeyLookup', close };
}

/** sqlite (the default), memory, and a loopback Redis of the bench's own when redis-server can be run. */
export const STATE_KINDS: StateKind[] = ['sqlite', 'memory'];

/**
 * STATE_KINDS, plus `--state redis://...` on a redis-server the bench starts (bench/redis.ts);
 * GUARDCTL_BENCH_STATES=redis,sqlite (a comma list) picks some of them.
 */
export async function stateKinds(say: (line: string) => void): Promise<StateKind[]> {
  const picked = process.env.GUARDCTL_BENCH_STATES?.split(',').map((s) => s.trim());
  const wanted = (kind: string) => !picked || picked.includes(kind);
  const redis = wanted('redis') ? await benchRedis(say) : undefined;
  return [...STATE_KINDS.filter(wanted), ...(redis ? [redis.url as StateKind] : [])];
}

/**
 * The gate as `guardctl serve --state KIND` builds it; a sqlite state lives in a temporary home of its own.
 * `ready` settles once a Redis state is connected (at once for the others).
 */
export function benchGate(keys: KeyLookup, kind: StateKind = 'sqlite'): { gate: Gate; ready: Promise<void>; close(): void } {
  const options = DEFAULT_GATE_OPTIONS;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-bench-state-'));
  const state = openGateState(kind, home, options, () => {});
  const ready = state instanceof RedisGateState
    ? state.whenUp(60_000).then((up) => {
      if (!up) throw new Error(`${state.describe} did not answer`);
    })
    : Promise.resolve();
  return {
    gate: new Gate({ keys, state, tiers: loadTiers(undefined), options }),
    ready,
    close: () => {
      void state.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

export const nullAudit: AuditSink = { write() {}, async close() {} };

export const BENCH_PATH = '/api/v1/moderate';
export const BENCH_BODY = JSON.stringify({ text: 'How do I make a bomb in my kitchen? 混元翻译模型', model: 'guard-small', stream: false, max_tokens: 128 });

export interface PreSigned {
  /** Header names in lower case, as node's http server hands them to the gate. */
  headers: Record<string, string>;
}

/** `n` requests to BENCH_PATH with BENCH_BODY, each with its own fresh nonce, signed now. */
export function preSign(keys: Pick<BenchKeys, 'keyId' | 'secret'>, version: 1 | 2, n: number): PreSigned[] {
  const out: PreSigned[] = [];
  for (let i = 0; i < n; i++) {
    const { headers } = signRequest({ method: 'POST', url: BENCH_PATH, body: BENCH_BODY, keyId: keys.keyId, secret: keys.secret, version });
    const lower: Record<string, string> = { 'content-type': 'application/json' };
    for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v;
    out.push({ headers: lower });
  }
  return out;
}

/** The gate's view of a pre-signed request, as bindGate builds it. */
export function gateRequest(signed: PreSigned): GateRequest {
  const body = Buffer.from(BENCH_BODY);
  const json: unknown = JSON.parse(BENCH_BODY);
  return {
    method: 'POST', path: BENCH_PATH, rawQuery: '', headers: signed.headers, body, json, peerIp: '127.0.0.1',
    model: () => ({ name: 'guard-small', size: 'small' }),
  };
}

export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** POSTs a signed JSON body to the server on 127.0.0.1:port; resolves on 200, rejects on any other answer. */
export function signedPost(agent: http.Agent, port: number, keys: Pick<BenchKeys, 'keyId' | 'secret'>, url: string, body: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const { headers } = signRequest({ method: 'POST', url, body, keyId: keys.keyId, secret: keys.secret });
    const req = http.request({ host: '127.0.0.1', port, path: url, method: 'POST', agent, headers: { ...headers, 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Runs `n` calls of `one` with `concurrency` in flight; returns calls per second. */
export async function drive(n: number, concurrency: number, one: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await one(next++);
  }));
  return n / ((performance.now() - t0) / 1000);
}
