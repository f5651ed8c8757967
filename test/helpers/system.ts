import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';

// Only a hung program reaches this: a busy machine can take many seconds to start a large script (testssl).
const VERSION_PROBE_BOUND_MS = 120_000;

const probed = new Map<string, string | undefined>();

/**
 * Whether an external program can be run. When it cannot, the calling test is skipped, unless
 * GUARDCTL_REQUIRE_SYSTEM=1 (CI machines that must exercise it), where the test fails instead.
 * Presence is the executable file on PATH; running it once with `versionArg` proves it works (a broken install).
 */
export function haveProgram(t: { skip(message?: string): void }, program: string, versionArg = '--version'): boolean {
  const key = `${program}\0${versionArg}`;
  if (!probed.has(key)) probed.set(key, whyNotRunnable(program, versionArg));
  const why = probed.get(key);
  return availableOrSkip(t, why === undefined, program, why ?? '');
}

/** The executable file `program` names: itself when it has a slash, else the first match on PATH. */
export function findProgram(program: string, searchPath = process.env.PATH ?? ''): string | undefined {
  const candidates = program.includes('/') ? [program] : searchPath.split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, program));
  return candidates.find((file) => {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return fs.statSync(file).isFile();
    } catch {
      return false;
    }
  });
}

function whyNotRunnable(program: string, versionArg: string): string | undefined {
  const file = findProgram(program);
  if (file === undefined) return program.includes('/') ? 'cannot be run: no executable file there' : 'cannot be run: no executable file of that name on PATH';
  const probe = spawnSync(file, [versionArg], { stdio: 'ignore', timeout: VERSION_PROBE_BOUND_MS });
  if (probe.error === undefined && probe.status === 0) return undefined;
  return `cannot be run: \`${file} ${versionArg}\` ${probe.error?.message ?? (probe.status === null ? `was killed (${probe.signal})` : `exited ${probe.status}`)}`;
}

/**
 * `available`, or else the calling test is skipped (saying `what` is missing and why), unless
 * GUARDCTL_REQUIRE_SYSTEM=1, where it fails instead.
 */
export function availableOrSkip(t: { skip(message?: string): void }, available: boolean, what: string, why: string): boolean {
  if (available) return true;
  if (process.env.GUARDCTL_REQUIRE_SYSTEM === '1') throw new Error(`${what} is required (GUARDCTL_REQUIRE_SYSTEM=1) but ${why}`);
  t.skip(`${what} is not available: ${why}`);
  return false;
}

/** Listens on a random loopback port and returns the base URL (http://127.0.0.1:PORT). */
export async function listenLoopback(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error(`unexpected server address ${String(address)}`);
  return `http://127.0.0.1:${address.port}`;
}
