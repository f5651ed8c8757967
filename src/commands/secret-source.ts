import fs from 'node:fs';
import { GuardError, usageError } from '../core/errors.js';

/** Where a secret comes from, and how to name it in messages: never from argv (shell history, ps). */
export interface SecretSource {
  file?: string;
  envVar?: string;
  /** "the secret", "the export password" */
  what: string;
  fileFlag: string;
  envFlag: string;
  /** How to fill an empty file or variable. */
  fillHint: (where: string) => string;
}

/** Reads a secret from a file or an environment variable, trimmed; undefined when neither is given. */
export function readSecretSource(src: SecretSource, env: NodeJS.ProcessEnv): string | undefined {
  if (src.file && src.envVar) throw usageError(`give either ${src.fileFlag} or ${src.envFlag}, not both`);
  if (src.file) {
    let text: string;
    try {
      text = fs.readFileSync(src.file, 'utf8');
    } catch (err) {
      throw new GuardError('GUARD_E_SECRET_SOURCE', `cannot read ${src.what} file ${src.file}: ${(err as Error).message}`, {
        hint: `${src.fillHint(src.file)}; keep the file readable only by you (chmod 600)`,
        cause: err,
      });
    }
    const secret = text.trim();
    if (!secret) throw new GuardError('GUARD_E_SECRET_SOURCE', `${src.what} file ${src.file} is empty`, { hint: src.fillHint(src.file) });
    return secret;
  }
  if (src.envVar) {
    const secret = env[src.envVar]?.trim();
    if (!secret) throw new GuardError('GUARD_E_SECRET_SOURCE', `the environment variable ${src.envVar} is not set or empty`, { hint: src.fillHint(src.envVar) });
    return secret;
  }
  return undefined;
}

/** Reads a signing secret from --secret-file or --secret-env. */
export function readSecret(opts: { secretFile?: string; secretEnv?: string }, env: NodeJS.ProcessEnv): string {
  const secret = readSecretSource({
    file: opts.secretFile,
    envVar: opts.secretEnv,
    what: 'the secret',
    fileFlag: '--secret-file',
    envFlag: '--secret-env',
    fillHint: (where) => (where === opts.secretFile
      ? 'save the secret printed by `guardctl keys create` into it (gs_...)'
      : `export ${where}=gs_...`),
  }, env);
  if (secret === undefined) throw usageError('no secret given', 'add --secret-file FILE or --secret-env VAR');
  return secret;
}
