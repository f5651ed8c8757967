import { Gate } from '../../src/gate/gate.js';
import { MemoryGateState } from '../../src/gate/memory-state.js';
import { DEFAULT_GATE_OPTIONS } from '../../src/gate/options.js';
import type { Engine } from '../../src/infer/types.js';
import { loadTiers } from '../../src/keys/tiers.js';
import { buildServer } from '../../src/server/app.js';
import { serveConfig } from '../../src/server/config.js';
import { demoEngine } from './demo-engine.js';
import { MemoryAudit, MemoryKeys } from './gate-app.js';
import { listenLoopback } from './system.js';

export interface WebServer {
  /** http://127.0.0.1:PORT (without the base path). */
  origin: string;
  keys: MemoryKeys;
  engine: Engine;
  close(): Promise<void>;
}

/**
 * The daemon as `guardctl serve` builds it, for the web page's browser test: the real server (web/ served under
 * `basePath`), the real gate (keys in memory) and the real engine on the demo models (CPU), on 127.0.0.1:0; or a
 * test engine given (closed with the server).
 */
export async function startWebServer(basePath: string, testEngine?: Engine): Promise<WebServer> {
  const keys = new MemoryKeys();
  const options = DEFAULT_GATE_OPTIONS;
  const state = new MemoryGateState({ nonceCapacity: options.nonceCapacity, authFailures: options.authFailures });
  const gate = new Gate({ keys, state, tiers: loadTiers(undefined), options });
  const engine = testEngine ?? (await demoEngine());
  try {
    const app = await buildServer({ config: serveConfig({ basePath }), engine, gate: { gate, audit: new MemoryAudit() }, logger: false });
    const origin = await listenLoopback(app);
    return { origin, keys, engine, close: async () => { await app.close(); await engine.close(); } };
  } catch (err) {
    await engine.close();
    throw err;
  }
}
