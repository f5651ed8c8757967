import fs from 'node:fs';
import { GuardError, usageError } from '../core/errors.js';

/** Reads a signing secret from --secret-file or --secret-env; secrets never come from argv (shell history, ps). */
export function readSecret(opts: { secretFile?: string; secretEnv?: string }, env: NodeJS.ProcessEnv): string {
  if (opts.secretFile && opts.secretEnv) throw usageError('give either --secret-file or --secret-env, not both');
  if (opts.secretFile) {
    let text: string;
    try {
      text = fs.readFileSync(opts.secretFile, 'utf8');
    } catch (err) {
      throw new GuardError('GUARD_E_SECRET_SOURCE', `cannot read the secret file ${opts.secretFile}: ${(err as Error).message}`, {
        hint: 'save the secret printed by `guardctl keys create` into a file readable only by you (chmod 600)',
        cause: err,
      });
    }
    const secret = text.trim();
    if (!secret) throw new GuardError('GUARD_E_SECRET_SOURCE', `the secret file ${opts.secretFile} is empty`, { hint: 'write the secret (gs_...) into it' });
    return secret;
  }
  if (opts.secretEnv) {
    const secret = env[opts.secretEnv]?.trim();
    if (!secret) throw new GuardError('GUARD_E_SECRET_SOURCE', `the environment variable ${opts.secretEnv} is not set or empty`, { hint: `export ${opts.secretEnv}=gs_...` });
    return secret;
  }
  throw usageError('no secret given', 'add --secret-file FILE or --secret-env VAR');
}
