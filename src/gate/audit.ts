import fs from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir } from '../core/atomic.js';
import { truncateIp } from './ip.js';

/**
 * One JSON line per gated request. By construction it holds no request or response text, no secret, no
 * signature and no full client address: the record type has no field for them.
 */
export interface AuditRecord {
  time: string;
  request_id: string;
  key_id: string | null;
  tier: string | null;
  route: string;
  model: string | null;
  status: number;
  reason: string | null;
  latency_ms: number;
  input_bytes: number;
  output_bytes: number;
  /** The client's /24 (IPv4) or /48 (IPv6). */
  client_net: string;
}

export interface AuditSink {
  write(record: AuditRecord): void;
  close(): Promise<void>;
}

export function auditRecord(f: Omit<AuditRecord, 'client_net' | 'time'> & { clientIp: string; time?: number }): AuditRecord {
  return {
    time: new Date(f.time ?? Date.now()).toISOString(),
    request_id: f.request_id,
    key_id: f.key_id,
    tier: f.tier,
    route: f.route,
    model: f.model,
    status: f.status,
    reason: f.reason,
    latency_ms: f.latency_ms,
    input_bytes: f.input_bytes,
    output_bytes: f.output_bytes,
    client_net: truncateIp(f.clientIp),
  };
}

/** Appends to a 0600 file in a 0700 directory; writes are buffered by the stream, never block a request. */
export function fileAuditSink(file: string): AuditSink {
  ensurePrivateDir(path.dirname(file));
  const stream = fs.createWriteStream(file, { flags: 'a', mode: 0o600 });
  return {
    write(record) {
      stream.write(`${JSON.stringify(record)}\n`);
    },
    close() {
      return new Promise((resolve) => stream.end(resolve));
    },
  };
}

export const nullAuditSink: AuditSink = { write() {}, async close() {} };
