import { Option, type Command } from 'commander';
import type { ContextFactory } from '../cli.js';
import { pick, section } from '../core/config.js';
import { createLogger } from '../core/log.js';
import { checkUniqueNames, embeddedModels, modelsFromConfig, parseModelFlag } from '../daemon/models.js';
import { startDaemon } from '../daemon/run.js';
import { attributeOf, resolveSettings, SETTINGS } from '../daemon/settings.js';
import type { ModelSpec } from '../infer/types.js';

export function registerServe(program: Command, contextFor: ContextFactory): void {
  const cmd = program
    .command('serve')
    .description('run the inference daemon: signed moderation and translation APIs, metrics and a web page')
    .option('--model <NAME=TASK:DIR[:SIZE]>', 'serve this model (repeatable; env GUARDCTL_MODELS, comma-separated); default: the embedded demo models', (v: string, prev: string[] = []) => [...prev, v]);
  for (const def of SETTINGS) {
    const dflt = def.default === undefined || def.boolean ? '' : ` (default ${def.default === '' ? 'none' : def.default})`;
    cmd.addOption(new Option(def.flag, `${def.description}${dflt}; env ${def.env}`));
    if (def.formerly) cmd.addOption(new Option(def.formerly.flag, `former name of ${def.flag.split(' ')[0]}`).hideHelp());
  }
  cmd.action(async (opts: Record<string, unknown> & { model?: string[] }, command: Command) => {
    const ctx = contextFor(command);
    const source = ctx.locations.configFile;
    // Commander names each value after its flag (--max-body -> maxBody); the settings table after the setting.
    const flags: Record<string, unknown> = { ...opts, ...Object.fromEntries(SETTINGS.map((def) => [def.key, opts[attributeOf(def.flag)]])) };
    const renamed: string[] = [];
    const settings = resolveSettings(flags, ctx.env, section(ctx.config, 'serve', source), source, section(ctx.config, 'gate', source), section(ctx.config, 'keys', source), (m) => renamed.push(m));
    const models = pickModels(opts.model, ctx.env.GUARDCTL_MODELS, ctx.config.models, source);
    const logger = createLogger(pick<string>(ctx.verbose ? 'debug' : undefined, ctx.env.GUARDCTL_LOG, ctx.config.log, 'info')!);
    // The effective configuration, once; it holds no secret (the TLS key and master key are paths or absent).
    for (const message of renamed) logger.warn(message);
    logger.info({ settings, models: models.map((m) => ({ name: m.name, task: m.task, size: m.size, dir: m.dir })), home: ctx.locations.home, config: source }, 'starting');
    const daemon = await startDaemon({ settings, models, home: ctx.locations.home, env: ctx.env, config: ctx.config, configFile: source, logger });
    ctx.out.note(`guardctl serve: listening on ${daemon.url} (models warming up; /readyz turns 200 when ready)`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        logger.info({ signal }, 'shutting down');
        daemon.shutdown().then(resolve, resolve);
      };
      const onTerm = () => stop('SIGTERM');
      const onInt = () => stop('SIGINT');
      const onHup = () => daemon.reloadTls();
      process.once('SIGTERM', onTerm);
      process.once('SIGINT', onInt);
      process.on('SIGHUP', onHup);
    });
  });
}

/** --model flags > GUARDCTL_MODELS > the config file's models: > the embedded demo models. */
function pickModels(flags: string[] | undefined, env: string | undefined, fromConfig: unknown, source: string): ModelSpec[] {
  let specs: ModelSpec[];
  if (flags?.length) specs = flags.map(parseModelFlag);
  else if (env) specs = env.split(',').map((s) => s.trim()).filter(Boolean).map(parseModelFlag);
  else if (fromConfig !== undefined && fromConfig !== null) specs = modelsFromConfig(fromConfig, source);
  else specs = embeddedModels();
  checkUniqueNames(specs);
  return specs;
}
