import type { Command } from 'commander';
import type { ContextFactory } from '../cli.js';
import { GuardError, usageError } from '../core/errors.js';
import { signRequest, v1Refusal } from '../gate/sign-request.js';
import { secondsOrDuration } from '../core/duration.js';
import { addClientOptions, type ClientFlags, readBody, resolveCredentials, resolveTarget } from './client-args.js';

interface RequestOpts extends ClientFlags {
  v1?: boolean;
  v2?: boolean;
  timeout: string;
}

/** `guardctl request`: sign, send and print, so an operator can try the daemon without writing a client. */
export function registerRequest(program: Command, contextFor: ContextFactory): void {
  addClientOptions(program
    .command('request')
    .description('sign a request with an API key, send it to the daemon and print the answer')
    .argument('<method>', 'HTTP method, e.g. POST')
    .argument('<target>', 'a path under --url (e.g. /api/v1/moderate or /api/v1/translate?source_lang=zh&target_lang=en), or a full URL'))
    .option('--v1', 'signature version 1 (the default is version 2, which signs the exact body bytes)')
    .option('--v2', 'signature version 2 (the default; kept for scripts that pass it)')
    .option('--timeout <duration>', 'give up after this long (a number of seconds, or 30s, 2m)', '120s')
    .action(async (method: string, target: string, opts: RequestOpts, command: Command) => {
      const ctx = contextFor(command);
      const url = resolveTarget(target, opts, ctx.env);
      if (opts.v1 && opts.v2) throw usageError('--v1 and --v2 exclude each other', 'version 2 is the default; pass --v1 only for a version 1 signature');
      const timeoutMs = secondsOrDuration(opts.timeout) ?? NaN;
      if (!(timeoutMs > 0) || timeoutMs > 2 ** 31 - 1) {
        throw usageError(`--timeout must be a positive duration (seconds, or 30s, 2m), got "${opts.timeout}"`, 'for example --timeout 30s');
      }
      // Credentials first, as sign does: a usage error must not come after stdin was read to its end.
      const credentials = resolveCredentials(opts, ctx.env);
      const body = await readBody(opts.data, ctx.stdin);
      const headers: Record<string, string> = { accept: 'application/json' };
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (credentials) {
        if (opts.v1) {
          // Version 1 signs only the query and the body's top-level strings, numbers and booleans: the daemon
          // refuses the rest, so say so before sending.
          const problem = v1Refusal({ url: url.href, body });
          if (problem?.code === 'v1_unsigned_member') throw usageError(`--v1 cannot sign this request: ${problem.detail}`, 'drop --v1 (version 2 signs the exact body)');
          if (problem) ctx.out.warn(`the daemon may refuse this version 1 signature (v1_ambiguous_param): ${problem.detail}; drop --v1 to sign version 2`);
        }
        Object.assign(headers, signRequest({ method, url: url.href, body, keyId: credentials.keyId, secret: credentials.secret, version: opts.v1 ? 1 : 2 }).headers);
      } else ctx.out.warn('no --key given: sending the request unsigned (only ops routes and --insecure-no-auth daemons answer it)');
      let res: Response;
      try {
        res = await fetch(url, { method: method.toUpperCase(), headers, body, signal: AbortSignal.timeout(timeoutMs) });
      } catch (err) {
        const reason = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
        throw new GuardError('GUARD_E_NETWORK', `cannot reach ${url.origin}: ${reason}`, { hint: 'is `guardctl serve` running there? check --url', cause: err });
      }
      const text = await res.text();
      let answer: unknown = text;
      try {
        answer = JSON.parse(text);
      } catch {
        // not JSON (metrics, the web page): printed as it is
      }
      ctx.out.result({ status: res.status, body: answer }, () => `${res.status} ${res.statusText}\n${typeof answer === 'string' ? answer : JSON.stringify(answer, null, 2)}`);
      if (!res.ok) ctx.setExitCode(1);
    });
}
