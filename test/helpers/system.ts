import { spawnSync } from 'node:child_process';
import type { FastifyInstance } from 'fastify';

/**
 * Whether an external program can be run. When it cannot, the calling test is skipped, unless
 * GUARDCTL_REQUIRE_SYSTEM=1 (CI machines that must exercise it), where the test fails instead.
 */
export function haveProgram(t: { skip(message?: string): void }, program: string, versionArg = '--version'): boolean {
  const probe = spawnSync(program, [versionArg], { stdio: 'ignore', timeout: 10_000 });
  return availableOrSkip(t, probe.error === undefined && probe.status === 0, program, `cannot be run: ${probe.error?.message ?? `exit ${probe.status}`}`);
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
