/**
 * Installs a site into an nginx root: snippets into <root>/snippets/guardctl/<name>/, the site into
 * sites-available/<name>.conf with a sites-enabled/ symlink (or conf.d/<name>.conf), each file atomically;
 * then `nginx -t` on the whole configuration and a reload that is confirmed by the master's new workers. On
 * any failure the previous files come back byte for byte (symlinks and snippets included) and, if a reload had
 * been attempted, nginx is reloaded again. One install at a time per root (<root>/.guardctl-install.lock).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { GuardError } from '../core/errors.js';
import { acquireLock } from '../core/lock.js';
import { formatProblems, testConfig, type Problem, type TestResult } from './check.js';
import { unifiedDiff } from './diff.js';
import { ensureDir, writeConfigFile } from './files.js';
import { describeFailure, reloadNginx, type ReloadOptions } from './reload.js';
import { matchesSnapshot, restoreSnapshot, takeSnapshot } from './snapshot.js';

export type Layout = 'sites' | 'conf.d';

export interface InstallTargets {
  root: string;
  /** The main configuration, <root>/nginx.conf. */
  conf: string;
  layout: Layout;
  siteFile: string;
  /** sites-enabled/<name>.conf (a symlink to siteFile), in the sites layout. */
  enabledLink?: string;
  snippetsDir: string;
}

/** Where a site named `name` goes under `root`: sites-available + sites-enabled when both exist, else conf.d. */
export function installTargets(root: string, name: string): InstallTargets {
  const r = path.resolve(root);
  const isDir = (d: string) => fs.statSync(path.join(r, d), { throwIfNoEntry: false })?.isDirectory() === true;
  if (!fs.existsSync(path.join(r, 'nginx.conf'))) {
    throw new GuardError('GUARD_E_NGINX', `${r} holds no nginx.conf`, { hint: 'point --nginx-root at the folder of the main nginx configuration (default /etc/nginx)' });
  }
  const file = `${name}.conf`;
  const snippetsDir = path.join(r, 'snippets', 'guardctl', name);
  if (isDir('sites-available') && isDir('sites-enabled')) {
    return { root: r, conf: path.join(r, 'nginx.conf'), layout: 'sites', siteFile: path.join(r, 'sites-available', file), enabledLink: path.join(r, 'sites-enabled', file), snippetsDir };
  }
  if (isDir('conf.d')) return { root: r, conf: path.join(r, 'nginx.conf'), layout: 'conf.d', siteFile: path.join(r, 'conf.d', file), snippetsDir };
  throw new GuardError('GUARD_E_NGINX', `${r} has neither sites-available/ + sites-enabled/ nor conf.d/`, {
    hint: 'create one of them and include it inside http {} in nginx.conf (include conf.d/*.conf;)',
  });
}

export interface SiteFiles {
  site: string;
  /** Snippet name -> content for snippetsDir; undefined leaves that folder alone. */
  snippets?: Record<string, string>;
}

export interface InstallOptions extends ReloadOptions {
  /** Only compute the diff. */
  dryRun?: boolean;
}

export interface InstallResult extends InstallTargets {
  changed: boolean;
  dryRun: boolean;
  /** Unified diff of every change ('' when nothing changes). */
  diff: string;
  reloaded: boolean;
  /** The running master was found and started new workers with the new configuration. */
  reloadVerified: boolean;
  /** Warnings that nginx -t already gave before the install (they do not fail it). */
  warnings: Problem[];
  notes: string[];
}

type Change = { path: string; content: string } | { path: string; link: string } | { path: string; remove: true };

function current(p: string): { content?: string; link?: string } {
  const st = fs.lstatSync(p, { throwIfNoEntry: false });
  if (!st) return {};
  if (st.isSymbolicLink()) return { link: fs.readlinkSync(p) };
  return st.isFile() ? { content: fs.readFileSync(p, 'utf8') } : { content: `(a ${st.isDirectory() ? 'folder' : 'special file'})\n` };
}

