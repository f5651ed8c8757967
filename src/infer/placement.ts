/**
 * Where a model runs: the devices its spec allows (webgpu only where an adapter exists, and for 'auto' only a
 * hardware one), a load on each, a timed warm-up on each, and the faster device keeps it. With device 'auto' and
 * a WebGPU hardware adapter both are tried; the first warm-up pays one-time costs (WebGPU shader compilation), so when devices compete a second one is timed.
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

/**
 * The WebGPU probes run once per process: they need no model and their answer does not change. `auto` asks for a
 * hardware adapter: a software one (lavapipe) is always slower than the CPU provider, and creating its device in
 * the serving process makes Dawn print adapter warnings to the terminal.
 */
const probes = new Map<boolean, Promise<ProviderProbe>>();
const probeWebgpu = (hardwareOnly: boolean) => {
  if (!probes.has(hardwareOnly)) probes.set(hardwareOnly, probeExecutionProviders(['webgpu'], { hardwareOnly }).then((r) => r[0]!));
  return probes.get(hardwareOnly)!;
};

/** The devices to try for a model, fastest candidate first. */
export async function candidateDevices(model: string, choice: DeviceChoice): Promise<Device[]> {
  if (choice === 'cpu') return ['cpu'];
  if (choice === 'webgpu') {
    const probe = await probeWebgpu(false);
    if (!probe.ok) throw new GuardError('GUARD_E_CONFIG', `model ${model} asks for device webgpu, which is not available: ${probe.error}`, { hint: 'use --device cpu or auto' });
    return ['webgpu'];
  }
  return (await probeWebgpu(true)).ok ? ['webgpu', 'cpu'] : ['cpu'];
}

/** Why `auto` keeps a model off WebGPU (the hardware probe failed). */
async function whyNotWebgpu(): Promise<string> {
  const [hardware, any] = await Promise.all([probeWebgpu(true), probeWebgpu(false)]);
  return any.ok ? 'webgpu has only a software adapter, slower than the cpu provider (--device webgpu uses it anyway)' : `webgpu unavailable (${hardware.error ?? any.error})`;
}

/**
 * Loads and warms a model on its candidate devices and keeps the fastest; the others are unloaded. Throws the
 * load's (or warm-up's) error when no device can serve it. `onLoaded` runs once a load succeeded, before the
 * warm-ups (the model is then 'warming').
 */
export async function placeModel(model: string, choice: DeviceChoice, hooks: PlacementHooks, onLoaded: (kvDtype: FloatType) => void = () => {}): Promise<Placement> {
  const devices = await candidateDevices(model, choice);
  // Only the wording of a log line waits for the second probe (a process of its own): the loads do not.
  const why = choice === 'auto' && !devices.includes('webgpu') ? whyNotWebgpu() : undefined;
  why?.catch(() => {}); // awaited below, after the loads: not an unhandled rejection meanwhile
  const loads = await Promise.allSettled(devices.map((d) => hooks.load(d)));
  if (why) hooks.log('info', `model ${model}: ${await why}; using cpu`, { model, device: 'cpu' });
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
