import path from 'node:path';
import type { Server as HttpsServer } from 'node:https';
import type { FastifyBaseLogger } from 'fastify';
import { section, type GuardConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import { fileAuditSink, type AuditSink } from '../gate/audit.js';
import { Gate } from '../gate/gate.js';
import { parseCidrList, type CidrList } from '../gate/ip.js';
import { openGateState } from '../gate/open-state.js';
import { gateOptionsFromConfig } from '../gate/options.js';
import type { StateHealth } from '../gate/state.js';
import { createEngine } from '../infer/engine.js';
import type { Engine, EngineSettings, ModelSpec } from '../infer/types.js';
import { registerKeysMetrics } from '../keys/metrics.js';
import { type DaemonKeys, openDaemonKeys } from './keys.js';
import { loadTiers } from '../keys/tiers.js';
import { buildServer, type GuardServer } from '../server/app.js';
import { serveConfig, type ServeConfig } from '../server/config.js';
import { createServerMetrics } from '../server/metrics.js';
import { listenError } from './port-holder.js';
import { engineSettings, serverSettings, type ServeSettings } from './settings.js';
import { readTls, watchTls } from './tls.js';

export interface DaemonInputs {
  settings: ServeSettings;
  models: ModelSpec[];
  home: string;
  env: NodeJS.ProcessEnv;
  config: GuardConfig;
  configFile: string;
  logger: Logger;
}

export interface Daemon {
  /** http(s)://host:port (the port actually bound, also with --port 0). */
  url: string;
  app: GuardServer;
  engine: Engine;
  /** Resolves when every model is warm (or failed). */
  ready: Promise<void>;
  reloadTls(): boolean;
  /** Drain: /readyz 503, stop accepting, let in-flight requests finish within the drain timeout, then stop. */
  shutdown(): Promise<void>;
}

/**
 * What the engine and the HTTP app are given: the validated settings under their own names, nothing renamed or
 * recomputed on the way (test/daemon/settings-flow.test.ts follows each one from flag, variable and file to here).
 */
export function partsOf(settings: ServeSettings): { engine: EngineSettings; server: ServeConfig } {
  return { engine: engineSettings(settings), server: serveConfig(serverSettings(settings)) };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Composes the daemon: key store -> gate -> engine -> HTTP app, listens, then warms the models (so /healthz
 * answers during the warm-up and /readyz turns 200 only after it).
 */
export async function startDaemon(inputs: DaemonInputs): Promise<Daemon> {
  const { settings, logger } = inputs;
  let host = settings.host;
  if (settings.insecureNoAuth && !LOOPBACK.has(host)) {
    logger.warn({ requested: host }, '--insecure-no-auth binds to 127.0.0.1 only');
    host = '127.0.0.1';
  }
  if (settings.insecureNoAuth) logger.warn('--insecure-no-auth: requests are NOT authenticated, rate limited or audited; for local experiments only');

  const closers: Array<() => Promise<void> | void> = [];
  let gate: { gate: Gate; audit: AuditSink } | undefined;
  let stateHealth: (() => StateHealth) | undefined;
  let trustedProxies: CidrList | undefined;
  let keys: DaemonKeys | undefined;
  if (!settings.insecureNoAuth) {
    keys = await openDaemonKeys(settings, inputs.home, inputs.env, logger);
    closers.push(...keys.closers);
    const lookup = keys.lookup;
    const fileOptions = gateOptionsFromConfig(section(inputs.config, 'gate', inputs.configFile), inputs.configFile);
    // --trusted-proxies / GUARDCTL_TRUSTED_PROXIES win over the file's list (settings.ts resolved the precedence).
    const options = settings.trustedProxies ? { ...fileOptions, trustedProxies: parseCidrList(settings.trustedProxies) } : fileOptions;
    trustedProxies = options.trustedProxies;
    const state = openGateState(settings.state, inputs.home, options, (message) => logger.warn(message));
    closers.push(() => state.close());
    logger.info({ state: state.describe }, 'gate state');
    if (state.health) {
      stateHealth = () => state.health!();
      // Not waited for: until it answers, /readyz says why and model routes answer 503 state_unavailable.
      if (!stateHealth().up) void reportWhenUp(stateHealth, logger);
    }
    const tiers = loadTiers(section(inputs.config, 'tiers', inputs.configFile), inputs.configFile);
    const audit = fileAuditSink(settings.auditFile ?? path.join(inputs.home, 'audit', 'audit.jsonl'));
    closers.push(() => audit.close());
    gate = { gate: new Gate({ keys: lookup, state, tiers, options, onError: (err) => logger.error({ err: (err as Error).message }, 'gate state') }), audit };
  }

  const metrics = createServerMetrics({ processMetrics: true });
  if (keys) registerKeysMetrics(metrics.registry, keys.kind, keys.health);
  const models = inputs.models.map((m) => ({ ...m, device: m.device ?? settings.device, dtype: m.dtype ?? settings.dtype }));
  const parts = partsOf(settings);
  const engine = createEngine(models, {
    ...parts.engine,
    // shutdown() calls engine.close() once the HTTP side is done or --drain-timeout has passed: what is left then
    // is cancelled at once, as docs/serve.md says (the engine's own default would give it 10 s more).
    closeGraceMs: 0,
    onStep: metrics.onStep,
    log: (level, message, fields) => logger[level](fields ?? {}, message),
  });
  const tls = settings.tlsCert && settings.tlsKey ? { cert: settings.tlsCert, key: settings.tlsKey } : undefined;
  const app = await buildServer({
    config: parts.server,
    engine,
    gate,
    logger: logger as unknown as FastifyBaseLogger,
    metrics,
    https: tls ? readTls(tls) : undefined,
    trustedProxies,
    stateHealth,
  });
  let address: string;
  try {
    address = await app.listen({ host, port: settings.port });
  } catch (err) {
    // Nothing is served: release what was opened (the state file's lock, the key store) before reporting.
    await app.close().catch(() => {});
    await engine.close().catch(() => {});
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => {});
    throw listenError(err, host, settings.port);
  }
  const url = `${address}${settings.basePath}`;
  const tlsWatch = tls ? watchTls(app.server as unknown as HttpsServer, tls, (level, msg) => logger[level](msg)) : undefined;
  logger.info({ url }, 'listening');
  const ready = engine.start().then(() => {
    for (const m of engine.models()) {
      if (m.state === 'ready') logger.info({ model: m.name, device: m.device, dtype: m.dtype }, 'model ready');
      else logger.error({ model: m.name, error: m.error }, 'model failed to load');
    }
  });

  let stopping: Promise<void> | undefined;
  const shutdown = () => (stopping ??= (async () => {
    app.drain();
    logger.info({ drainTimeoutMs: settings.drainTimeoutMs }, 'draining: finishing in-flight requests');
    const timer = new Promise<'timeout'>((resolve) => setTimeout(resolve, settings.drainTimeoutMs, 'timeout').unref());
    const outcome = await Promise.race([app.close().then(() => 'closed' as const), timer]);
    if (outcome === 'timeout') logger.warn('drain timeout reached: cancelling what is still running');
    await engine.close();
    if (outcome === 'timeout') await app.close();
    tlsWatch?.close();
    for (const close of closers.reverse()) await close();
    logger.info('stopped');
  })());

  return { url, app, engine, ready, reloadTls: () => tlsWatch?.reload() ?? false, shutdown };
}

/** One log line when a shared state is first reached, or why not after a few seconds (the daemon keeps trying). */
async function reportWhenUp(health: () => StateHealth, logger: Logger): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!health().up && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100).unref());
  const h = health();
  if (h.up) logger.info({ backend: h.backend }, 'gate state connected');
  else logger.warn({ backend: h.backend, reason: h.reason }, 'gate state unavailable: model routes answer 503 state_unavailable until it answers');
}
