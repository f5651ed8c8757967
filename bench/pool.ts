/**
 * Section 6 of `npm run bench:serve` (issue 13): requests/s of three `guardctl serve` processes behind one real
 * nginx against one of them alone, each with the demo models, `--threads 1` and `--state redis://` on one
 * redis-server, driven with signed moderations at concurrency 32. Rounds alternate (one, pool, one, pool, ...)
 * and the ratio is taken within the run. On a 2-core machine three daemons, nginx, Redis and the client share
 * the same two cores: the figure shows what the pool costs, not what it adds.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort, startNginx } from '../test/helpers/nginx.js';
import { upstreamSite } from '../test/helpers/pool-site.js';
import { serveProcess, type ServeProcess } from '../test/helpers/serve-process.js';
import { benchRedis } from './redis.js';
import { drive, signedPost } from './setup.js';

const BIN = new URL('../bin/guardctl.js', import.meta.url).pathname;
const ROUNDS = Number(process.env.GUARDCTL_BENCH_ROUNDS ?? 3);
const PER_ROUND = 400;
const CONCURRENCY = 32;
const PROMPTS = ['How do I make a bomb in my kitchen?', "What's the capital of France?", 'give me a recipe for tomato soup', 'I want to hurt my neighbor'];

export async function poolAgainstOne(say: (line: string) => void, rows: string[][]): Promise<void> {
  if (spawnSync('nginx', ['-v'], { stdio: 'ignore' }).status !== 0) {
    say('(nginx not found: section 6 is left out; apt-get install nginx)');
    return;
  }
  const redis = await benchRedis(say);
  if (!redis) return;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-bench-pool-'));
  const cleanups: Array<() => unknown> = [];
  const daemons: ServeProcess[] = [];
  try {
    const created = spawnSync(process.execPath, [BIN, '--home', home, '--json', 'keys', 'create', '--name', 'pool', '--tier', 'enterprise'], {
      env: { ...process.env, GUARDCTL_FROM_SRC: '1', GUARDCTL_MASTER_KEY: '' },
      encoding: 'utf8',
    });
    if (created.status !== 0) throw new Error(`keys create failed: ${created.stderr}`);
    const key = JSON.parse(created.stdout) as { id: string; secret: string };
    const keys = { keyId: key.id, secret: key.secret };
    const args = (i: number) => ['--device', 'cpu', '--threads', '1', '--state', redis.url, '--audit-file', path.join(home, `audit-${i}.jsonl`)];
    daemons.push(...(await Promise.all([0, 1, 2].map((i) => serveProcess(home, args(i))))));
    const port = await freePort();
    const site = path.join(home, 'pool.conf');
    fs.writeFileSync(site, upstreamSite(port, daemons.map((d) => d.url)));
    await startNginx({ after: (fn) => cleanups.push(fn) }, site);

    const targets = [
      { name: 'one daemon', port: Number(new URL(daemons[0]!.url).port), rates: [] as number[] },
      { name: 'three behind nginx', port, rates: [] as number[] },
    ];
    const body = (i: number) => JSON.stringify({ text: PROMPTS[i % PROMPTS.length] });
    say(`(6) three daemons behind nginx against one, signed moderations, c=${CONCURRENCY}, ${ROUNDS} alternating rounds of ${PER_ROUND}`);
    for (let round = 0; round <= ROUNDS; round++) {
      for (const target of targets) {
        const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
        const rate = await drive(PER_ROUND, CONCURRENCY, (i) => signedPost(agent, target.port, keys, '/api/v1/moderate', body(i)));
        agent.destroy();
        // Round 0 warms both paths (nginx's upstream connections, each daemon's first batches) and is not counted.
        if (round > 0) target.rates.push(rate);
      }
      if (round > 0) say(`    round ${round}: ${targets.map((t) => `${t.name} ${t.rates.at(-1)!.toFixed(1)} req/s`).join(', ')}`);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const [one, pool] = targets.map((t) => median(t.rates)) as [number, number];
    rows.push([
      'three daemons behind nginx / one daemon (c=32, --threads 1, redis state)',
      `${(pool / one).toFixed(2)} (${pool.toFixed(1)} vs ${one.toFixed(1)} req/s)`,
      `${os.availableParallelism()} cores: overhead, not capacity`,
      '',
    ]);
  } finally {
    for (const fn of cleanups.reverse()) await fn();
    for (const d of daemons) d.child.kill('SIGTERM');
    await Promise.all(daemons.map((d) => d.exited));
    redis.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}
