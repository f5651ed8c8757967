import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { main } from '../../src/cli.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (for runs with --json); fails with the raw output when it is not JSON. */
  json<T = any>(): T;
}

export interface CliRunOptions {
  /** The whole environment the CLI sees (default: empty, so the developer's GUARDCTL_* never leak in). */
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  /** What the CLI reads as stdin (`--data -`); none by default. */
  stdin?: string | Buffer;
}

/** Collects everything written to it as one string. */
export class MemoryStream extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.text += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    done();
  }
}

/** Runs the real CLI in-process, as `guardctl ...args` would, with in-memory stdout/stderr. */
export async function runCli(args: string[], opts: CliRunOptions = {}): Promise<CliRun> {
  const stdout = new MemoryStream();
  const stderr = new MemoryStream();
  const code = await main(args, { stdout, stderr, env: opts.env ?? {}, now: opts.now, ...(opts.stdin !== undefined ? { stdin: Readable.from([Buffer.from(opts.stdin)]) } : {}) });
  return {
    code,
    stdout: stdout.text,
    stderr: stderr.text,
    json<T>() {
      try {
        return JSON.parse(stdout.text) as T;
      } catch {
        throw new Error(`stdout is not JSON (exit ${code}):\n${stdout.text}\nstderr:\n${stderr.text}`);
      }
    },
  };
}

/** A fresh temporary directory (for --home), removed when the test ends. */
export function tempDir(t: { after(fn: () => void): void }, prefix = 'guardctl-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
