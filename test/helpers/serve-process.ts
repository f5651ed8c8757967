import { spawn, type ChildProcess } from 'node:child_process';
import { HANG_BOUND_MS } from './wait.js';

const BIN = new URL('../../bin/guardctl.js', import.meta.url).pathname;

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  /** Every log line so far (stdout and stderr). */
  lines: string[];
  /** The first line matching `re`, seen already or still to come; `ms` bounds only a real hang. */
  waitFor(re: RegExp, ms?: number): Promise<string>;
  exited: Promise<number | null>;
}

/**
 * The real `guardctl serve` as a separate process (as systemd runs it) on a free loopback port, with its own
 * home; resolves once it listens and the demo translation model (or `readyModel`) is warm.
 */
export async function serveProcess(home: string, args: string[] = [], readyModel = 'mt-demo'): Promise<ServeProcess> {
  const child = spawn(process.execPath, [BIN, '--home', home, 'serve', '--port', '0', ...args], {
    env: { ...process.env, GUARDCTL_FROM_SRC: '1', GUARDCTL_LOG: 'info', GUARDCTL_MASTER_KEY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve(line: string): void }> = [];
  const onLine = (line: string) => {
    if (!line) return;
    lines.push(line);
    for (const w of waiters.filter((x) => x.re.test(line))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(line);
    }
  };
  // A read ends wherever the pipe had data, mid-line too (more often when the reader is slow and the daemon logs
  // fast): each stream keeps its unfinished line until its newline comes.
  for (const stream of [child.stdout!, child.stderr!]) {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      for (const line of parts) onLine(line);
    });
    stream.on('end', () => onLine(partial));
  }
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waitFor = (re: RegExp, ms = HANG_BOUND_MS) => {
    const seen = lines.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}; output:\n${lines.join('\n')}`)), ms);
      waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  };
  const failedEarly = exited.then((code) => {
    throw new Error(`guardctl serve exited (${code}) before it was ready; output:\n${lines.join('\n')}`);
  });
  const ready = (async () => {
    // Starting from the TypeScript sources and warming the models is slow on a busy machine: a hang's bound only.
    const started = 3 * HANG_BOUND_MS;
    const listening = await waitFor(/"msg":"listening"/, started);
    await waitFor(new RegExp(`"msg":"model ready".*"${readyModel}"|"${readyModel}".*"msg":"model ready"`), started);
    return (JSON.parse(listening) as { url: string }).url;
  })();
  failedEarly.catch(() => {});
  let url: string;
  try {
    url = await Promise.race([ready, failedEarly]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return { child, url, lines, waitFor, exited };
}
