/**
 * `npm run bench:cli`: how long a `guardctl` process takes from start to exit, as a user runs it (node
 * bin/guardctl.js on the compiled dist/, which `npm ci` builds), for the commands people run often. Each command
 * runs ROUNDS times, interleaved with `node -e 1` so that both see the same machine load; the table gives the
 * medians and each command's ratio to a bare Node start. The goal (issue 14): under 150 ms median each.
 *
 * GUARDCTL_BENCH_BASELINE=/path/to/other/bin/guardctl.js adds a second column for another checkout (for example
 * the commit before a change, built with `npm run build` there), run in the same rounds: before / after.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = Number(process.env.GUARDCTL_BENCH_ROUNDS ?? 15);
const say = (s: string) => process.stdout.write(`${s}\n`);

// The launcher prefers dist/ and falls back to tsx; measure what users run, so compile first.
const build = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
if (build.status !== 0) throw new Error('npm run build failed');

const current = path.join(ROOT, 'bin/guardctl.js');
const baseline = process.env.GUARDCTL_BENCH_BASELINE ? path.resolve(process.env.GUARDCTL_BENCH_BASELINE) : undefined;

/**
 * A home per executable with one key in its store, so that `keys list` opens it (SQLite, master key) as on a real
 * host; each executable gets its own, since an older guardctl refuses a newer store schema.
 */
interface Setup { home: string; key: { id: string; secret: string } }
function setup(bin: string): Setup {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-bench-cli-'));
  const created = spawnSync(process.execPath, [bin, '--json', 'keys', 'create', '--name', 'bench', '--tier', 'free'], { env: envFor(home), encoding: 'utf8' });
  if (created.status !== 0) throw new Error(`${bin} keys create failed: ${created.stderr}`);
  return { home, key: JSON.parse(created.stdout) as Setup['key'] };
}
function envFor(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GUARDCTL_HOME: home };
  delete env.GUARDCTL_FROM_SRC;
  delete env.GUARDCTL_CONFIG;
  return env;
}
const homes = new Map<string, Setup>([[current, setup(current)], ...(baseline ? [[baseline, setup(baseline)] as const] : [])]);

function run(bin: string, args: (key: Setup['key']) => string[], extraEnv: (key: Setup['key']) => Record<string, string> = () => ({})): number {
  const { home, key } = homes.get(bin)!;
  const started = performance.now();
  const r = spawnSync(process.execPath, [bin, ...args(key)], { env: { ...envFor(home), ...extraEnv(key) }, encoding: 'utf8' });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`${bin} ${args(key).join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

const COMMANDS: Array<{ label: string; args: (key: Setup['key']) => string[]; env?: (key: Setup['key']) => Record<string, string> }> = [
  { label: '--version', args: () => ['--version'] },
  { label: '--help', args: () => ['--help'] },
  { label: 'keys list', args: () => ['keys', 'list'] },
  {
    label: 'sign',
    args: (key) => ['sign', 'POST', 'https://guard.example.com/api/v1/moderate', '--data', '{"text":"hello"}', '--key', key.id, '--secret-env', 'BENCH_SECRET'],
    env: (key) => ({ BENCH_SECRET: key.secret }),
  },
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const nodeTimes: number[] = [];
const times = new Map<string, { now: number[]; before: number[] }>(COMMANDS.map((c) => [c.label, { now: [], before: [] }]));
for (let round = 0; round < ROUNDS; round++) {
  const t0 = performance.now();
  spawnSync(process.execPath, ['-e', '1']);
  nodeTimes.push(performance.now() - t0);
  for (const c of COMMANDS) {
    times.get(c.label)!.now.push(run(current, c.args, c.env));
    if (baseline) times.get(c.label)!.before.push(run(baseline, c.args, c.env));
  }
}
for (const { home } of homes.values()) fs.rmSync(home, { recursive: true, force: true });

const nodeMs = median(nodeTimes);
say(`guardctl start-up, median of ${ROUNDS} runs each on ${os.cpus().length} cores, node ${process.version}; node -e 1: ${nodeMs.toFixed(0)} ms`);
say('');
// The goal was set where `node -e 1` takes about 40 ms; on a slower or busier machine the ratio carries over.
const header = ['command', ...(baseline ? ['before ms', 'before / node'] : []), 'ms', 'ms / node -e 1', ...(baseline ? ['before / now'] : []), 'goal < 150 ms', 'at node 40 ms'];
const rows = COMMANDS.map((c) => {
  const t = times.get(c.label)!;
  const now = median(t.now);
  const before = baseline ? median(t.before) : 0;
  return [
    c.label,
    ...(baseline ? [before.toFixed(0), `${(before / nodeMs).toFixed(1)}x`] : []),
    now.toFixed(0),
    `${(now / nodeMs).toFixed(1)}x`,
    ...(baseline ? [`${(before / now).toFixed(1)}x`] : []),
    now < 150 ? 'met' : 'MISSED',
    `~${Math.round((now / nodeMs) * 40)} ms`,
  ];
});
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
for (const r of [header, ...rows]) say(r.map((cell, i) => cell.padEnd(widths[i]!)).join('  '));
