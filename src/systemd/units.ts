/**
 * The three systemd units (renewal service + timer, the daemon), rendered from templates/systemd/. Pure, so
 * `systemd render`, `guardctl up` and the tests (`systemd-analyze verify`) see exactly what would be written.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { usageError } from '../core/errors.js';

const TEMPLATES = new URL('../../templates/systemd/', import.meta.url);
export const UNITS = ['guardctl-renew.service', 'guardctl-renew.timer', 'guardctl.service'] as const;

export interface SystemdInputs {
  bin: string;
  home: string;
  user?: string;
  envFile: string;
  rwPaths: string[];
  onFailure?: string;
  serveArgs: string[];
  onCalendar: string;
  randomizedDelaySec: string;
  /** serve's shared stores (docs/scaling.md): GUARDCTL_STATE and GUARDCTL_KEYS in guardctl.service. */
  state?: string;
  keys?: string;
  /** The PATH that finds the interpreter of a `#!/usr/bin/env node` script (default this process's). */
  pathEnv?: string;
}

/**
 * A store URL for a unit file, which every local user can read (systemctl show): one with a password is refused,
 * and belongs in the EnvironmentFile instead.
 */
function storeSetting(value: string | undefined, flag: string, variable: string, accepts: RegExp): string | undefined {
  if (value === undefined) return undefined;
  if (!accepts.test(value)) throw usageError(`${flag} must be ${accepts === KEYS_STORE ? 'sqlite or a postgres:// URL' : 'sqlite, memory or a redis:// / rediss:// URL'}, got "${value.slice(0, 40)}"`);
  let password = false;
  try {
    password = /:\/\//.test(value) && new URL(value).password !== '';
  } catch {
    throw usageError(`${flag} is not a valid URL`);
  }
  if (password) {
    throw usageError(`${flag} holds a password, and unit files are readable by every user (systemctl show)`, `leave ${flag} out and put ${variable}=... in the EnvironmentFile (--env-file, mode 0600)`);
  }
  return systemdWord(`${variable}=${value}`);
}
const KEYS_STORE = /^(sqlite|postgres(ql)?:\/\/.+)$/i;
const STATE_STORE = /^(sqlite|memory|rediss?:\/\/.+)$/i;

/** One ExecStart word, quoted the way systemd reads it ("%" and "$" doubled: no specifiers, no variables). */
export function systemdWord(word: string): string {
  const plain = /^[A-Za-z0-9_./:=@+,-]+$/.test(word) ? word : `"${word.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  return plain.replace(/%/g, '%%').replace(/\$/g, '$$$$');
}

/** Whether a path lies where ProtectHome=yes hides it; a symlink counts where its target does (best effort). */
export function underHomeDirs(file: string): boolean {
  const inHome = (p: string) => p === '/root' || p.startsWith('/root/') || p === '/home' || p.startsWith('/home/') || p.startsWith('/run/user/');
  let real = file;
  try {
    real = fs.realpathSync(file);
  } catch {
    // Not on this machine (rendering for another host): judge the path as given, or a dangling link by its target.
    try {
      real = path.resolve(path.dirname(file), fs.readlinkSync(file));
    } catch {
      // not a link either
    }
  }
  return inHome(path.normalize(file)) || inHome(real);
}

/**
 * The files systemd runs for `--bin` that ProtectHome=yes would hide: every absolute word (`/usr/bin/node
 * /home/x/guardctl.js` runs the script too), and the interpreter a script's `#!` line names, `#!/usr/bin/env node`
 * found on `pathEnv` (best effort: a script that cannot be read here is judged by its words alone).
 */
export function binPathsUnderHome(bin: string, pathEnv = process.env.PATH ?? ''): string[] {
  const words = bin.split(/\s+/).filter((w) => path.isAbsolute(w));
  const interpreter = words.length > 0 ? shebangInterpreter(words[0]!, pathEnv) : undefined;
  return [...new Set([...words, ...(interpreter ? [interpreter] : [])])].filter(underHomeDirs);
}

function shebangInterpreter(file: string, pathEnv: string): string | undefined {
  let head: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(256);
      head = buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const m = /^#!\s*(\S+)(?:[ \t]+(?:-S[ \t]+)?(\S+))?/.exec(head);
  if (!m) return undefined;
  if (path.basename(m[1]!) !== 'env' || !m[2]) return m[1];
  for (const dir of pathEnv.split(':').filter((d) => path.isAbsolute(d))) {
    const candidate = path.join(dir, m[2]);
    try {
      fs.lstatSync(candidate);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function absolutePath(value: string, what: string): string {
  if (!path.isAbsolute(value) || /\s/.test(value)) throw usageError(`${what} must be an absolute path without spaces, got "${value}"`);
  return path.normalize(value);
}

/** Renders the three units; pure, so tests (and `systemd-analyze verify`) see exactly what would be written. */
export function renderUnits(inputs: SystemdInputs): Record<(typeof UNITS)[number], string> {
  const bin = inputs.bin.split(/\s+/).filter(Boolean);
  if (bin.length === 0 || !path.isAbsolute(bin[0]!)) throw usageError(`--bin must start with an absolute path, got "${inputs.bin}"`, 'for example --bin /usr/local/bin/guardctl');
  const home = absolutePath(inputs.home, 'the data directory');
  const exec = (args: string[]) => [...bin, '--home', home, ...args].map(systemdWord).join(' ');
  const renewArgs = ['cert', 'renew', '--all', '--keep-going', ...(inputs.onFailure ? ['--on-failure', inputs.onFailure] : [])];
  // ProtectHome=yes would hide a data directory, a deploy target, the executable, its script or its interpreter
  // under /home or /root (status 203/EXEC): read-only keeps them visible, and ReadWritePaths still limits writes to the data directory.
  const underHome = [home, ...inputs.rwPaths].some(underHomeDirs) || binPathsUnderHome(inputs.bin, inputs.pathEnv).length > 0;
  const view = {
    user: inputs.user,
    home,
    envFile: absolutePath(inputs.envFile, '--env-file'),
    protectHome: underHome ? 'read-only' : 'yes',
    readWritePaths: [...new Set([home, ...inputs.rwPaths.map((p) => absolutePath(p, '--rw-path'))])].join(' '),
    onCalendar: inputs.onCalendar,
    randomizedDelaySec: inputs.randomizedDelaySec,
    environment: [storeSetting(inputs.state, '--state', 'GUARDCTL_STATE', STATE_STORE), storeSetting(inputs.keys, '--keys', 'GUARDCTL_KEYS', KEYS_STORE)].filter(Boolean),
  };
  const render = (unit: string, execStart: string) => {
    const source = fs.readFileSync(new URL(`${unit}.hbs`, TEMPLATES), 'utf8');
    // Required here rather than imported: handlebars costs the start-up of every command that never renders.
    const Handlebars = createRequire(import.meta.url)('handlebars') as typeof import('handlebars');
    return Handlebars.compile(source, { noEscape: true, strict: false })({ ...view, execStart });
  };
  return {
    'guardctl-renew.service': render('guardctl-renew.service', exec(renewArgs)),
    'guardctl-renew.timer': render('guardctl-renew.timer', ''),
    'guardctl.service': render('guardctl.service', exec(['serve', ...inputs.serveArgs])),
  };
}
