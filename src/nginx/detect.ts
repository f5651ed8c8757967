/**
 * The installed nginx from `nginx -V` (which writes to stderr): its version and the OpenSSL it runs with (the
 * site's http2 syntax and key exchange groups depend on them), and the paths it was built with (where a running
 * master's pid file and error log are when nginx.conf does not say).
 */
import { execa } from 'execa';
import { GuardError } from '../core/errors.js';

export interface NginxVersions {
  /** nginx version, X.Y.Z. */
  nginx: string;
  /** The OpenSSL nginx runs with ("running with OpenSSL"), else the one it was built with; undefined for
   * LibreSSL/BoringSSL or when not reported. */
  openssl?: string;
  /** The OpenSSL it was built with, when reported. */
  opensslBuilt?: string;
  /** The whole `nginx -V` output. */
  raw: string;
}

export interface DetectOptions {
  /** The nginx executable (default "nginx" from PATH). */
  nginxBin?: string;
}

/** Parses `nginx -V` output; undefined when it names no nginx version. */
export function parseVersions(text: string): NginxVersions | undefined {
  const nginx = /nginx version: [A-Za-z-]+\/(\d+\.\d+\.\d+)/.exec(text)?.[1];
  if (nginx === undefined) return undefined;
  const built = /built with OpenSSL (\d+\.\d+\.\d+)/.exec(text)?.[1];
  const running = /running with OpenSSL (\d+\.\d+\.\d+)/.exec(text)?.[1];
  return { nginx, openssl: running ?? built, opensslBuilt: built, raw: text };
}

/** What `nginx -V` printed ('' when it could not run), and why it could not. */
async function nginxV(bin: string): Promise<{ text: string; error?: string }> {
  const r = await execa(bin, ['-V'], { reject: false, all: true, timeout: 10_000, stdin: 'ignore' });
  const text = r.all ?? '';
  return r.failed && text === '' ? { text, error: r.code === 'ENOENT' ? 'not found' : r.shortMessage } : { text };
}

/** The paths nginx was built with (its configure arguments); {} when nginx cannot be run. */
export async function builtPaths(nginxBin = 'nginx'): Promise<{ prefix?: string; pidPath?: string; errorLogPath?: string }> {
  const { text } = await nginxV(nginxBin);
  const arg = (name: string) => new RegExp(`--${name}=(\\S+)`).exec(text)?.[1];
  return { prefix: arg('prefix'), pidPath: arg('pid-path'), errorLogPath: arg('error-log-path') };
}

/** Runs `nginx -V`; a GuardError saying what to do when nginx is missing or its output is unexpected. */
export async function detectVersions(opts: DetectOptions = {}): Promise<NginxVersions> {
  const bin = opts.nginxBin ?? 'nginx';
  const { text, error } = await nginxV(bin);
  const parsed = error !== undefined ? undefined : parseVersions(text);
  if (parsed === undefined) {
    const why = error ?? `"${bin} -V" printed no "nginx version:" line`;
    throw new GuardError('GUARD_E_NGINX', `cannot read the nginx version from ${bin}: ${why}`, {
      hint: 'install nginx, point --nginx-bin at it, or render for another machine with --nginx-version X.Y.Z (and --openssl-version X.Y.Z)',
    });
  }
  return parsed;
}
