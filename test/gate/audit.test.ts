import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { AUDIT_FLUSH_MS, auditLine, auditRecord, fileAuditSink, isoTime, type AuditRecord } from '../../src/gate/audit.js';
import { tempDir } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

test('audit times are exactly Date#toISOString, across seconds, years and the values it formats differently', () => {
  const times = [
    0, 1, 9, 10, 99, 100, 999, 1000, 1001, Date.UTC(2026, 10, 29, 23, 59, 59, 999), Date.UTC(2026, 10, 30), Date.UTC(2024, 1, 29, 12),
    253_402_300_799_999, 253_402_300_800_000, -1, -1000, 1.5, 8.64e15,
  ];
  // Same second twice, then back to an earlier second: the cached prefix must follow.
  for (let t = Date.UTC(2026, 0, 1, 0, 0, 58, 990); t < Date.UTC(2026, 0, 1, 0, 1, 0, 20); t += 7) times.push(t);
  times.push(Date.UTC(2026, 0, 1, 0, 0, 58, 500));
  for (const t of times) assert.equal(isoTime(t), new Date(t).toISOString(), `time ${t}`);
});

test('an audit record holds the client network, not its address, for v4, mapped v4 and v6 clients', () => {
  const base = {
    request_id: 'r', key_id: null, tier: null, route: '/x', model: null, status: 401, reason: 'missing_auth',
    latency_ms: 1, input_bytes: 0, output_bytes: 0, time: 0,
  };
  // The second of each pair is served from the cache of recent addresses.
  const nets = ['203.0.113.77', '203.0.113.77', '::ffff:10.1.2.3', '::ffff:10.1.2.3', '2001:db8:abcd:12::1', '2001:db8:abcd:12::1', 'garbage']
    .map((clientIp) => auditRecord({ ...base, clientIp }).client_net);
  assert.deepEqual(nets, ['203.0.113.0/24', '203.0.113.0/24', '10.1.2.0/24', '10.1.2.0/24', '2001:db8:abcd::/48', '2001:db8:abcd::/48', 'unknown']);
});

test('an audit line is exactly JSON.stringify of the record, escapes, nulls and odd numbers included', () => {
  const full: AuditRecord = {
    time: '2026-11-29T23:59:59.999Z', request_id: 'r-1', key_id: 'gk_x', tier: 'free', route: '/api/v1/moderate', model: 'guard-demo',
    status: 200, reason: null, latency_ms: 0.125, input_bytes: 10, output_bytes: 20, client_net: '203.0.113.0/24',
  };
  const odd: AuditRecord = {
    ...full, request_id: 'quote " backslash \\ newline \n tab \t nul \u0000 \u2028 del \u007f edges ! # [ ] ~ \u0080', key_id: null, tier: null, model: 'm\u{1F600}\uD800',
    reason: 'bad_signature', status: -0, latency_ms: Number.NaN, input_bytes: Infinity, output_bytes: 1e21,
  };
  for (const r of [full, odd]) {
    assert.equal(auditLine(r), `${JSON.stringify(r)}\n`);
    assert.deepEqual(Object.keys(JSON.parse(auditLine(r))), Object.keys(r), 'every field of the record, in order');
  }
});

function record(i: number) {
  return auditRecord({
    request_id: `req-${i}`, key_id: 'gk_x', tier: 'free', route: '/api/v1/moderate', model: 'guard-demo', status: 200, reason: null,
    latency_ms: 0.5, input_bytes: 10, output_bytes: 20, clientIp: '127.0.0.1', time: 1_700_000_000_000 + i,
  });
}

function lines(file: string): string[] {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

test('the file sink writes every line once, in order, whether a batch fills up or close() flushes it', async (t) => {
  const file = path.join(tempDir(t), 'audit', 'audit.jsonl');
  const sink = fileAuditSink(file);
  // About 250 bytes a line: 1,000 lines cross the 64 KiB batch limit several times.
  const n = 1000;
  for (let i = 0; i < n; i++) sink.write(record(i));
  await sink.close();
  const ids = lines(file).map((l) => (JSON.parse(l) as { request_id: string }).request_id);
  assert.deepEqual(ids, Array.from({ length: n }, (_, i) => `req-${i}`));
  assert.equal((fs.statSync(file).mode & 0o777).toString(8), '600');
});

test('a batched line reaches the file without close(), soon after it was written', async (t) => {
  const file = path.join(tempDir(t), 'audit', 'audit.jsonl');
  const sink = fileAuditSink(file);
  t.after(() => sink.close());
  sink.write(record(1));
  sink.write(record(2));
  // Waits for the flush timer and the file write; only a sink that never flushes reaches the hang bound.
  // Counted by their newlines, so that a line caught half-written is not taken for a whole one.
  const whole = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').length - 1 : 0);
  await waitFor(() => whole() >= 2, () => `both lines in the file (${whole()} so far, flushed every ${AUDIT_FLUSH_MS} ms)`);
  assert.deepEqual(lines(file).map((l) => (JSON.parse(l) as { request_id: string }).request_id), ['req-1', 'req-2']);
});
