#!/usr/bin/env node
// Runs the test suite (`npm test`, i.e. scripts/test.mjs, with the same extra arguments) while N processes burn
// CPU beside it, so a test whose verdict depends on the machine's speed shows up here rather than on a busy CI
// machine. `npm run test:loaded -- --burners 4 test/server`; default N: os.availableParallelism(), or
// GUARDCTL_TEST_BURNERS. Prints the wall time and exits with the test run's status.
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const usage = 'usage: npm run test:loaded -- [--burners N] [test files or folders]';

function parse(argv) {
  const rest = [];
  let burners = process.env.GUARDCTL_TEST_BURNERS ?? String(os.availableParallelism());
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--burners') burners = argv[++i];
    else if (arg.startsWith('--burners=')) burners = arg.slice('--burners='.length);
    else rest.push(arg);
  }
  if (!/^\d+$/.test(burners ?? '')) {
    console.error(`test:loaded: --burners (or GUARDCTL_TEST_BURNERS) must be a whole number, got ${JSON.stringify(burners)}\n${usage}`);
    process.exit(2);
  }
  return { burners: Number(burners), rest };
}

// A burner spins in 50 ms slices so that it still sees, between slices, its parent going away: stdin (a pipe from
// the parent) ends when the parent exits or is killed, even by SIGKILL; the parent pid changing is a second check.
const BURNER = `
const parent = process.ppid;
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
let x = 0;
(function burn() {
  if (process.ppid !== parent) process.exit(0);
  const end = Date.now() + 50;
  while (Date.now() < end) x = (x * 1103515245 + 12345) % 2147483647;
  setImmediate(burn);
})();
`;

const { burners: count, rest } = parse(process.argv.slice(2));
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const burners = Array.from({ length: count }, () =>
  spawn(process.execPath, ['-e', BURNER], { stdio: ['pipe', 'ignore', 'inherit'] }));

function stopBurners() {
  for (const b of burners) if (b.exitCode === null && b.signalCode === null) b.kill('SIGKILL');
}
process.on('exit', stopBurners);

console.log(`test:loaded: ${count} CPU burner(s) beside the tests (${os.availableParallelism()} CPUs)`);
const started = Date.now();
// Its own process group, so a signal to this script reaches the test runner and everything it started.
const run = spawn(process.execPath, [path.join(root, 'scripts/test.mjs'), ...rest], { stdio: ['ignore', 'inherit', 'inherit'], detached: true });

let stopping = null;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    stopBurners();
    stopping ??= signal;
    try {
      process.kill(-run.pid, signal);
    } catch {
      // The group is already gone.
    }
  });
}

run.on('error', (err) => {
  console.error(`test:loaded: cannot start the tests: ${err.message}`);
  process.exit(1);
});
run.on('exit', (code, signal) => {
  stopBurners();
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const how = signal ? `killed by ${signal}` : `exit ${code}`;
  console.log(`test:loaded: the tests ended (${how}) after ${seconds} s wall time with ${count} burner(s)${stopping ? `; stopped by ${stopping}` : ''}`);
  if (stopping) process.exit(128 + os.constants.signals[stopping]);
  process.exit(code ?? 1);
});
