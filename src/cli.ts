import { readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { Command, CommanderError, type Option } from 'commander';
import { loadConfigFile, pick } from './core/config.js';
import type { Context } from './core/context.js';
import { GuardError, isGuardError } from './core/errors.js';
import { colourFor } from './core/colour.js';
import { createLogger, LOG_LEVELS } from './core/log.js';
import { createOutput } from './core/output.js';
import { resolveLocations } from './core/paths.js';
import { registerCert } from './commands/cert.js';
import { registerDoctor } from './commands/doctor.js';
import { registerKeys } from './commands/keys.js';
import { registerModel } from './commands/model.js';
import { registerNginx } from './commands/nginx.js';
import { registerRequest } from './commands/request.js';
import { registerServe } from './commands/serve.js';
import { registerSign } from './commands/sign.js';
import { registerSystemd } from './commands/systemd.js';
import { registerUp } from './commands/up.js';

export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  stdin?: Readable;
  env: NodeJS.ProcessEnv;
  now?: () => number;
}

export type ContextFactory = (command: Command) => Context;

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(io: CliIo, exit: { code: number } = { code: 0 }, argv: readonly string[] = []): Command {
  // Commander's own parse errors (unknown option, missing argument) get the red "error:" of every other error;
  // they come before the options are parsed, so --json and --no-color are read from argv.
  const output = {
    writeOut: (s: string) => io.stdout.write(s),
    writeErr: (s: string) => io.stderr.write(s),
    outputError: (s: string, write: (s: string) => void) =>
      write(s.replace(/^error:/, (prefix) => colourFor(io.stderr, { env: io.env, json: argv.includes('--json'), noColor: argv.includes('--no-color') }).red(prefix))),
  };
  const program = new Command('guardctl')
    .description('Certificates, nginx, API keys and a signed-request inference daemon for AI model services')
    .version(pkg.version, '-V, --version')
    .option('--json', 'machine-readable output on stdout', false)
    .option('-v, --verbose', 'debug logs, and stack traces for internal errors', false)
    .option('--no-color', 'no colour in human output (also NO_COLOR; FORCE_COLOR forces it)')
    .option('--config <file>', 'config file (env GUARDCTL_CONFIG)')
    .option('--home <dir>', 'data directory (env GUARDCTL_HOME)')
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ optionDescription })
    .configureOutput(output)
    .exitOverride();

  const contextFor: ContextFactory = (command) => {
    const opts = command.optsWithGlobals<{ json: boolean; verbose: boolean; color: boolean; config?: string; home?: string }>();
    const locations = resolveLocations({ homeFlag: opts.home, configFlag: opts.config, env: io.env });
    const config = loadConfigFile(locations.configFile, { required: Boolean(opts.config ?? io.env.GUARDCTL_CONFIG) });
    const level = pick<string>(opts.verbose ? 'debug' : undefined, io.env.GUARDCTL_LOG, config.log, 'warn')!;
    if (!(LOG_LEVELS as readonly string[]).includes(level)) {
      throw new GuardError('GUARD_E_CONFIG', `unknown log level "${level}"`, { hint: `use one of ${LOG_LEVELS.join(', ')} (GUARDCTL_LOG or "log:" in the config file)` });
    }
    let log: Context['log'] | undefined;
    return {
      out: createOutput(io, opts.json, { env: io.env, noColor: !opts.color }),
      // Made on first use: most commands never log, and pino is a noticeable part of start-up.
      get log() {
        return (log ??= createLogger(level));
      },
      locations,
      config,
      env: io.env,
      stdin: io.stdin,
      verbose: opts.verbose,
      now: io.now ?? Date.now,
      setExitCode: (code) => {
        exit.code = code;
      },
    };
  };

  registerKeys(program, contextFor);
  registerSign(program, contextFor);
  registerRequest(program, contextFor);
  registerServe(program, contextFor);
  registerModel(program, contextFor);
  registerDoctor(program, contextFor);
  registerCert(program, contextFor);
  registerNginx(program, contextFor);
  registerSystemd(program, contextFor);
  registerUp(program, contextFor);
  // Subcommands inherit the output routing and error handling of the root.
  for (const cmd of allCommands(program)) {
    cmd.configureOutput(output).exitOverride();
    cmd.showHelpAfterError('(add --help for usage)');
    reportUnknownOptionsFirst(cmd);
  }
  return program;
}

/**
 * One spelling for defaults across every --help: "(default 60s)", as the descriptions write those commander does
 * not know; commander's own would read `(default: "60s")` beside them.
 */
function optionDescription(option: Option): string {
  const extra: string[] = [];
  if (option.argChoices) extra.push(`one of ${option.argChoices.join(', ')}`);
  const value = option.defaultValue as unknown;
  if (value !== undefined && value !== false && !/\(default /.test(option.description)) {
    extra.push(`default ${option.defaultValueDescription ?? (Array.isArray(value) ? value.join(',') : String(value))}`);
  }
  return extra.length > 0 ? `${option.description} (${extra.join('; ')})` : option.description;
}

/**
 * Commander checks required options before unknown ones, so a typo (`--teir free`) was reported as the missing
 * `--tier`. The required check moves to a preAction hook, which runs after the unknown-option check.
 */
function reportUnknownOptionsFirst(cmd: Command): void {
  const required = cmd.options.filter((o) => o.mandatory);
  if (required.length === 0) return;
  for (const o of required) o.mandatory = false;
  cmd.hook('preAction', (_hooked, action) => {
    for (const o of required) {
      if (action.getOptionValue(o.attributeName()) === undefined) {
        action.error(`error: required option '${o.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue' });
      }
    }
  });
}

function allCommands(cmd: Command): Command[] {
  return cmd.commands.flatMap((c) => [c, ...allCommands(c)]);
}

/** Parses argv (without node and script), runs the command and returns the exit code. Never exits. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const exit = { code: 0 };
  const program = buildProgram(io, exit, argv);
  const wantsJson = argv.includes('--json');
  const verbose = argv.includes('--verbose') || argv.includes('-v');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exit.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      // commander already printed its message; usage errors exit 2.
      return 2;
    }
    if (isGuardError(err)) {
      if (wantsJson) {
        io.stdout.write(`${JSON.stringify({ error: { code: err.code, message: err.message, hint: err.hint, ...err.details } }, null, 2)}\n`);
      } else {
        const paint = colourFor(io.stderr, { env: io.env, noColor: argv.includes('--no-color') });
        io.stderr.write(`${paint.red('error:')} ${err.message} ${paint.dim(`(${err.code})`)}\n`);
        if (err.hint) io.stderr.write(`  hint: ${err.hint}\n`);
      }
      if (verbose && err.cause instanceof Error) io.stderr.write(`  cause: ${err.cause.stack ?? err.cause.message}\n`);
      return err.exitCode;
    }
    const bug = err instanceof Error ? err : new Error(String(err));
    io.stderr.write(`${colourFor(io.stderr, { env: io.env, json: wantsJson, noColor: argv.includes('--no-color') }).red('internal error:')} ${bug.message}\n`);
    io.stderr.write(verbose ? `${bug.stack}\n` : '  run again with --verbose for the stack trace, and report it as a bug\n');
    return 70;
  }
}

export async function runCli(): Promise<void> {
  const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env });
  // Long-running commands (serve) resolve only when they have stopped, so exiting here is safe.
  process.exitCode = code;
}

