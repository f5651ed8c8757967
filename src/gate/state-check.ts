import { RedisGateState } from './redis-state.js';
import { isRedisUrl, parseRedisStateUrl } from './redis-url.js';

/**
 * `guardctl doctor`'s look at the gate state `guardctl serve` would use (GUARDCTL_STATE, else the config file's
 * gate.state): a file or memory needs nothing; a Redis URL must answer a script round trip within its timeout.
 */
export async function checkGateState(setting: string | undefined, where: string): Promise<{ ok: boolean; detail: string }> {
  if (setting === undefined || !isRedisUrl(setting)) return { ok: true, detail: `${setting ?? 'sqlite'} (local to this daemon)` };
  let url;
  try {
    url = parseRedisStateUrl(setting, where);
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  }
  const state = new RedisGateState({ ...url, nonceCapacity: 1, authFailures: { limit: 1, windowSec: 1, blockSec: 1 } });
  try {
    const connected = await state.whenUp(Math.max(url.timeoutMs, 3_000));
    if (connected) await state.blockedInRedis('doctor');
    const h = state.health();
    return h.up
      ? { ok: true, detail: `${url.describe} answers (shared by the daemons that name it; slot lease ${url.leaseMs / 1000} s)` }
      : { ok: false, detail: `${h.reason ?? `${url.describe} unavailable`}; model routes answer 503 state_unavailable until it answers` };
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  } finally {
    await state.close();
  }
}
