import { Option, type Command } from 'commander';
import type { ContextFactory } from '../cli.js';
import { pick, section } from '../core/config.js';
import { GuardError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { checkUniqueNames, embeddedModels, modelsFromConfig, parseModelFlag } from '../daemon/models.js';
import { attributeOf, resolveSettings, SETTINGS } from '../daemon/settings.js';
import type { ModelSpec } from '../infer/types.js';

export function registerServe(program: Command, contextFor: ContextFactory): void {
  const cmd = program
    .command('serve')
    .description('run the inference daemon: signed moderation and translation APIs, metrics and a web page')
    .option('--model <NAME=TASK:DIR[:SIZE]>', 'serve this model (repeatable; env GUARDCTL_MODELS, comma-separated; default the embedded demo models)', (v: string, prev: string[] = []) => [...prev, v]);
  for (const def of SETTINGS) {
    const dflt = def.default === undefined || def.boolean ? [] : [`default ${def.default === '' ? 'none' : def.default}`];
    cmd.addOption(new Option(def.flag, `${def.description} (${[...dflt, `env ${def.env}`].join('; ')})`));
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
    // The daemon's modules (ONNX Runtime, fastify, the gate) load here, not when the program is built.
    const { startDaemon } = await import('../daemon/run.js');
    const daemon = await startDaemon({ settings, models, home: ctx.locations.home, env: ctx.env, config: ctx.config, configFile: source, logger });
    ctx.out.note(`guardctl serve: listening on ${daemon.url} (models warming up; /readyz turns 200 when ready)`);
    let onTerm = () => {};
    let onInt = () => {};
    const onHup = () => daemon.reloadTls();
    const stopped = new Promise<string>((resolve) => {
      onTerm = () => resolve('SIGTERM');
      onInt = () => resolve('SIGINT');
    });
    process.once('SIGTERM', onTerm).once('SIGINT', onInt).on('SIGHUP', onHup);
    try {
      const first = await Promise.race([daemon.ready.then(() => undefined), stopped]);
      if (first === undefined) {
        // A daemon that never becomes ready helps nobody: stop with the model's own error unless --allow-partial.
        const loaded = daemon.engine.models();
        const failed = loaded.filter((m) => m.state === 'failed');
        if (failed.length > 0 && (!settings.allowPartial || failed.length === loaded.length)) {
          logger.info('shutting down: a model failed to load');
          await daemon.shutdown();
          throw modelsFailed(failed, loaded.length, settings.allowPartial);
        }
        for (const m of failed) ctx.out.warn(`model ${m.name} failed to load: ${m.error ?? 'unknown error'}; serving the others (--allow-partial)`);
      }
      logger.info({ signal: first ?? (await stopped) }, 'shutting down');
      await daemon.shutdown();
    } finally {
      process.off('SIGTERM', onTerm).off('SIGINT', onInt).off('SIGHUP', onHup);
    }
  });
}

function modelsFailed(failed: Array<{ name: string; error?: string }>, total: number, allowPartial: boolean): GuardError {
  const what = failed.map((m) => `${m.name} failed to load: ${m.error ?? 'unknown error'}`).join('; ');
  const hint = allowPartial || total === 1
    ? 'fix the model directory (guardctl model check DIR says what is wrong) or drop its --model'
    : 'fix the model directory (guardctl model check DIR says what is wrong), drop its --model, or add --allow-partial to serve the others';
  return new GuardError('GUARD_E_MODEL', failed.length === total && total > 1 ? `no model loaded: ${what}` : `model ${what}`, { hint, details: { models: failed.map((m) => ({ name: m.name, error: m.error })) } });
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
