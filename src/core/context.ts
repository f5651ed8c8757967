import type { Readable } from 'node:stream';
import type { GuardConfig } from './config.js';
import type { Logger } from './log.js';
import type { Output } from './output.js';
import type { Locations } from './paths.js';

/** What every command handler receives: resolved once in cli.ts from flags, env and the config file. */
export interface Context {
  out: Output;
  log: Logger;
  locations: Locations;
  config: GuardConfig;
  env: NodeJS.ProcessEnv;
  /** The process's stdin (`--data -`); absent when the CLI runs in-process without one. */
  stdin?: Readable;
  verbose: boolean;
  /** Milliseconds since the epoch; injected so tests can move time. */
  now(): number;
  /** Sets the exit code for a command that completed but must report failure (doctor's failed checks). */
  setExitCode(code: number): void;
}
