import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { HANG_BOUND_MS } from './wait.js';

const NGINX = 'nginx';
const MIME_TYPES = '/etc/nginx/mime.types';

export interface StartNginxOptions {
  /** The nginx prefix (pid, logs, temp files, nginx.conf); default: a fresh temporary directory removed after the test. */
  prefix?: string;
  /** Ports to wait for; default: the ports of the `listen` directives in the site file. */
  httpPort?: number;
  httpsPort?: number;
  /** Extra directives for the http {} block, before the site is included. */
  httpExtra?: string;
  /** How long to wait for the ports to accept connections (ms). */
  startTimeoutMs?: number;
}

export interface RunningNginx {
  prefix: string;
  /** The nginx.conf written into the prefix (it includes the site file). */
  conf: string;
  /** The plain-HTTP and HTTPS ports found in the site's `listen` directives (0 when none). */
  httpPort: number;
  httpsPort: number;
  /** The master's pid. */
  pid: number;
  /** Argument vector prefix for this instance: [nginx, -p, PREFIX, -c, CONF, -e, LOG]. */
  argv: string[];
  /** A shell command that reloads this instance (for --reload-cmd). */
  reloadCommand: string;
  /** A shell command that tests this instance's configuration (for --test-cmd). */
  testCommand: string;
  /** SIGHUP to the master; resolves once the new workers serve, rejects with the log when the new configuration was refused. */
  reload(): Promise<void>;
  /** A position in the error log, for waitForReload. */
  mark(): number;
  /** Waits for a reload triggered by someone else (after mark()) to finish; rejects when it was refused. */
  waitForReload(mark: number, ms?: number): Promise<void>;
  /** Graceful stop (SIGQUIT), then SIGKILL of the process group; checks that no worker is left. Idempotent. */
  stop(): Promise<void>;
  /** The error log so far (startup messages and runtime errors). */
  errorLog(): string;
}

