import { spawnSync } from 'node:child_process';
import type { FastifyInstance } from 'fastify';

/**
 * Whether an external program can be run. When it cannot, the calling test is skipped, unless
 * GUARDCTL_REQUIRE_SYSTEM=1 (CI machines that must exercise it), where the test fails instead.
 */
export function haveProgram(t: { skip(message?: string): void }, program: string, versionArg = '--version'): boolean {
  const probe = spawnSync(program, [versionArg], { stdio: 'ignore', timeout: 10_000 });
  if (probe.error === undefined && probe.status === 0) return true;
  if (process.env.GUARDCTL_REQUIRE_SYSTEM === '1') {
    throw new Error(`${program} is required (GUARDCTL_REQUIRE_SYSTEM=1) but cannot be run: ${probe.error?.message ?? `exit ${probe.status}`}`);
  }
  t.skip(`${program} is not available`);
  return false;
}

/** Listens on a random loopback port and returns the base URL (http://127.0.0.1:PORT). */
export async function listenLoopback(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error(`unexpected server address ${String(address)}`);
  return `http://127.0.0.1:${address.port}`;
}
