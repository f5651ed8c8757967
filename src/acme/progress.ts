/**
 * What the person at the terminal sees during an order: on a TTY one ora spinner line with each name's state;
 * otherwise nothing but the info/warn lines (silent under --json except warnings). Messages go through here so
 * they never tear the spinner line.
 */
import ora, { type Ora } from 'ora';
import type { Logger } from '../core/log.js';
import type { Output } from '../core/output.js';
import type { LogFn, NameState } from './order.js';

const WORDS: Record<NameState, string> = {
  pending: 'waiting',
  dns: 'writing the challenge',
  propagating: 'waiting for DNS',
  validating: 'CA validating',
  valid: 'valid',
  failed: 'failed',
};

export interface Reporter {
  log: LogFn;
  progress(name: string, state: NameState): void;
  /** Starts (or retitles) the spinner for one lineage. */
  start(title: string): void;
  /** Ends the spinner with a mark. */
  stop(ok: boolean, text?: string): void;
}

export interface ReporterOptions {
  out: Output;
  logger: Logger;
  /** Whether to draw a spinner (see isInteractive). */
  interactive: boolean;
  stream?: NodeJS.WriteStream;
}

/** A spinner only for a person: a TTY, not --json, not a dumb terminal, not CI. */
export function isInteractive(json: boolean, env: NodeJS.ProcessEnv, stream: { isTTY?: boolean } = process.stderr): boolean {
  return !json && Boolean(stream.isTTY) && env.TERM !== 'dumb' && !env.CI;
}

export function createReporter({ out, logger, interactive, stream = process.stderr }: ReporterOptions): Reporter {
  let spinner: Ora | undefined;
  let title = '';
  const states = new Map<string, NameState>();
  const render = () => {
    if (!spinner) return;
    const parts = [...states].map(([name, state]) => `${name}: ${WORDS[state]}`);
    spinner.text = parts.length > 0 ? `${title} (${parts.join(', ')})` : title;
  };
  const around = (write: () => void) => {
    if (spinner?.isSpinning) {
      spinner.clear();
      write();
      spinner.render();
    } else write();
  };
  return {
    log(level, message) {
      logger[level === 'error' ? 'error' : level]({ component: 'cert' }, message);
      if (level === 'info') around(() => out.note(message));
      else around(() => out.warn(message));
    },
    progress(name, state) {
      states.set(name, state);
      logger.debug({ component: 'cert', domain: name, state }, 'challenge state');
      render();
    },
    start(text) {
      title = text;
      states.clear();
      if (!interactive) return;
      if (!spinner) spinner = ora({ stream, discardStdin: false, isEnabled: true, text });
      spinner.start(text);
    },
    stop(ok, text) {
      if (!spinner?.isSpinning) return;
      if (ok) spinner.succeed(text ?? title);
      else spinner.fail(text ?? title);
    },
  };
}