/** A free TCP port on 127.0.0.1 (closed again before returning; good enough for tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The ports of the `listen` directives in an nginx file: [plain ports, ssl ports]. */
export function listenPorts(text: string): { http: number[]; https: number[] } {
  const http = new Set<number>();
  const https = new Set<number>();
  for (const m of text.replace(/#[^\n]*/g, '').matchAll(/(?:^|[;{}\s])listen\s+([^;]+);/g)) {
    const words = m[1]!.trim().split(/\s+/);
    const addr = words[0]!;
    const port = Number(/^\d+$/.test(addr) ? addr : (/:(\d+)$/.exec(addr)?.[1] ?? '80'));
    (words.includes('ssl') ? https : http).add(port);
  }
  return { http: [...http], https: [...https] };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A timer that does not keep the process alive (for races against an exit). */
const grace = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs a real nginx master (in the foreground, as a child process) with a minimal nginx.conf in `prefix` that
 * includes `siteFile` (a file, or a glob such as PREFIX/sites-enabled/*.conf) in its http {} block; waits for
 * its worker and until every port of the site's `listen` directives (or the ports given) accepts connections;
 * stops it (and checks that no worker is left) when the test ends.
 */
export async function startNginx(t: { after(fn: () => unknown): void }, siteFile: string, options: StartNginxOptions = {}): Promise<RunningNginx> {
  const madePrefix = options.prefix === undefined ? fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-nginx-')) : undefined;
  const prefix = options.prefix ?? madePrefix!;
  for (const d of ['logs', 'tmp/body', 'tmp/proxy', 'tmp/fastcgi', 'tmp/uwsgi', 'tmp/scgi']) fs.mkdirSync(path.join(prefix, d), { recursive: true });
  const logFile = path.join(prefix, 'logs', 'error.log');
  const pidFile = path.join(prefix, 'logs', 'nginx.pid');
  const conf = path.join(prefix, 'nginx.conf');
  const root = process.getuid?.() === 0;
  fs.writeFileSync(conf, [
    'daemon off;',
    'master_process on;',
    'worker_processes 1;',
    // As root the workers would run as nobody, who cannot enter the tests' 0700 temporary directories.
    ...(root ? ['user root root;'] : []),
    `pid ${pidFile};`,
    `error_log ${logFile} notice;`,
    `lock_file ${path.join(prefix, 'logs', 'nginx.lock')};`,
    'events { worker_connections 256; }',
    'http {',
    ...(fs.existsSync(MIME_TYPES) ? [`  include ${MIME_TYPES};`] : []),
    '  default_type application/octet-stream;',
    `  access_log ${path.join(prefix, 'logs', 'access.log')};`,
    `  client_body_temp_path ${path.join(prefix, 'tmp/body')};`,
    `  proxy_temp_path ${path.join(prefix, 'tmp/proxy')};`,
    `  fastcgi_temp_path ${path.join(prefix, 'tmp/fastcgi')};`,
    `  uwsgi_temp_path ${path.join(prefix, 'tmp/uwsgi')};`,
    `  scgi_temp_path ${path.join(prefix, 'tmp/scgi')};`,
    ...(options.httpExtra ? [`  ${options.httpExtra}`] : []),
    `  include ${siteFile};`,
    '}',
    '',
  ].join('\n'));

  // A glob (sites-enabled/*.conf) has no single file to read: then only the ports given are waited for.
  const ports = fs.existsSync(siteFile) ? listenPorts(fs.readFileSync(siteFile, 'utf8')) : { http: [], https: [] };
  const httpPort = options.httpPort ?? ports.http[0] ?? 0;
  const httpsPort = options.httpsPort ?? ports.https[0] ?? 0;
  const argv = [NGINX, '-p', prefix, '-c', conf, '-e', logFile];
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

  let stderr = '';
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  child.stdout!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) => child.on('exit', (code, signal) => ((exitCode = code ?? (signal ? -1 : null)), resolve())));
  const errorLog = () => {
    let text = '';
    try {
      text = fs.readFileSync(logFile, 'utf8');
    } catch {
      // not written yet
    }
    return stderr ? `${text}${stderr}` : text;
  };
  const workers = () => [...errorLog().matchAll(/start worker process (\d+)/g)].map((m) => Number(m[1]));

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (exitCode === undefined) {
      try {
        process.kill(child.pid!, 'SIGQUIT');
      } catch {
        // gone already
      }
      await Promise.race([exited, grace(5000)]);
    }
    try {
      process.kill(-child.pid!, 'SIGKILL'); // the process group: master and workers
    } catch {
      // nothing left
    }
    await Promise.race([exited, grace(2000)]);
    // SIGKILLed workers die at once, but a busy machine may take a while to reap them.
    const deadline = Date.now() + HANG_BOUND_MS;
    while (workers().some(alive) && Date.now() < deadline) await sleep(50);
    const left = workers().filter(alive);
    if (left.length) throw new Error(`nginx workers left running: ${left.join(', ')}`);
  };
  // One hook, stop first: t.after hooks run in the order they were registered.
  t.after(async () => {
    try {
      await stop();
    } finally {
      if (madePrefix !== undefined) fs.rmSync(madePrefix, { recursive: true, force: true });
    }
  });

  const deadline = Date.now() + (options.startTimeoutMs ?? HANG_BOUND_MS);
  while (workers().length === 0) {
    if (exitCode !== undefined) throw new Error(`nginx exited (${exitCode}) before starting its workers:\n${errorLog()}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nginx started no worker in time:\n${errorLog()}`);
    }
    await sleep(25);
  }
  for (const port of [httpPort, httpsPort].filter((p) => p > 0)) {
    while (!(await canConnect(port))) {
      if (exitCode !== undefined) throw new Error(`nginx exited (${exitCode}) before listening on ${port}:\n${errorLog()}`);
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`nginx did not listen on ${port} in time:\n${errorLog()}`);
      }
      await sleep(50);
    }
  }

  const mark = () => errorLog().length;
  const waitForReload = async (from: number, ms = HANG_BOUND_MS) => {
    const end = Date.now() + ms;
    for (;;) {
      const text = errorLog().slice(from);
      const refused = /\[(emerg|alert)\][^\n]*/.exec(text);
      if (refused) throw new Error(`nginx refused the new configuration: ${refused[0]}\n${errorLog()}`);
      // The old workers are told to quit only after the new ones started: from then on the new configuration serves.
      if (/reconfiguring/.test(text) && /gracefully shutting down/.test(text)) return;
      if (exitCode !== undefined) throw new Error(`nginx exited (${exitCode}) during a reload:\n${errorLog()}`);
      if (Date.now() > end) throw new Error(`nginx did not finish reloading in time:\n${errorLog()}`);
      await sleep(25);
    }
  };
  return {
    prefix,
    conf,
    httpPort,
    httpsPort,
    pid: child.pid!,
    argv,
    reloadCommand: [...argv, '-s', 'reload'].map(quote).join(' '),
    testCommand: [...argv, '-t'].map(quote).join(' '),
    async reload() {
      const from = mark();
      process.kill(child.pid!, 'SIGHUP');
      await waitForReload(from);
    },
    mark,
    waitForReload,
    stop,
    errorLog,
  };
}

/** An nginx root with sites-available/ and sites-enabled/, served by a real nginx that includes sites-enabled/*.conf. */
export async function startNginxRoot(t: { after(fn: () => unknown): void }): Promise<{ root: string; nginx: RunningNginx }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-nginx-root-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.mkdirSync(path.join(root, 'sites-available'));
  fs.mkdirSync(path.join(root, 'sites-enabled'));
  return { root, nginx: await startNginx(t, path.join(root, 'sites-enabled', '*.conf'), { prefix: root }) };
}

/**
 * A stand-in for `t` whose after-hooks run last-registered first (node:test runs t.after hooks in the order
 * they were registered), so that a temporary directory made before a process is removed after that process
 * stopped. All of them run, in one t.after hook; the first error is rethrown.
 */
export function cleanupStack(t: { after(fn: () => unknown): void }): { after(fn: () => unknown): void } {
  const hooks: Array<() => unknown> = [];
  t.after(async () => {
    let first: unknown;
    for (const hook of hooks.reverse()) {
      try {
        await hook();
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  });
  return { after: (fn) => void hooks.push(fn) };
}
