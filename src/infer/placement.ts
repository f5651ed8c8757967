/**
 * Where a model runs: the devices its spec allows (webgpu only where an adapter exists), a load on each, a timed
 * warm-up on each, and the faster device keeps it. With device 'auto' and WebGPU available both are tried; the
 * first warm-up pays one-time costs (WebGPU shader compilation), so when devices compete a second one is timed.
 * A device that fails its load or warm-up drops out (with a warning when another remains); the model fails only
 * when none remains.
 */
import { GuardError } from '../core/errors.js';
import { probeExecutionProviders } from './ep-probe.js';
import type { ProviderProbe } from './ep-probe.js';
import type { FloatType } from './graph.js';
import type { Device, DeviceChoice } from './types.js';

export interface PlacementHooks {
  /** Loads the model's session on a device. */
  load(device: Device): Promise<{ kvDtype: FloatType }>;
  /** Runs one short request on a device; resolves with its wall time (ms). */
  warm(device: Device): Promise<number>;
  /** Drops the model from a device that lost. */
  unload(device: Device): void;
  log(level: 'info' | 'warn', message: string, fields?: Record<string, unknown>): void;
}

export interface Placement {
  device: Device;
  kvDtype: FloatType;
  /** Timed warm-up per device that completed one (ms, rounded). */
  warmupMs: Partial<Record<Device, number>>;
}

/** The WebGPU probe runs once per process: it needs no model and its answer does not change. */
let webgpuProbe: Promise<ProviderProbe> | undefined;
const probeWebgpu = () => (webgpuProbe ??= probeExecutionProviders(['webgpu']).then((r) => r[0]!));

/** The devices to try for a model, fastest candidate first. */
export async function candidateDevices(model: string, choice: DeviceChoice): Promise<Device[]> {
  if (choice === 'cpu') return ['cpu'];
  const probe = await probeWebgpu();
  if (choice === 'webgpu') {
    if (!probe.ok) throw new GuardError('GUARD_E_CONFIG', `model ${model} asks for device webgpu, which is not available: ${probe.error}`, { hint: 'use --device cpu or auto' });
    return ['webgpu'];
  }
  return probe.ok ? ['webgpu', 'cpu'] : ['cpu'];
}

/**
 * Loads and warms a model on its candidate devices and keeps the fastest; the others are unloaded. Throws the
 * load's (or warm-up's) error when no device can serve it. `onLoaded` runs once a load succeeded, before the
 * warm-ups (the model is then 'warming').
 */
export async function placeModel(model: string, choice: DeviceChoice, hooks: PlacementHooks, onLoaded: (kvDtype: FloatType) => void = () => {}): Promise<Placement> {
  const devices = await candidateDevices(model, choice);
  if (choice === 'auto' && !devices.includes('webgpu')) {
    const probe = await probeWebgpu();
    hooks.log('info', `model ${model}: webgpu unavailable (${probe.error}), using cpu`, { model, device: 'cpu' });
  }
  const loads = await Promise.allSettled(devices.map((d) => hooks.load(d)));
  const loaded = devices.filter((_, i) => loads[i]!.status === 'fulfilled');
  loads.forEach((r, i) => {
    if (r.status === 'rejected' && loaded.length > 0) hooks.log('warn', `model ${model} does not load on ${devices[i]}: ${(r.reason as Error).message}`);
  });
  if (loaded.length === 0) throw (loads[0] as PromiseRejectedResult).reason;
  const kvDtype = (loads.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ kvDtype: FloatType }>).value.kvDtype;
  onLoaded(kvDtype);
  const times = new Map<Device, number>();
  let warmError: unknown;
  for (const d of loaded) {
    try {
      const ms = await hooks.warm(d);
      times.set(d, loaded.length > 1 ? await hooks.warm(d) : ms);
    } catch (err) {
      warmError = err;
      if (loaded.length > 1) hooks.log('warn', `model ${model} fails its warm-up on ${d}: ${(err as Error).message}`);
    }
  }
  if (times.size === 0) throw warmError;
  const device = [...times].sort((a, b) => a[1] - b[1])[0]![0];
  for (const d of loaded) if (d !== device) hooks.unload(d);
  return { device, kvDtype, warmupMs: Object.fromEntries([...times].map(([d, ms]) => [d, Math.round(ms)])) };
}