function plan(t: InstallTargets, files: SiteFiles): Change[] {
  const changes: Change[] = [];
  if (files.snippets) {
    for (const [name, content] of Object.entries(files.snippets)) changes.push({ path: path.join(t.snippetsDir, name), content });
    const stale = fs.existsSync(t.snippetsDir) ? fs.readdirSync(t.snippetsDir).filter((n) => !(n in files.snippets!)) : [];
    for (const name of stale.sort()) changes.push({ path: path.join(t.snippetsDir, name), remove: true });
  }
  changes.push({ path: t.siteFile, content: files.site });
  if (t.enabledLink) changes.push({ path: t.enabledLink, link: t.siteFile });
  return changes;
}

async function diffOf(c: Change): Promise<string> {
  const now = current(c.path);
  const show = (s: { content?: string; link?: string }) => (s.link !== undefined ? `symlink -> ${s.link}\n` : s.content);
  if ('remove' in c) return unifiedDiff(c.path, show(now), undefined);
  const next = 'link' in c ? { link: c.link } : { content: c.content };
  if (now.link === next.link && now.content === next.content) return '';
  return unifiedDiff(c.path, show(now), show(next));
}

function apply(c: Change): void {
  ensureDir(path.dirname(c.path));
  if ('remove' in c) fs.rmSync(c.path, { recursive: true, force: true });
  else if ('content' in c) writeConfigFile(c.path, c.content);
  else {
    const tmp = path.join(path.dirname(c.path), `.${path.basename(c.path)}.${randomBytes(6).toString('hex')}.tmp`);
    fs.symlinkSync(c.link, tmp);
    try {
      fs.renameSync(tmp, c.path);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
  }
}

function newProblems(before: TestResult, after: TestResult): Problem[] {
  const known = new Set(before.problems.filter((p) => p.level === 'warn').map((p) => p.message));
  return after.problems.filter((p) => p.level !== 'warn' || !known.has(p.message));
}

function lockErrors(t: InstallTargets) {
  const file = path.join(t.root, '.guardctl-install.lock');
  return {
    file,
    busy: (pid: number) => new GuardError('GUARD_E_NGINX_BUSY', `another guardctl (pid ${pid}) is installing a site into ${t.root}`, {
      hint: `wait for it to finish; if no such process runs, its lock ${file} is taken over automatically`,
    }),
    failed: (message: string, cause: unknown) => new GuardError('GUARD_E_DEPLOY', message, { hint: `run as a user who may write to ${t.root} (usually root)`, cause }),
  };
}

async function planAndDiff(t: InstallTargets, files: SiteFiles): Promise<{ changes: Change[]; diff: string }> {
  const changes = plan(t, files);
  return { changes, diff: (await Promise.all(changes.map(diffOf))).join('') };
}

/** Installs (or with dryRun, diffs) a site named `name` into the nginx root `root`. */
export async function installSite(root: string, name: string, files: SiteFiles, opts: InstallOptions = {}): Promise<InstallResult> {
  const t = installTargets(root, name);
  const notes: string[] = [];
  const main = fs.readFileSync(t.conf, 'utf8');
  const wanted = t.layout === 'sites' ? 'sites-enabled' : 'conf.d';
  if (!main.includes(wanted)) notes.push(`${t.conf} does not mention ${wanted}/: check that it includes it inside http {}`);
  const first = await planAndDiff(t, files);
  const result: InstallResult = { ...t, changed: first.diff !== '', dryRun: Boolean(opts.dryRun), diff: first.diff, reloaded: false, reloadVerified: false, warnings: [], notes };
  if (opts.dryRun || !result.changed) return result;

  const errors = lockErrors(t);
  const release = acquireLock(errors.file, errors);
  try {
    // Planned again under the lock: another install may have changed the files since the first look.
    const { changes, diff } = await planAndDiff(t, files);
    result.diff = diff;
    result.changed = diff !== '';
    if (!result.changed) return result;
    await applyTestReload(t, name, changes, opts, result);
    return result;
  } finally {
    release();
  }
}

async function applyTestReload(t: InstallTargets, name: string, changes: Change[], opts: InstallOptions, result: InstallResult): Promise<void> {
  const snap = takeSnapshot([t.siteFile, ...(t.enabledLink ? [t.enabledLink] : []), t.snippetsDir], t.root);
  const before = await testConfig(t.conf, { nginxBin: opts.nginxBin });
  result.warnings = before.problems.filter((p) => p.level === 'warn');
  const rollback = (why: string) => {
    restoreSnapshot(snap);
    if (!matchesSnapshot(snap)) throw new GuardError('GUARD_E_DEPLOY', `${why}, and restoring the previous files failed: check ${t.siteFile} and ${t.snippetsDir} by hand`);
  };
  try {
    for (const c of changes) apply(c);
  } catch (err) {
    rollback(`writing the site failed (${(err as Error).message})`);
    throw new GuardError('GUARD_E_DEPLOY', `cannot write the site "${name}": ${(err as Error).message}; the previous files are back in place`, { cause: err });
  }

  const after = await testConfig(t.conf, { nginxBin: opts.nginxBin });
  const problems = newProblems(before, after);
  if (after.exitCode !== 0 || problems.length > 0) {
    rollback('nginx -t rejected the configuration');
    const shown = problems.length > 0 ? problems : after.problems;
    throw new GuardError('GUARD_E_NGINX_CONFIG', `nginx -t rejected the configuration with the site "${name}"; the previous files are back in place and nginx was not reloaded:\n${formatProblems(shown.slice(0, 10))}`, {
      hint: before.exitCode !== 0
        ? `the configuration already failed nginx -t before this install (${formatProblems(before.problems.filter((p) => p.level !== 'warn').slice(0, 1))}): fix that first`
        : 'render with other options, or fix what the messages point at',
      details: { problems: shown },
    });
  }

  const reload = await reloadNginx(t.conf, opts);
  if (!reload.ok) {
    rollback('the reload failed');
    const again = await reloadNginx(t.conf, opts);
    const restored = again.ok
      ? `nginx was reloaded with them${again.verified ? '' : ` (not verified: ${again.why})`}`
      : `reloading them failed too (${describeFailure(again)})`;
    const hint = reload.stage === 'command'
      ? 'check that nginx is running (systemctl status nginx), or give the right --reload-cmd'
      : 'nginx -t cannot see everything a reload needs (a port that another program holds, for one): fix what the error log says; nginx served the previous configuration throughout';
    throw new GuardError('GUARD_E_DEPLOY', `nginx did not take the site "${name}": ${describeFailure(reload)}; the previous files are back in place and ${restored}`, {
      hint,
      details: reload.stage === 'apply' ? { error_log: reload.log } : undefined,
    });
  }
  result.reloaded = true;
  result.reloadVerified = reload.verified;
  if (!reload.verified) result.notes.push(`the reload was sent but not confirmed: ${reload.why}`);
}

/**
 * The files to install from a site file made by `nginx render --out`: its snippets (named on its
 * "# guardctl-site:" line) come along, and the includes are pointed at `snippetsDir`. Any other file is
 * installed as it is.
 */
export function siteFromFile(file: string, snippetsDir?: string): SiteFiles & { name?: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new GuardError('GUARD_E_NGINX', `--file "${file}" cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const marker = /^# guardctl-site: (\S+) snippets=(\/\S*)$/m.exec(text);
  if (!marker) return { site: text };
  const [, name, from] = marker as unknown as [string, string, string];
  const snippets: Record<string, string> = {};
  if (!fs.existsSync(from)) {
    throw new GuardError('GUARD_E_NGINX', `--file "${file}" includes snippets from ${from}, which does not exist`, { hint: 'render it again with guardctl nginx render --out FILE, or install with the render flags instead of --file' });
  }
  const entries = fs.readdirSync(from, { withFileTypes: true });
  for (const e of entries) if (e.isFile() && !e.name.startsWith('.')) snippets[e.name] = fs.readFileSync(path.join(from, e.name), 'utf8');
  if (snippetsDir === undefined || snippetsDir === from) return { site: text, snippets, name };
  return { site: text.split(`${from}/`).join(`${snippetsDir}/`).replace(marker[0], `# guardctl-site: ${name} snippets=${snippetsDir}`), snippets, name };
}
