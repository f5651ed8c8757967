/**
 * `nginx -t`, and what it said as a list of problems. checkSite tests one site file on its own: a copy inside
 * a throwaway main configuration (temporary prefix; pid, error log and temp paths inside it), with the
 * locations in nginx's messages mapped back to the user's file. [warn] lines count as failures.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { ChalkInstance } from '../core/colour.js';
import { GuardError } from '../core/errors.js';
import { parseBundle } from './bundle.js';

export const LEVELS = ['emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info', 'debug'] as const;
export type NginxLevel = (typeof LEVELS)[number];

export interface Problem {
  level: NginxLevel;
  /** The message, its location (" in FILE:LINE") mapped to the file the user knows. */
  message: string;
  file?: string;
  line?: number;
}

export interface TestResult {
  ok: boolean;
  /** Lines of level warn and worse. */
  problems: Problem[];
  /** nginx's whole output (locations mapped). */
  output: string;
  exitCode: number;
}

export interface CheckOptions {
  /** The nginx executable (default "nginx"). */
  nginxBin?: string;
  /** Also accept [warn] lines (default: a warning fails the check). */
  allowWarnings?: boolean;
}

const SERIOUS = new Set<NginxLevel>(['emerg', 'alert', 'crit', 'error', 'warn']);

/** Parses nginx's log lines ("nginx: [emerg] ..." or "2026/01/01 00:00:00 [warn] 12#12: ..."). */
export function parseProblems(output: string): Problem[] {
  const problems: Problem[] = [];
  for (const raw of output.split('\n')) {
    const m = /\[(emerg|alert|crit|error|warn|notice|info|debug)\] (?:\d+#\d+: )?(?:\*\d+ )?(.*)$/.exec(raw);
    if (!m) continue;
    const level = m[1] as NginxLevel;
    if (!SERIOUS.has(level)) continue;
    const message = m[2]!.trim();
    const at = / in (\/\S*?):(\d+)$/.exec(message);
    problems.push(at ? { level, message, file: at[1], line: Number(at[2]) } : { level, message });
  }
  return problems;
}

/** Runs `nginx -t -c CONF` (plus extra arguments) and reports; paths in the output are rewritten by `mapPath`. */
export async function testConfig(conf: string, opts: CheckOptions & { args?: string[]; mapPath?: (text: string) => string } = {}): Promise<TestResult> {
  const bin = opts.nginxBin ?? 'nginx';
  const run = (withE: boolean) => execa(bin, ['-t', ...(withE ? ['-e', 'stderr'] : []), ...(opts.args ?? []), '-c', conf], { reject: false, all: true, timeout: 60_000, stdin: 'ignore' });
  let r = await run(true);
  // nginx before 1.19.5 has no -e.
  if (/invalid option: "?-?e/.test(r.all ?? '')) r = await run(false);
  if (r.failed && (r.all ?? '') === '') {
    throw new GuardError('GUARD_E_NGINX', `cannot run ${bin} -t: ${r.code === 'ENOENT' ? 'not found' : r.shortMessage}`, {
      hint: 'install nginx, or point --nginx-bin at it',
    });
  }
  const output = (opts.mapPath ?? ((t: string) => t))(r.all ?? '');
  const problems = parseProblems(output);
  const exitCode = r.exitCode ?? 1;
  if (exitCode !== 0 && !problems.some((p) => p.level !== 'warn')) {
    problems.push({ level: 'emerg', message: `nginx -t exited with ${exitCode}: ${output.trim().split('\n').slice(-3).join(' / ') || r.shortMessage}` });
  }
  const failing = problems.filter((p) => p.level !== 'warn' || !opts.allowWarnings);
  return { ok: exitCode === 0 && failing.length === 0, problems, output, exitCode };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The throwaway main configuration around a site file: everything nginx writes stays inside `prefix`. */
export function wrapperConfig(prefix: string, siteFile: string): string {
  const p = (name: string) => path.join(prefix, name);
  return [
    `# guardctl nginx check: a throwaway main configuration around ${siteFile}`,
    `pid ${p('nginx.pid')};`,
    'error_log stderr;',
    'events {',
    '    worker_connections 64;',
    '}',
    'http {',
    '    access_log off;',
    `    client_body_temp_path ${p('client_body')};`,
    `    proxy_temp_path ${p('proxy')};`,
    `    fastcgi_temp_path ${p('fastcgi')};`,
    `    uwsgi_temp_path ${p('uwsgi')};`,
    `    scgi_temp_path ${p('scgi')};`,
    `    include ${siteFile};`,
    '}',
    '',
  ].join('\n');
}

/**
 * Tests one site file (a file meant for the http {} block, its includes absolute). `ok` is false on any
 * error or warning; each problem's file and line point at `file` (or the snippet it includes).
 */
export async function checkSite(file: string, opts: CheckOptions = {}): Promise<TestResult> {
  const source = path.resolve(file);
  let content: Buffer;
  try {
    content = fs.readFileSync(source);
  } catch (err) {
    throw new GuardError('GUARD_E_NGINX', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,);
  }
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-nginx-check-'));
  try {
    const copy = path.join(prefix, 'site.conf');
    const conf = path.join(prefix, 'nginx.conf');
    // What `nginx render` printed (site and snippets in one stream): its snippets go beside the copy, and the
    // includes point there, so the render is checked as it would be installed.
    const bundle = parseBundle(content.toString('utf8'));
    const moved: Array<[string, string]> = [];
    if (bundle) {
      let site = bundle.site;
      for (const [i, [original, text]] of Object.entries(bundle.snippets).entries()) {
        const here = path.join(prefix, 'snippets', `${i}-${path.basename(original)}`);
        fs.mkdirSync(path.dirname(here), { recursive: true });
        fs.writeFileSync(here, text);
        site = site.split(original).join(here);
        moved.push([here, `${source} (section ${original})`]);
      }
      fs.writeFileSync(copy, site);
    } else fs.writeFileSync(copy, content);
    fs.writeFileSync(conf, wrapperConfig(prefix, copy));
    const copyRe = new RegExp(escapeRegExp(copy), 'g');
    const confRe = new RegExp(`${escapeRegExp(conf)}(:\\d+)?`, 'g');
    const mapPath = (text: string) => moved.reduce((t, [here, shown]) => t.split(here).join(shown), text.replace(copyRe, source))
      .replace(confRe, (_m, line: string | undefined) => `(the check's wrapper configuration${line ?? ''})`);
    return await testConfig(conf, { ...opts, args: ['-p', `${prefix}/`], mapPath });
  } finally {
    fs.rmSync(prefix, { recursive: true, force: true });
  }
}

/** One line per problem, for people. */
export function formatProblems(problems: Problem[], paint?: ChalkInstance): string {
  const level = (p: Problem) => (paint === undefined ? `[${p.level}]` : (p.level === 'warn' ? paint.yellow : paint.red)(`[${p.level}]`));
  return problems.map((p) => `${level(p)} ${p.message}`).join('\n');
}
