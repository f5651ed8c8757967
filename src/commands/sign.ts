import type { Command } from 'commander';
import type { ContextFactory } from '../cli.js';
import { usageError } from '../core/errors.js';
import { signRequest, v1Refusal } from '../gate/sign-request.js';
import { addClientOptions, type ClientFlags, readBody, resolveCredentials, resolveTarget } from './client-args.js';

interface SignOpts extends ClientFlags {
  v2?: boolean;
  timestamp?: string;
  nonce?: string;
  explain?: boolean;
  curl?: boolean;
}

export function registerSign(program: Command, contextFor: ContextFactory): void {
  addClientOptions(program
    .command('sign')
    .description('print the signature headers for a request to the daemon (or a ready curl command)')
    .argument('<method>', 'HTTP method, e.g. POST')
    .argument('<target>', 'a full URL (https://host/api/v1/moderate?...), or a path under --url'))
    .option('--v2', 'signature version 2 (signs the exact body bytes)')
    .option('--timestamp <unix-seconds>', 'reproduce a given request: its X-Timestamp')
    .option('--nonce <nonce>', 'reproduce a given request: its X-Nonce')
    .option('--explain', 'also print the exact string to sign')
    .option('--curl', 'print a ready curl command instead of the headers')
    .action(async (method: string, target: string, opts: SignOpts, command: Command) => {
      const ctx = contextFor(command);
      if (!/^[A-Za-z]+$/.test(method)) throw usageError(`invalid HTTP method "${method}"`, 'use GET, POST, ...');
      const url = resolveTarget(target, opts, ctx.env).href;
      if (opts.timestamp !== undefined && !/^\d{1,12}$/.test(opts.timestamp)) throw usageError(`--timestamp must be Unix seconds, got "${opts.timestamp}"`);
      if (opts.nonce !== undefined && !/^[A-Za-z0-9_-]{1,128}$/.test(opts.nonce)) throw usageError('--nonce may hold only A-Z a-z 0-9 _ - (at most 128)');
      if (opts.nonce !== undefined && opts.nonce.length < 8) ctx.out.warn('nonces shorter than 8 characters are refused by the daemon (malformed_auth)');
      const credentials = resolveCredentials(opts, ctx.env);
      if (!credentials) throw usageError('no API key id given', 'add --key gk_... or set GUARDCTL_KEY_ID (and the secret: GUARDCTL_SECRET, --secret-env or --secret-file)');
      const body = await readBody(opts.data, ctx.stdin);
      const problem = opts.v2 ? undefined : v1Refusal({ url, body });
      if (problem) ctx.out.warn(`the daemon refuses this under version 1 (${problem.code}): ${problem.detail}; add --v2`);
      const signed = signRequest({
        method, url, body, keyId: credentials.keyId, secret: credentials.secret, version: opts.v2 ? 2 : 1, timestamp: opts.timestamp, nonce: opts.nonce,
      });
      // A body from a file stays in the file: the command line would hit the argument limit.
      const curl = curlCommand(method.toUpperCase(), url, signed.headers, body, opts.data?.startsWith('@') ? opts.data : undefined);
      ctx.out.result(
        { headers: signed.headers, ...(opts.explain ? { string_to_sign: signed.stringToSign } : {}), ...(opts.curl ? { curl } : {}) },
        () => {
          const lines: string[] = [];
          if (opts.explain) lines.push('# string to sign (between the markers, newlines shown as they are):', '-----BEGIN STRING TO SIGN-----', signed.stringToSign, '-----END STRING TO SIGN-----');
          if (opts.curl) lines.push(curl);
          else lines.push(...Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}`));
          return lines.join('\n');
        },
      );
    });
}

export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function curlCommand(method: string, url: string, headers: Record<string, string>, data?: string, dataFile?: string): string {
  const parts = ['curl', '-sS', '-X', method, shellQuote(url)];
  if (data !== undefined) parts.push('-H', shellQuote('Content-Type: application/json'));
  for (const [k, v] of Object.entries(headers)) parts.push('-H', shellQuote(`${k}: ${v}`));
  if (dataFile !== undefined) parts.push('--data-binary', shellQuote(dataFile));
  else if (data !== undefined) parts.push('--data-raw', shellQuote(data));
  return parts.join(' ');
}
