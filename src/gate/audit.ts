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
    time: isoTime(f.time ?? Date.now()),
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
    client_net: clientNet(f.clientIp),
  };
}

/**
 * The record as JSON.stringify writes it, plus a newline, built by hand: the whole-object JSON.stringify was the
 * largest part of writing a record. A test holds the two equal for every field of the type.
 */
export function auditLine(r: AuditRecord): string {
  return `{"time":${str(r.time)},"request_id":${str(r.request_id)},"key_id":${str(r.key_id)},"tier":${str(r.tier)},`
    + `"route":${str(r.route)},"model":${str(r.model)},"status":${num(r.status)},"reason":${str(r.reason)},`
    + `"latency_ms":${num(r.latency_ms)},"input_bytes":${num(r.input_bytes)},"output_bytes":${num(r.output_bytes)},`
    + `"client_net":${str(r.client_net)}}\n`;
}

/** Printable ASCII but `"` and `\\`: JSON writes such a string as it is, between quotes. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function str(s: string | null): string {
  // Ids, tiers, routes, times and networks are plain: a regexp test costs a fraction of JSON.stringify.
  return s === null ? 'null' : PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);
}

function num(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

/** Year 10000: from there on toISOString writes a six-digit year with a sign. */
const LAST_FOUR_DIGIT_YEAR_MS = 253_402_300_800_000;
let isoSecond = Number.NaN;
let isoPrefix = '';

/**
 * Date#toISOString, with everything up to the seconds formatted once per second: every gated request writes a
 * time, and Date formatting was the largest part of building its record.
 */
export function isoTime(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms >= LAST_FOUR_DIGIT_YEAR_MS) return new Date(ms).toISOString();
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20);
    isoSecond = second;
  }
  const milli = ms - second * 1000;
  return `${isoPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/** Client addresses seen lately and their networks: the same few clients send most requests. */
const nets = new Map<string, string>();

function clientNet(ip: string): string {
  let net = nets.get(ip);
  if (net === undefined) {
    net = truncateIp(ip);
    if (nets.size >= 4096) nets.clear();
    nets.set(ip, net);
  }
  return net;
}

/** Lines wait at most this long, or until BATCH_CHARS of them are pending, before they go to the file. */
export const AUDIT_FLUSH_MS = 20;
const BATCH_CHARS = 64 * 1024;

/**
 * Appends to a 0600 file in a 0700 directory; writes never block a request. Lines go to the file in batches
 * (within AUDIT_FLUSH_MS): a file write per request cost more than the gate's checks, mostly in handing each
 * one to libuv's thread pool. close() writes what is pending first.
 */
export function fileAuditSink(file: string): AuditSink {
  ensurePrivateDir(path.dirname(file));
  const stream = fs.createWriteStream(file, { flags: 'a', mode: 0o600 });
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (pending === '') return;
    stream.write(pending);
    pending = '';
  };
  return {
    write(record) {
      pending += auditLine(record);
      if (pending.length >= BATCH_CHARS) flush();
      else timer ??= setTimeout(flush, AUDIT_FLUSH_MS);
    },
    close() {
      flush();
      return new Promise((resolve) => stream.end(resolve));
    },
  };
}

export const nullAuditSink: AuditSink = { write() {}, async close() {} };
