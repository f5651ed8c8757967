import type { Writable } from 'node:stream';
import { colourFor, type ChalkInstance, type ColourSettings } from './colour.js';

/**
 * The one way commands talk to the person at the terminal: results go to stdout (JSON under --json, text
 * otherwise), notes and warnings to stderr (suppressed under --json except warnings). Nothing else in src/
 * writes to the console.
 */
export interface Output {
  readonly json: boolean;
  /** Colours for the human result text on stdout (no colour at all under --json, see colour.ts). */
  readonly paint: ChalkInstance;
  /** Prints a command's result: `data` as JSON under --json, else the text from `human()`. */
  result(data: unknown, human: () => string): void;
  /** A progress or information line for people; silent under --json. */
  note(message: string): void;
  /** A warning; goes to stderr in both modes. */
  warn(message: string): void;
}

export interface OutputStreams {
  stdout: Writable;
  stderr: Writable;
}

/** `colour` carries the environment and --no-color; without it colour follows the streams alone (tests). */
export function createOutput({ stdout, stderr }: OutputStreams, json: boolean, colour: Omit<ColourSettings, 'json'> = { env: {} }): Output {
  // Made when first used: on a terminal a painter loads chalk, which most commands never need.
  let paint: ChalkInstance | undefined;
  let errPaint: ChalkInstance | undefined;
  return {
    json,
    get paint() {
      return (paint ??= colourFor(stdout, { ...colour, json }));
    },
    result(data, human) {
      const text = json ? JSON.stringify(data, null, 2) : human();
      if (text !== '') stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    note(message) {
      if (!json) stderr.write(`${message}\n`);
    },
    warn(message) {
      errPaint ??= colourFor(stderr, { ...colour, json });
      stderr.write(`${errPaint.yellow('warning:')} ${message}\n`);
    },
  };
}

/** Formats rows as aligned columns for human output; cells may carry colour (widths count visible text only). */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? ''))));
  const pad = (cell: string, width: number) => cell + ' '.repeat(Math.max(0, width - visible(cell)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : pad(c, widths[i]!))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

// eslint-disable-next-line no-control-regex
const SGR = /\u001b\[[0-9;]*m/g;

/** The length a person sees: without colour escapes. */
export function visible(text: string): number {
  return text.replace(SGR, '').length;
}
