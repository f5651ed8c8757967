/**
 * The running nginx master of a configuration, its child processes and its error log. `nginx -s reload`
 * (and `systemctl reload nginx`) only send SIGHUP: a master that cannot apply the new configuration (a port
 * already taken, a file that went away since nginx -t) logs it and goes on with the old one, so a reload is
 * only known to have worked once the master started new children. Linux only (/proc); elsewhere the master
 * is "not found" and the reload is not verified.
 */
import fs from 'node:fs';
import path from 'node:path';
import { builtPaths } from './detect.js';

/** The main configuration's top-level `pid` and `error_log` values (nested blocks and comments skipped). */
export function topLevelDirectives(text: string): { pid?: string; errorLog?: string } {
  const out: { pid?: string; errorLog?: string } = {};
  let depth = 0;
  let words: string[] = [];
  let word = '';
  let quote = '';
  const endWord = () => {
    if (word !== '') words.push(word);
    word = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\' && i + 1 < text.length) word += text[++i];
      else if (c === quote) quote = '';
      else word += c;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '#') {
      endWord();
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === ';') {
      endWord();
      if (depth === 0 && words[0] === 'pid' && words[1] !== undefined) out.pid = words[1];
      // The first error_log wins for our purpose: it is where nginx writes what the master reports.
      if (depth === 0 && words[0] === 'error_log' && words[1] !== undefined) out.errorLog ??= words[1];
      words = [];
    } else if (c === '{') {
      endWord();
      depth++;
      words = [];
    } else if (c === '}') {
      endWord();
      depth = Math.max(0, depth - 1);
      words = [];
    } else if (/\s/.test(c)) endWord();
    else word += c;
  }
  return out;
}

export type MasterLookup =
  | { found: true; pid: number; pidFile: string; errorLog?: string }
  | { found: false; why: string };

function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The process title nginx gives its master: "nginx: master process <its command line>". */
function isNginxMaster(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('nginx: master process');
  } catch {
    return false;
  }
}

/** Finds the master that serves `conf`, through the pid file that configuration (or the build) names. */
export async function findMaster(conf: string, nginxBin?: string): Promise<MasterLookup> {
  if (!fs.existsSync('/proc/self/stat')) return { found: false, why: 'this system has no /proc' };
  let text: string;
  try {
    text = fs.readFileSync(conf, 'utf8');
  } catch (err) {
    return { found: false, why: `${conf} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
  const declared = topLevelDirectives(text);
  const built = declared.pid !== undefined && path.isAbsolute(declared.pid) && declared.errorLog !== undefined ? {} : await builtPaths(nginxBin);
  const prefix = built.prefix ?? '/usr/local/nginx';
  const resolve = (p: string) => (path.isAbsolute(p) ? p : path.join(prefix, p));
  const pidFile = resolve(declared.pid ?? built.pidPath ?? 'logs/nginx.pid');
  const pid = readPid(pidFile);
  if (pid === undefined) return { found: false, why: `no nginx pid in ${pidFile}` };
  if (!isNginxMaster(pid)) return { found: false, why: `process ${pid} (from ${pidFile}) is not an nginx master` };
  const log = declared.errorLog ?? built.errorLogPath;
  const errorLog = log === undefined || log === 'stderr' || /^(syslog|memory):/.test(log) ? undefined : resolve(log);
  return { found: true, pid, pidFile, errorLog };
}

/** The pids whose parent is `pid`. */
export function childrenOf(pid: number): Set<number> {
  const children = new Set<number>();
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return children;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.add(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return children;
}

/**
 * Whether `pid` is an nginx worker that still accepts connections. On a reload the master starts new workers and
 * then tells the old ones to quit; an old worker renames itself "worker process is shutting down" just before it
 * closes its listening sockets. Until then a new connection may still land on the old configuration.
 */
export function acceptingOldWorker(pid: number): boolean {
  let title: string;
  try {
    title = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return false; // exited
  }
  return /worker process/.test(title) && !/shutting down/.test(title);
}

/** The size of a file, 0 when it is missing or unreadable (a position to read new log lines from). */
export function fileSize(file: string | undefined): number {
  if (file === undefined) return 0;
  return fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;
}

/** The lines of level crit and worse that were appended to `file` after position `from`. */
export function newSeriousLines(file: string | undefined, from: number): string[] {
  if (file === undefined) return [];
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const start = size < from ? 0 : from; // rotated meanwhile: read it all
      const buffer = Buffer.alloc(Math.min(size - start, 1 << 20));
      fs.readSync(fd, buffer, 0, buffer.length, start);
      text = buffer.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return [];
  }
  return text.split('\n').filter((l) => /\[(emerg|alert|crit)\]/.test(l)).map((l) => l.replace(/^\S+ \S+ /, '').trim());
}
