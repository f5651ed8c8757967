/** `cert rollback`: puts the version kept in previous/ back in place, deploys it and runs the reload command. */
import { deployAndReload, type LifecycleDeps } from './obtain.js';
import { CertStore } from './store.js';
import type { LineageMeta } from './types.js';

export async function rollbackLineage(name: string, deps: LifecycleDeps): Promise<{ meta: LineageMeta; from: string; deployed: string[] }> {
  const store = new CertStore(deps.home);
  store.readMeta(name);
  return store.locked(name, async () => {
    const from = store.readMeta(name).cert.serial;
    store.rollback(name);
    const meta = store.readMeta(name);
    deps.log('info', `${name}: certificate ${meta.cert.serial} is back in place of ${from}`);
    const deployed = await deployAndReload(store, { ...meta, deployedSerial: undefined }, deps);
    return { meta: store.readMeta(name), from, deployed };
  });
}
