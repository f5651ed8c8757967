import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './nginx.js';
import { availableOrSkip, findProgram } from './system.js';
import { HANG_BOUND_MS } from './wait.js';

const BIN = process.env.GUARDCTL_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface RunningPostgres {
  /** postgres://guardctl@127.0.0.1:PORT/postgres (trust auth, loopback only). */
  url: string;
  port: number;
  /** A new empty database on this server, and its URL. */
  database(name: string): Promise<string>;
  /** pg_ctl stop -m fast, waiting until it has stopped. */
  stop(): void;
  /** pg_ctl start again on the same port and data directory, waiting until it accepts connections. */
  start(): void;
}

/**
 * A PostgreSQL 15 of the test's own: initdb into a temporary directory, pg_ctl start -w on a free loopback port
 * (socket in that directory, no system service), stopped and removed when the test ends. PostgreSQL refuses to run
 * as root, so under root every program runs as the postgres user, over a directory chowned to it.
 * Skipped when the binaries are missing, unless GUARDCTL_REQUIRE_SYSTEM=1 (then the test fails).
 */
export async function startPostgres(t: { skip(message?: string): void; after(fn: () => void | Promise<void>): void }): Promise<RunningPostgres | undefined> {
  const initdb = findProgram(path.join(BIN, 'initdb'));
  const pgCtl = findProgram(path.join(BIN, 'pg_ctl'));
  if (!availableOrSkip(t, Boolean(initdb && pgCtl), 'PostgreSQL (initdb, pg_ctl)', `not found in ${BIN} (apt-get install postgresql)`)) return undefined;
  const asRoot = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-pg-'));
  const data = path.join(dir, 'data');
  if (asRoot) {
    fs.chmodSync(dir, 0o755);
    execFileSync('chown', ['postgres:postgres', dir]);
  }
  const run = (file: string, args: string[]) => {
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
    return execFileSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], timeout: HANG_BOUND_MS, cwd: dir });
  };
  run(initdb!, ['-D', data, '-U', 'guardctl', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  let running = false;
  const start = () => {
    run(pgCtl!, ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', String(HANG_BOUND_MS / 1000), '-o', options, 'start']);
    running = true;
  };
  const stop = () => {
    if (!running) return;
    run(pgCtl!, ['-D', data, '-m', 'fast', '-w', '-t', String(HANG_BOUND_MS / 1000), 'stop']);
    running = false;
  };
  start();
  t.after(() => {
    try {
      if (running) run(pgCtl!, ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  const url = `postgres://guardctl@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    stop,
    start,
    async database(name) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } finally {
        await client.end();
      }
      return `postgres://guardctl@127.0.0.1:${port}/${name}`;
    },
  };
}
