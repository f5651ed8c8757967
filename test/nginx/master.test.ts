import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/cli.js';
import { childrenOf, fileSize, findMaster, newSeriousLines, topLevelDirectives } from '../../src/nginx/master.js';

test('topLevelDirectives: pid and the first error_log at the top level; comments, quotes and blocks skipped', () => {
  const conf = [
    '# pid /commented/out.pid;',
    'user www-data;',
    'error_log "/var/log/nginx/main error.log" warn; # the one the master writes',
    'error_log /var/log/nginx/second.log;',
    'events { pid /inside/events.pid; }',
    'http {',
    '    error_log /var/log/nginx/http.log;',
    '    server { pid /deeper.pid; }',
    '}',
    "pid '/run/nginx.pid';",
    '',
  ].join('\n');
  assert.deepEqual(topLevelDirectives(conf), { pid: '/run/nginx.pid', errorLog: '/var/log/nginx/main error.log' });
  assert.deepEqual(topLevelDirectives('events {}\nhttp { pid /x; }\n'), {});
});

test('findMaster: no pid file, or a pid that is not an nginx master, is "not found" with the reason', async (t) => {
  const dir = tempDir(t);
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(conf, `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\n`);
  const none = await findMaster(conf);
  assert.deepEqual(none, { found: false, why: `no nginx pid in ${dir}/nginx.pid` });
  fs.writeFileSync(path.join(dir, 'nginx.pid'), `${process.pid}\n`);
  const wrong = await findMaster(conf);
  assert.equal(wrong.found, false);
  assert.match((wrong as { why: string }).why, new RegExp(`process ${process.pid} .* is not an nginx master`));
});

test('childrenOf: lists a child process of ours, and only while it runs', async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    await new Promise((r) => child.once('spawn', r));
    assert.ok(childrenOf(process.pid).has(child.pid!));
    assert.ok(!childrenOf(child.pid!).has(process.pid));
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
  assert.ok(!childrenOf(process.pid).has(child.pid!));
});

test('newSeriousLines: only crit and worse, only after the mark, timestamps dropped', (t) => {
  const log = path.join(tempDir(t), 'error.log');
  fs.writeFileSync(log, '2026/11/23 10:00:00 [emerg] 1#1: old trouble\n');
  const mark = fileSize(log);
  fs.appendFileSync(log, [
    '2026/11/23 10:00:01 [notice] 1#1: signal 1 (SIGHUP) received, reconfiguring',
    '2026/11/23 10:00:01 [emerg] 1#1: bind() to 127.0.0.1:9 failed (98: Address already in use)',
    '2026/11/23 10:00:03 [warn] 1#1: something mild',
    '2026/11/23 10:00:03 [emerg] 1#1: still could not bind()',
    '',
  ].join('\n'));
  assert.deepEqual(newSeriousLines(log, mark), ['[emerg] 1#1: bind() to 127.0.0.1:9 failed (98: Address already in use)', '[emerg] 1#1: still could not bind()']);
  assert.deepEqual(newSeriousLines(path.join(path.dirname(log), 'missing.log'), 0), []);
});
