import { Counter, Gauge, type Registry } from 'prom-client';
import type { KeysBackendHealth } from './pg-lookup.js';

/** The key store's health in /metrics: up or not, how long since it last answered, and the refusals it caused. */
export function registerKeysMetrics(registry: Registry, kind: string, health: () => KeysBackendHealth): void {
  const registers = [registry];
  new Gauge({
    name: 'guard_keys_backend_up', help: 'Whether the key store answers (1) or not (0), by backend', labelNames: ['backend'], registers,
    collect() {
      this.set({ backend: kind }, health().up ? 1 : 0);
    },
  });
  new Gauge({
    name: 'guard_keys_backend_last_ok_age_seconds', help: 'Seconds since the key store last answered (cached keys stop working past --keys-stale)', labelNames: ['backend'], registers,
    collect() {
      const h = health();
      this.set({ backend: kind }, h.up ? 0 : Math.max(0, (Date.now() - h.lastOkAt) / 1000));
    },
  });
  let counted = 0;
  new Counter({
    name: 'guard_keys_unavailable_total', help: 'Requests refused with 503 keys_unavailable (key store unreachable)', labelNames: ['backend'], registers,
    collect() {
      const refused = health().refused;
      this.inc({ backend: kind }, refused - counted);
      counted = refused;
    },
  });
}
