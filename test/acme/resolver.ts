/**
 * A recursive resolver for the CA under test: a second `named` with recursion on, forwarding the test zones to
 * the authoritative BIND of test/helpers/bind.ts and caching nothing. A real CA validates through a recursive
 * resolver, which follows `_acme-challenge` CNAMEs into other zones; an authoritative-only server does not.
 */
import { spawn } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freeLoopbackPort } from '../helpers/bind.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

interface TestContext {
  after(fn: () => unknown): void;
}

export async function startResolver(t: TestContext, upstreamPort: number, zones: string[] = ['example.test', 'delegated.test']): Promise<{ port: number; address: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-resolver-'));
  const port = await freeLoopbackPort();
  const conf = `options {
  directory ${JSON.stringify(dir)};
  pid-file ${JSON.stringify(path.join(dir, 'named.pid'))};
  lock-file ${JSON.stringify(path.join(dir, 'named.lock'))};
  session-keyfile ${JSON.stringify(path.join(dir, 'session.key'))};
  managed-keys-directory ${JSON.stringify(dir)};
  listen-on port ${port} { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion yes;
  allow-recursion { 127.0.0.0/8; };
  dnssec-validation no;
  max-cache-ttl 0;
  max-ncache-ttl 0;
  qname-minimization off;
};
controls { };
${zones.map((z) => `zone "${z}" { type forward; forward only; forwarders { 127.0.0.1 port ${upstreamPort}; }; };`).join('\n')}
`;
  fs.writeFileSync(path.join(dir, 'named.conf'), conf);
  const child = spawn('named', ['-g', '-4', '-n', '1', '-c', path.join(dir, 'named.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    child.kill('SIGKILL');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const deadline = Date.now() + HANG_BOUND_MS;
  for (;;) {
    try {
      const r = new Resolver({ timeout: 500, tries: 1 });
      r.setServers([`127.0.0.1:${port}`]);
      await r.resolveSoa('example.test');
      return { port, address: '127.0.0.1' };
    } catch { /* not up yet */ }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the recursive named did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
