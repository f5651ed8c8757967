import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './nginx.js';
import { haveProgram } from './system.js';
import { HANG_BOUND_MS } from './wait.js';

export const REDIS_SERVER = 'redis-server';

export interface RunningRedis {
  port: number;
  /** redis://127.0.0.1:PORT */
  url: string;
  /** Stops it (SIGTERM, then SIGKILL past the bound); resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty: nothing is saved); resolves once it accepts connections. */
  start(): Promise<void>;
  /** What it printed so far. */
  log(): string;
}

/**
 * A redis-server of the test's own on a free loopback port, in its own directory, with nothing saved
 * (`--save '' --appendonly no`) and no system service; ready once it prints "Ready to accept connections".
 * Undefined when redis-server cannot be run (the test is skipped; GUARDCTL_REQUIRE_SYSTEM=1 fails it instead).
 * Works as root or not: it needs no user of its own.
 */
export async function startRedis(t: { skip(message?: string): void; after(fn: () => unknown): void }): Promise<RunningRedis | undefined> {
  if (!haveProgram(t, REDIS_SERVER)) return undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';
  const start = async () => {
    const proc = spawn(REDIS_SERVER, [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--loglevel', 'notice', '--protected-mode', 'yes',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not get ready within ${HANG_BOUND_MS} ms:\n${output}`)), HANG_BOUND_MS);
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (/Ready to accept connections/.test(output.slice(-4096))) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`));
      });
    });
  };
  const stop = async () => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    // The next start's "Ready" must not be matched against this run's output.
    output += '\n-- stopped --\n';
    proc.kill('SIGTERM');
    const killer = setTimeout(() => proc.kill('SIGKILL'), HANG_BOUND_MS);
    await exited;
    clearTimeout(killer);
  };
  await start();
  t.after(async () => {
    await stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    start: async () => {
      output = '';
      await start();
    },
    log: () => output,
  };
}
