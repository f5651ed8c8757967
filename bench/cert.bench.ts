/**
 * `npm run bench:cert`: wall time to issue a name + wildcard certificate against one local Pebble + BIND,
 * guardctl vs lego and certbot from Debian, alternating rounds in one run. The others get the fair setup the
 * issue names: lego with RFC2136_SEQUENCE_INTERVAL=1, RFC2136_POLLING_INTERVAL=1 and --dns.disable-cp (no
 * propagation check at all), certbot with --dns-rfc2136-propagation-seconds 1. guardctl still checks every
 * authoritative server before telling the CA.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startBind } from '../test/helpers/bind.js';
import { startPebble } from '../test/helpers/pebble.js';

const ROUNDS = Number(process.env.BENCH_CERT_ROUNDS ?? 3);
const cleanups: Array<() => unknown> = [];
const t = { skip(message?: string): void { throw new Error(`cannot run: ${message}`); }, after(fn: () => unknown) { cleanups.push(fn); } };
const say = (s: string) => process.stdout.write(`${s}\n`);
const root = path.resolve(new URL('..', import.meta.url).pathname);

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const killer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, out, ms: performance.now() - t0 });
    });
  });
}

async function main(): Promise<void> {
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`build failed:\n${build.stdout}${build.stderr}`);
  const bind = (await startBind(t))!;
  const pebble = (await startPebble(t, { dnsServer: `127.0.0.1:${bind.port}` }))!;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-bench-cert-'));
  cleanups.push(() => fs.rmSync(work, { recursive: true, force: true }));
  const rfc = {
    RFC2136_NAMESERVER: `127.0.0.1:${bind.port}`, RFC2136_TSIG_KEY: bind.tsig.name, RFC2136_TSIG_SECRET: bind.tsig.secret,
    RFC2136_TSIG_ALGORITHM: `${bind.tsig.algorithm}.`,
  };
  const ini = path.join(work, 'rfc2136.ini');
  fs.writeFileSync(ini, [`dns_rfc2136_server = 127.0.0.1`, `dns_rfc2136_port = ${bind.port}`, `dns_rfc2136_name = ${bind.tsig.name}`,
    `dns_rfc2136_secret = ${bind.tsig.secret}`, `dns_rfc2136_algorithm = ${bind.tsig.algorithm.toUpperCase()}`, ''].join('\n'), { mode: 0o600 });

  const tools: Record<string, (name: string, dir: string) => Promise<{ code: number | null; out: string; ms: number }>> = {
    guardctl: (name, dir) => run(process.execPath, [path.join(root, 'bin/guardctl.js'), '--home', dir, 'cert', 'issue', '-d', name, '-d', `*.${name}`,
      '--dns', 'rfc2136', '--server', pebble.directory, '--agree-tos', '--email', 'bench@example.test', '--key-type', 'ec256',
      '--dns-resolvers', `127.0.0.1:${bind.port}`, '--dns-interval', '1'], { ...rfc, NODE_EXTRA_CA_CERTS: pebble.caFile, GUARDCTL_FROM_SRC: '0' }),
    lego: (name, dir) => run('lego', ['--server', pebble.directory, '--accept-tos', '--email', 'bench@example.test', '--dns', 'rfc2136', '--dns.disable-cp',
      '--key-type', 'ec256', '-d', name, '-d', `*.${name}`, '--path', dir, 'run'],
    { ...rfc, RFC2136_SEQUENCE_INTERVAL: '1', RFC2136_POLLING_INTERVAL: '1', LEGO_CA_CERTIFICATES: pebble.caFile }),
    certbot: (name, dir) => run('certbot', ['certonly', '--non-interactive', '--agree-tos', '-m', 'bench@example.test', '--server', pebble.directory,
      '--dns-rfc2136', '--dns-rfc2136-credentials', ini, '--dns-rfc2136-propagation-seconds', '1', '--key-type', 'ecdsa',
      '-d', name, '-d', `*.${name}`, '--config-dir', path.join(dir, 'c'), '--work-dir', path.join(dir, 'w'), '--logs-dir', path.join(dir, 'l')],
    { REQUESTS_CA_BUNDLE: pebble.caFile }),
  };
  const times: Record<string, number[]> = { guardctl: [], lego: [], certbot: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const [tool, issue] of Object.entries(tools)) {
      const name = `r${round}-${tool}.example.test`;
      const dir = path.join(work, `${tool}-${round}`);
      fs.mkdirSync(dir, { recursive: true });
      const r = await issue(name, dir);
      if (r.code !== 0) throw new Error(`${tool} failed (exit ${r.code}):\n${r.out.slice(-3000)}`);
      times[tool]!.push(r.ms);
      say(`round ${round + 1}: ${tool.padEnd(8)} ${(r.ms / 1000).toFixed(2)} s`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const g = median(times.guardctl!);
  say('');
  say('tool      median wall time   guardctl / tool');
  for (const tool of Object.keys(tools)) {
    const m = median(times[tool]!);
    say(`${tool.padEnd(9)} ${(m / 1000).toFixed(2).padStart(8)} s        ${(g / m).toFixed(2)}`);
  }
  const faster = g < median(times.lego!) && g < median(times.certbot!);
  say(`target: guardctl faster than both (ratio < 1): ${faster ? 'met' : 'MISSED'}`);
  say(`(name + wildcard, ec256, ${ROUNDS} rounds, Pebble ${pebble.directory}, BIND 127.0.0.1:${bind.port}; ${new Date().toISOString()})`);
}

try {
  await main();
} finally {
  for (const fn of cleanups.reverse()) await fn();
}
