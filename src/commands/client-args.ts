import fs from 'node:fs';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { usageError } from '../core/errors.js';
import { readSecret } from './secret-source.js';

/**
 * What `guardctl sign` and `guardctl request` share, so that they cannot disagree: the credentials (flags, then
 * GUARDCTL_KEY_ID / GUARDCTL_SECRET), the target (a path under --url, or a full URL) and the body (JSON text,
 * @FILE or - for stdin).
 */
export interface ClientFlags {
  key?: string;
  secretFile?: string;
  secretEnv?: string;
  url?: string;
  data?: string;
}

export const DEFAULT_URL = 'http://127.0.0.1:7860';

/** The options both commands take, with one wording. */
export function addClientOptions(cmd: Command): Command {
  return cmd
    .option('--data <json|@file|->', 'the request body: JSON text, @FILE to read a file, or - to read stdin')
    .option('--key <id>', 'API key id, gk_... (env GUARDCTL_KEY_ID)')
    .option('--secret-file <file>', 'file holding the secret, gs_...')
    .option('--secret-env <var>', 'environment variable holding the secret (default GUARDCTL_SECRET)')
    .option('--url <url>', `the daemon's base URL, for a target given as a path (env GUARDCTL_URL; default ${DEFAULT_URL})`);
}

export interface Credentials {
  keyId: string;
  secret: string;
}

/** The key id and secret, or undefined when no key id is given at all (request then sends unsigned). */
export function resolveCredentials(flags: ClientFlags, env: NodeJS.ProcessEnv): Credentials | undefined {
  const keyId = flags.key ?? (env.GUARDCTL_KEY_ID || undefined);
  if (keyId === undefined) {
    if (flags.secretFile || flags.secretEnv) throw usageError('a secret is given but no key id', 'add --key gk_... or set GUARDCTL_KEY_ID');
    return undefined;
  }
  return { keyId, secret: readSecret({ secretFile: flags.secretFile, secretEnv: flags.secretFile ? flags.secretEnv : (flags.secretEnv ?? 'GUARDCTL_SECRET') }, env) };
}

/**
 * The URL to call: a full http(s) URL as it is, or a path appended to --url / GUARDCTL_URL / the default. A base
 * URL with a sub-path (https://host/guard) keeps it, and the request is signed as it is sent.
 */
export function resolveTarget(target: string, flags: ClientFlags, env: NodeJS.ProcessEnv): URL {
  if (/^https?:\/\//i.test(target)) {
    if (flags.url !== undefined) throw usageError(`give a full URL or --url with a path, not both ("${target}" and --url ${flags.url})`, 'drop --url, or pass only the path, e.g. /api/v1/moderate');
    try {
      return new URL(target);
    } catch {
      throw usageError(`"${target}" is not a valid URL`, 'for example https://guard.example.com/api/v1/moderate');
    }
  }
  if (!target.startsWith('/')) throw usageError(`the target must be a path starting with "/" or a full http(s) URL, got "${target}"`, 'for example /api/v1/moderate or https://guard.example.com/api/v1/moderate');
  const base = flags.url ?? (env.GUARDCTL_URL || DEFAULT_URL);
  let baseUrl: URL;
  try {
    if (!/^https?:\/\//i.test(base)) throw new Error('not http(s)');
    baseUrl = new URL(base);
  } catch {
    throw usageError(`${flags.url !== undefined ? '--url' : 'GUARDCTL_URL'} must be an http(s) URL, got "${base}"`, 'for example --url https://guard.example.com');
  }
  const url = new URL(target, baseUrl);
  url.pathname = baseUrl.pathname.replace(/\/$/, '') + target.split('?')[0];
  return url;
}

/**
 * The body from --data: the JSON text itself, `@FILE` (read as it is: what is signed is what is sent), or `-`
 * (stdin, read to its end). A body too large for the argument list goes through a file or stdin.
 */
export async function readBody(data: string | undefined, stdin: Readable | undefined): Promise<string | undefined> {
  if (data === undefined) return undefined;
  let text: string;
  let source: string;
  if (data === '-') {
    if (!stdin) throw usageError('--data - reads stdin, and there is none here', 'pass --data @FILE instead');
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
    text = Buffer.concat(chunks).toString('utf8');
    source = 'the body read from stdin (--data -)';
  } else if (data.startsWith('@')) {
    const file = data.slice(1);
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw usageError(`cannot read the body file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, '--data @FILE reads FILE as the request body; check the path');
    }
    source = `the body file ${file}`;
  } else {
    text = data;
    source = '--data';
  }
  try {
    JSON.parse(text);
  } catch (err) {
    throw usageError(`${source} is not valid JSON: ${(err as Error).message}`, source === '--data'
      ? `pass JSON text quoted for the shell (--data '{"text": "hello"}'), a file (--data @body.json) or stdin (--data -)`
      : 'fix the JSON in it (the body is sent exactly as read)');
  }
  return text;
}
