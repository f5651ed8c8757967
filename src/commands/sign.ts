import type { Command } from 'commander';
import type { ContextFactory } from '../cli.js';
import { usageError } from '../core/errors.js';
import { signRequest, v1Refusal } from '../gate/sign-request.js';
import { readSecret } from './secret-source.js';

interface SignOpts {
  data?: string;
  key: string;
  secretFile?: string;
  secretEnv?: string;
  v2?: boolean;
  timestamp?: string;
  nonce?: string;
  explain?: boolean;
  curl?: boolean;
}

export function registerSign(program: Command, contextFor: ContextFactory): void {
  program
    .command('sign')
    .description('print the signature headers for a request to the daemon (or a ready curl command)')
    .argument('<method>', 'HTTP method, e.g. POST')
    .argument('<url>', 'the full URL, query string included')
    .option('--data <json>', 'the exact request body (JSON)')
    .requiredOption('--key <id>', 'API key id (gk_...)')
    .option('--secret-file <file>', 'file holding the secret (gs_...)')
    .option('--secret-env <var>', 'environment variable holding the secret')
    .option('--v2', 'signature version 2 (signs the exact body bytes)')
    .option('--timestamp <unix-seconds>', 'reproduce a given request: its X-Timestamp')
    .option('--nonce <nonce>', 'reproduce a given request: its X-Nonce')
    .option('--explain', 'also print the exact string to sign')
    .option('--curl', 'print a ready curl command instead of the headers')
    .action((method: string, url: string, opts: SignOpts, command: Command) => {
      const ctx = contextFor(command);
      if (!/^[A-Za-z]+$/.test(method)) throw usageError(`invalid HTTP method "${method}"`, 'use GET, POST, ...');
      if (!/^https?:\/\//.test(url)) throw usageError(`"${url}" is not an absolute http(s) URL`, 'for example https://guard.example.com/api/v1/moderate');
      if (opts.timestamp !== undefined && !/^\d{1,12}$/.test(opts.timestamp)) throw usageError(`--timestamp must be Unix seconds, got "${opts.timestamp}"`);
      if (opts.nonce !== undefined && !/^[A-Za-z0-9_-]{1,128}$/.test(opts.nonce)) throw usageError('--nonce may hold only A-Z a-z 0-9 _ - (at most 128)');
      if (opts.nonce !== undefined && opts.nonce.length < 8) ctx.out.warn('nonces shorter than 8 characters are refused by the daemon (malformed_auth)');
      if (opts.data !== undefined) {
        try {
          JSON.parse(opts.data);
        } catch {
          throw usageError('--data is not valid JSON', `quote it for the shell, e.g. --data '{"text": "hello"}'`);
        }
      }
      const problem = opts.v2 ? undefined : v1Refusal({ url, body: opts.data });
      if (problem) ctx.out.warn(`the daemon refuses this under version 1 (${problem.code}): ${problem.detail}; add --v2`);
      const secret = readSecret(opts, ctx.env);
      const signed = signRequest({
        method, url, body: opts.data, keyId: opts.key, secret, version: opts.v2 ? 2 : 1, timestamp: opts.timestamp, nonce: opts.nonce,
      });
      const curl = curlCommand(method.toUpperCase(), url, signed.headers, opts.data);
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

function curlCommand(method: string, url: string, headers: Record<string, string>, data?: string): string {
  const parts = ['curl', '-sS', '-X', method, shellQuote(url)];
  if (data !== undefined) parts.push('-H', shellQuote('Content-Type: application/json'));
  for (const [k, v] of Object.entries(headers)) parts.push('-H', shellQuote(`${k}: ${v}`));
  if (data !== undefined) parts.push('--data-raw', shellQuote(data));
  return parts.join(' ');
}
