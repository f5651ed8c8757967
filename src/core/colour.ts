/**
 * Whether a stream gets colour, decided here and nowhere else. Each stream gets its own chalk instance (stdout
 * may be a pipe while stderr is a terminal), and the decision reads the environment the CLI was given, not
 * process.env, so in-process runs and tests see what a person would.
 *
 * Off under --json and --no-color, always. Otherwise FORCE_COLOR forces it (0 or false: off; 2 and 3: 256 and
 * 16M colours; anything else: 16), taking precedence over NO_COLOR as it does in Node; then NO_COLOR (any
 * non-empty value) turns it off; else colour goes to a TTY only, as deep as the terminal says it can show.
 */
import { createRequire } from 'node:module';
import type { ChalkInstance } from 'chalk';

export type { ChalkInstance };
export type ColourLevel = 0 | 1 | 2 | 3;

export interface ColourSettings {
  env: NodeJS.ProcessEnv;
  json?: boolean;
  /** --no-color */
  noColor?: boolean;
}

interface MaybeTty {
  isTTY?: boolean;
  getColorDepth?: (env?: Record<string, string | undefined>) => number;
}

/** `stream`: any writable; a tty.WriteStream says whether it is a terminal and how many colours it shows. */
export function colourLevel(stream: object, settings: ColourSettings): ColourLevel {
  const tty = stream as MaybeTty;
  if (settings.json || settings.noColor) return 0;
  const force = settings.env.FORCE_COLOR;
  if (force !== undefined) {
    const value = force.trim().toLowerCase();
    if (value === '0' || value === 'false') return 0;
    return value === '2' ? 2 : value === '3' ? 3 : 1;
  }
  if (settings.env.NO_COLOR) return 0;
  if (!tty.isTTY) return 0;
  const depth = tty.getColorDepth?.(settings.env) ?? 4;
  return depth >= 24 ? 3 : depth >= 8 ? 2 : depth >= 4 ? 1 : 0;
}

/**
 * Colourless text costs no chalk: loading it takes ~14 ms of a start-up budget of ~150 ms, and most runs (pipes,
 * --json, scripts) show no colour. chalk is ESM; Node >= 20.19 (package.json engines) requires it synchronously.
 */
export function colourFor(stream: object, settings: ColourSettings): ChalkInstance {
  const level = colourLevel(stream, settings);
  if (level === 0) return PLAIN;
  const { Chalk } = createRequire(import.meta.url)('chalk') as typeof import('chalk');
  return new Chalk({ level });
}

/** chalk at level 0, without chalk: every style, however chained, returns its arguments joined by spaces. */
const PLAIN: ChalkInstance = new Proxy(function plain() {}, {
  get: (_target, prop) => (prop === 'level' ? 0 : PLAIN),
  apply: (_target, _this, args: unknown[]) => args.join(' '),
}) as unknown as ChalkInstance;
