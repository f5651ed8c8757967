/**
 * `guardctl status` on deployments put together by hand (no CA, no nginx needed): a placeholder certificate is
 * reported as one and needs attention; something other than the daemon answering the daemon's address is
 * reported, not a crash.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ensurePlaceholder } from '../../src/acme/placeholder.js';
import { DEFAULT_TIERS } from '../../src/keys/tiers.js';
import type { SiteOptions } from '../../src/nginx/render.js';
import { collectStatus, formatStatus } from '../../src/up/status.js';
import { writeState, type UpState } from '../../src/up/state.js';
import { tempDir } from '../helpers/cli.js';
import { freePort } from '../helpers/nginx.js';

function stateFor(home: string, port: number): UpState {
  return {
    version: 1,
    domain: 'guard.example.test',
    lineage: 'guard.example.test',
    challenge: 'dns-01',
    site: { root: path.join(home, 'nginx'), name: 'guard.example.test', options: {} as SiteOptions, files: [path.join(home, 'nginx', 'sites-available', 'guard.example.test.conf')], nginxBin: 'nginx' },
    daemon: { supervisor: 'process', host: '127.0.0.1', port, basePath: '', serveArgs: [], pidFile: path.join(home, 'run', 'guardctl-serve.pid'), logFile: path.join(home, 'run', 'guardctl-serve.log') },
    renewal: { units: [], reloadCmd: 'nginx -s reload' },
    keys: [],
    url: 'https://guard.example.test',
    updatedAt: new Date().toISOString(),
  };
}

const deps = (home: string) => ({ home, env: {}, now: () => Date.now(), keyStore: { kind: 'sqlite' as const }, tiers: DEFAULT_TIERS });

test('a placeholder certificate shows as a placeholder and needs attention', async (t) => {
  const home = tempDir(t);
  await ensurePlaceholder(home, 'guard.example.test', ['guard.example.test'], Date.now());
  writeState(home, stateFor(home, await freePort()));
  const s = await collectStatus(deps(home));
  assert.equal(s.certificate!.placeholder, true);
  assert.equal(s.certificate!.ok, false);
  assert.match(s.attention.join('\n'), /certificate: a self-signed placeholder, not issued by a CA/);
  assert.match(formatStatus(s), /certificate {2}ATTENTION {2}PLACEHOLDER \(self-signed\)/);
});

test('something other than the daemon answering /readyz is reported as needing attention, not a crash', async (t) => {
  const home = tempDir(t);
  const port = await freePort();
  writeState(home, stateFor(home, port));
  // A process that passes for this home's daemon (its command line names serve and the home) but answers HTML.
  const impostor = spawn(process.execPath, ['-e', `require('http').createServer((q, s) => s.end('<html>Welcome to nginx!</html>')).listen(${port}, '127.0.0.1', () => console.log('up'))`, 'serve', home], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => impostor.kill('SIGKILL'));
  await new Promise<void>((resolve) => impostor.stdout!.once('data', () => resolve()));
  fs.mkdirSync(path.join(home, 'run'), { recursive: true });
  fs.writeFileSync(path.join(home, 'run', 'guardctl-serve.pid'), `${impostor.pid}\n`);
  const s = await collectStatus(deps(home));
  assert.equal(s.daemon!.running, true);
  assert.equal(s.daemon!.ready, false);
  assert.match(s.attention.join('\n'), new RegExp(`daemon: the daemon address 127\\.0\\.0\\.1:${port}/readyz answers but not as guardctl`));
});
