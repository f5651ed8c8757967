import fs from 'node:fs';
import path from 'node:path';

/**
 * Self time per function, file and group from a V8 .cpuprofile (node --cpu-prof), counted only inside the given
 * time windows, per label, in µs per request. Used by `GUARDCTL_BENCH_PROFILE=dir npm run bench` to say where
 * a gated request's server time goes, without the server's start-up or the other route's rounds.
 *
 * Samples are counted rather than weighted by the time between them: on a shared machine the thread is often
 * off its core between two samples, and that wait would be charged to whatever ran last (mostly the writev
 * that woke the client). The counts are then scaled to the thread's measured on-CPU time.
 */
export interface ProfileWindow {
  label: string;
  /** Monotonic µs, as process.hrtime.bigint() / 1000n (the clock V8 stamps samples with on Linux). */
  start: number;
  end: number;
}

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Sample counts per label. */
export type SelfTimes = Map<string, { fn: Map<string, number>; group: Map<string, number>; total: number }>;

export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** The newest .cpuprofile written to `dir` (a worker writes one when it exits). */
export function newestProfile(dir: string): string {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  if (!files[0]) throw new Error(`no .cpuprofile in ${dir}`);
  return files[0];
}

/** Counts samples by label, function and group; idle samples are left out. */
export function selfTimes(file: string, windows: ProfileWindow[]): SelfTimes {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const out: SelfTimes = new Map();
  const sorted = [...windows].sort((a, b) => a.start - b.start);
  let t = profile.startTime;
  let w = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    while (w < sorted.length && sorted[w]!.end < t) w++;
    const win = sorted[w];
    if (!win || t < win.start) continue;
    const frame = frames.get(profile.samples[i]!)!;
    if (frame.functionName === '(idle)') continue;
    let times = out.get(win.label);
    if (!times) out.set(win.label, (times = { fn: new Map(), group: new Map(), total: 0 }));
    const where = shortUrl(frame.url);
    add(times.fn, `${frame.functionName || '(anonymous)'}${where ? ` ${where}:${frame.lineNumber + 1}` : ''}`);
    add(times.group, group(where, frame.functionName));
    times.total++;
  }
  return out;
}

function add(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function shortUrl(url: string): string {
  if (!url) return '';
  const clean = url.replace(/\?.*$/, '');
  const nm = clean.lastIndexOf('/node_modules/');
  if (nm !== -1) return clean.slice(nm + '/node_modules/'.length);
  const src = clean.search(/\/(src|bench)\//);
  if (src !== -1) return clean.slice(src + 1);
  return clean;
}

/** Coarse buckets for the summary: this project's modules, fastify and its helpers, node's http stack, ... */
function group(where: string, fn: string): string {
  if (where.startsWith('src/gate/')) return 'guardctl gate (src/gate)';
  if (where.startsWith('src/keys/')) return 'guardctl key lookup (src/keys)';
  if (where.startsWith('src/') || where.startsWith('bench/')) return 'guardctl other';
  if (/^(fastify|find-my-way|avvio|light-my-request|fast-json-stringify|@fastify|fast-querystring|toad-cache|secure-json-parse|abstract-logging|pino|process-warning|rfdc|fast-uri|json-schema-ref-resolver)\b/.test(where)) return 'fastify + helpers';
  if (where.startsWith('node:_http') || where === 'node:http' || where.startsWith('node:internal/http')) return 'node http';
  if (where === 'node:net' || where.startsWith('node:internal/stream_base') || where.startsWith('node:internal/streams') || where === 'node:stream') return 'node net/streams';
  if (where.startsWith('node:internal/crypto') || where === 'node:crypto') return 'node crypto';
  if (where === 'node:events' || where.startsWith('node:internal/process/task_queues') || where.startsWith('node:internal/timers') || where.startsWith('node:internal/async_hooks')) return 'node events/ticks/timers';
  if (where.startsWith('node:')) return 'node other';
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return '(program: native, not JS)';
  if (!where) return `native: ${fn}`;
  return where.split('/')[0]!;
}

/**
 * The groups and top functions per label in µs per request (a label's samples scaled to `cpuUs`, its measured
 * on-CPU µs in all), and the functions that differ most between two labels.
 */
export function report(times: SelfTimes, requests: Record<string, number>, cpuUs: Record<string, number>, diff?: [string, string], top = 30): string {
  const lines: string[] = [];
  const per = (label: string) => cpuUs[label]! / times.get(label)!.total / requests[label]!;
  const us = (v: number) => v.toFixed(1).padStart(7);
  for (const [label, t] of times) {
    const k = per(label);
    lines.push(`  ${label}: ${(t.total * k).toFixed(1)} µs on CPU per request (${t.total} samples), by group:`);
    for (const [name, n] of [...t.group].sort((a, b) => b[1] - a[1])) lines.push(`    ${us(n * k)}  ${name}`);
    lines.push(`  ${label}: top functions by self time, µs/request:`);
    for (const [name, n] of [...t.fn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`    ${us(n * k)}  ${name}`);
  }
  const [a, b] = diff ?? [];
  const ta = a && times.get(a);
  const tb = b && times.get(b);
  if (ta && tb) {
    const [ka, kb] = [per(a), per(b)];
    lines.push(`  ${a} - ${b}: ${(ta.total * ka - tb.total * kb).toFixed(1)} µs/request; largest differences by function:`);
    const d = [...new Set([...ta.fn.keys(), ...tb.fn.keys()])].map((name) => [name, (ta.fn.get(name) ?? 0) * ka - (tb.fn.get(name) ?? 0) * kb] as const);
    for (const [name, v] of d.sort((x, y) => Math.abs(y[1]) - Math.abs(x[1])).slice(0, top)) lines.push(`    ${us(v)}  ${name}`);
    lines.push(`  by group:`);
    const g = [...new Set([...ta.group.keys(), ...tb.group.keys()])].map((name) => [name, (ta.group.get(name) ?? 0) * ka - (tb.group.get(name) ?? 0) * kb] as const);
    for (const [name, v] of g.sort((x, y) => Math.abs(y[1]) - Math.abs(x[1])).slice(0, 12)) lines.push(`    ${us(v)}  ${name}`);
  }
  return lines.join('\n');
}
