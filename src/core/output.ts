import type { Writable } from 'node:stream';

/**
 * The one way commands talk to the person at the terminal: results go to stdout (JSON under --json, text
 * otherwise), notes and warnings to stderr (suppressed under --json except warnings). Nothing else in src/
 * writes to the console.
 */
export interface Output {
  readonly json: boolean;
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

export function createOutput({ stdout, stderr }: OutputStreams, json: boolean): Output {
  return {
    json,
    result(data, human) {
      const text = json ? JSON.stringify(data, null, 2) : human();
      if (text !== '') stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    note(message) {
      if (!json) stderr.write(`${message}\n`);
    },
    warn(message) {
      stderr.write(`warning: ${message}\n`);
    },
  };
}

/** Formats rows as aligned columns for human output. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}
