import type { Command } from 'commander';
import type { ContextFactory } from '../cli.js';
import { GuardError, usageError } from '../core/errors.js';
import { signRequest, v1Refusal } from '../gate/sign-request.js';
import { readSecret } from './secret-source.js';

interface RequestOpts {
  data?: string;
  key?: string;
  secretFile?: string;
  secretEnv?: string;
  url: string;
  v1?: boolean;
  v2?: boolean;
  timeout: string;
}

/** `guardctl request`: sign, send and print, so an operator can try the daemon without writing a client. */
export function registerRequest(program: Command, contextFor: ContextFactory): void {
  program
    .command('request')
    .description('sign a request with an API key, send it to the daemon and print the answer')
    .argument('<method>', 'HTTP method, e.g. POST')
    .argument('<path>', 'path with an optional query string, e.g. /api/v1/moderate or /api/v1/translate?source_lang=zh&target_lang=en')
    .option('--data <json>', 'request body (JSON)')
    .option('--key <id>', 'API key id (env GUARDCTL_KEY_ID)')
    .option('--secret-file <file>', 'file holding the secret')
    .option('--secret-env <var>', 'environment variable holding the secret (default GUARDCTL_SECRET)')
    .option('--url <url>', 'the daemon\'s base URL (env GUARDCTL_URL)', 'http://127.0.0.1:7860')
    .option('--v1', 'signature version 1 (the default is version 2, which signs the exact body bytes)')
    .option('--v2', 'signature version 2 (the default; kept for scripts that pass it)')
    .option('--timeout <seconds>', 'give up after this many seconds', '120')
    .action(async (method: string, path: string, opts: RequestOpts, command: Command) => {
      const ctx = contextFor(command);
      const base = command.getOptionValueSource('url') === 'default' && ctx.env.GUARDCTL_URL ? ctx.env.GUARDCTL_URL : opts.url;
      if (!/^https?:\/\//.test(base)) throw usageError(`--url must be an http(s) URL, got "${base}"`, 'for example --url https://guard.example.com');
      if (!path.startsWith('/')) throw usageError(`the path must start with "/", got "${path}"`, 'for example /api/v1/moderate');
      if (opts.v1 && opts.v2) throw usageError('--v1 and --v2 exclude each other', 'version 2 is the default; pass --v1 only for a version 1 signature');
      const timeoutMs = Math.ceil(Number(opts.timeout) * 1000);
      if (!/^\d+(\.\d+)?$/.test(opts.timeout.trim()) || !(timeoutMs > 0) || timeoutMs > 2 ** 31 - 1) {
        throw usageError(`--timeout must be a positive number of seconds, got "${opts.timeout}"`, 'for example --timeout 30');
      }
      if (opts.data !== undefined) {
        try {
          JSON.parse(opts.data);
        } catch {
          throw usageError('--data is not valid JSON', `quote it for the shell, e.g. --data '{"text": "hello"}'`);
        }
      }
      const url = new URL(path, base.endsWith('/') ? base : `${base}/`);
      // A base URL with a sub-path (https://host/guard) keeps it: the path is appended, and signed as requested.
      url.pathname = new URL(base).pathname.replace(/\/$/, '') + path.split('?')[0];
      const headers: Record<string, string> = { accept: 'application/json' };
      if (opts.data !== undefined) headers['content-type'] = 'application/json';
      const keyId = opts.key ?? ctx.env.GUARDCTL_KEY_ID;
      if (keyId) {
        const secret = readSecret({ secretFile: opts.secretFile, secretEnv: opts.secretFile ? undefined : (opts.secretEnv ?? 'GUARDCTL_SECRET') }, ctx.env);
        if (opts.v1) {
          // Version 1 signs only the query and the body's top-level strings, numbers and booleans: the daemon
          // refuses the rest, so say so before sending.
          const problem = v1Refusal({ url: url.href, body: opts.data });
          if (problem?.code === 'v1_unsigned_member') throw usageError(`--v1 cannot sign this request: ${problem.detail}`, 'drop --v1 (version 2 signs the exact body)');
          if (problem) ctx.out.warn(`the daemon may refuse this version 1 signature (v1_ambiguous_param): ${problem.detail}; drop --v1 to sign version 2`);
        }
        Object.assign(headers, signRequest({ method, url: url.href, body: opts.data, keyId, secret, version: opts.v1 ? 1 : 2 }).headers);
      } else ctx.out.warn('no --key given: sending the request unsigned (only ops routes and --insecure-no-auth daemons answer it)');
      let res: Response;
      try {
        res = await fetch(url, { method: method.toUpperCase(), headers, body: opts.data, signal: AbortSignal.timeout(timeoutMs) });
      } catch (err) {
        const reason = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
        throw new GuardError('GUARD_E_NETWORK', `cannot reach ${url.origin}: ${reason}`, { hint: 'is `guardctl serve` running there? check --url', cause: err });
      }
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON (metrics, the web page): printed as it is
      }
      ctx.out.result({ status: res.status, body }, () => `${res.status} ${res.statusText}\n${typeof body === 'string' ? body : JSON.stringify(body, null, 2)}`);
      if (!res.ok) ctx.setExitCode(1);
    });
}
