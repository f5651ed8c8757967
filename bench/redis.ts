import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A redis-server of the bench's own (free loopback port, temporary directory, nothing saved), for the rows with
 * `--state redis://...`; undefined, with a note, when redis-server cannot be run (those rows are left out).
 */
export async function benchRedis(say: (line: string) => void): Promise<{ url: string; stop(): void } | undefined> {
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) {
    say('(redis-server not found: the --state redis rows are left out; apt-get install redis-server)');
    return undefined;
  }
  const port = await new Promise<number>((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = s.address() as net.AddressInfo;
      s.close(() => resolve(p));
    }).on('error', reject);
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('Ready to accept connections')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
  });
  child.stdout!.resume();
  child.stderr!.resume();
  // The bench's own work decides when it ends: the server is stopped on exit, not waited for.
  child.unref();
  for (const stream of [child.stdout, child.stderr] as Array<{ unref?: () => void } | null>) stream?.unref?.();
  const stop = () => {
    child.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stop);
  return { url: `redis://127.0.0.1:${port}`, stop };
}

/** What a bench row calls a state: the URL's scheme for Redis (its port changes every run). */
export function stateLabel(kind: string): string {
  return kind.startsWith('redis') ? 'redis' : kind;
}
