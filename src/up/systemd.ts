/**
 * The units `up` installs where systemd runs: guardctl.service (the daemon) and guardctl-renew.service + .timer,
 * rendered by src/systemd/units.ts, written atomically into the unit folder and (re)started with systemctl. Undo
 * puts the folder's previous files back byte for byte and the unit back in the state it was found in (active or
 * not, enabled or not). Every systemctl call goes through a Systemctl runner, so the call sequence is testable
 * where systemd does not run (test/up/systemd.test.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { writeFileAtomic } from '../core/atomic.js';
import { GuardError } from '../core/errors.js';
import { restoreSnapshot, takeSnapshot } from '../nginx/snapshot.js';
import { renderUnits, type SystemdInputs } from '../systemd/units.js';

export type UnitName = 'guardctl.service' | 'guardctl-renew.service' | 'guardctl-renew.timer';

/** Runs `systemctl ARGS`: its exit code and output (never throws for a non-zero exit). */
export type Systemctl = (args: string[]) => Promise<{ code: number; output: string }>;

export const realSystemctl: Systemctl = async (args) => {
  const r = await execa('systemctl', args, { reject: false, all: true, timeout: 120_000, stdin: 'ignore' });
  return { code: r.failed ? (r.exitCode ?? 1) || 1 : 0, output: (r.all ?? r.shortMessage ?? '').toString() };
};

export function unitsFor(inputs: SystemdInputs, names: UnitName[]): Record<string, string> {
  const all = renderUnits(inputs);
  return Object.fromEntries(names.map((n) => [n, all[n]]));
}

async function must(systemctl: Systemctl, args: string[]): Promise<void> {
  const r = await systemctl(args);
  if (r.code !== 0) {
    throw new GuardError('GUARD_E_DAEMON', `systemctl ${args.join(' ')} failed: ${r.output.trim().split('\n').slice(-3).join(' / ')}`, {
      hint: `see journalctl -u ${args[args.length - 1]}`,
    });
  }
}

export interface InstallOptions {
  systemctl?: Systemctl;
  /** Resolves once the started unit serves (the daemon's /readyz), rejects when it does not. */
  ready?: () => Promise<void>;
}

/**
 * Writes the units, enables `start` and restarts it, so that a unit already running picks up the new settings
 * (`enable --now` would leave it running the old ones); then waits for `ready`. Returns the written paths and an
 * undo that restores the files and the unit's previous state.
 */
export async function installUnits(unitDir: string, units: Record<string, string>, start: string, opts: InstallOptions = {}): Promise<{ files: string[]; undo: () => Promise<void> }> {
  const systemctl = opts.systemctl ?? realSystemctl;
  const files = Object.keys(units).map((n) => path.join(unitDir, n));
  const snap = takeSnapshot(files, unitDir);
  const wasActive = (await systemctl(['is-active', start])).code === 0;
  const wasEnabled = (await systemctl(['is-enabled', start])).code === 0;
  const undo = async () => {
    // Stop and disable while the new unit file is still there to read; then the old files, then the old state.
    if (!wasActive) await systemctl(['stop', start]);
    if (!wasEnabled) await systemctl(['disable', start]);
    restoreSnapshot(snap);
    await must(systemctl, ['daemon-reload']);
    if (wasEnabled) await must(systemctl, ['enable', start]);
    if (wasActive) await must(systemctl, ['restart', start]);
  };
  try {
    for (const [name, text] of Object.entries(units)) writeFileAtomic(path.join(unitDir, name), text, 0o644);
    await must(systemctl, ['daemon-reload']);
    await must(systemctl, ['enable', start]);
    await must(systemctl, ['restart', start]);
    await opts.ready?.();
  } catch (err) {
    await undo().catch(() => {});
    throw err;
  }
  return { files, undo };
}

/** Polls `url` until it answers 200; fails as soon as `unit` is no longer active (Restart=on-failure: activating). */
export async function waitUnitReady(unit: string, url: string, get: (url: string) => Promise<{ status: number }>, opts: { systemctl?: Systemctl; boundMs?: number; intervalMs?: number } = {}): Promise<void> {
  const systemctl = opts.systemctl ?? realSystemctl;
  const deadline = Date.now() + (opts.boundMs ?? 180_000);
  for (;;) {
    const r = await get(url).catch(() => undefined);
    if (r?.status === 200) return;
    const state = await systemctl(['is-active', unit]);
    if (state.code !== 0) {
      throw new GuardError('GUARD_E_DAEMON', `${unit} stopped before it was ready (${state.output.trim() || 'not active'})`, { hint: `see journalctl -u ${unit}; a port in use needs another --port` });
    }
    if (Date.now() > deadline) throw new GuardError('GUARD_E_DAEMON', `${unit} was not ready within ${Math.round((opts.boundMs ?? 180_000) / 1000)}s (${url})`, { hint: `see journalctl -u ${unit}` });
    await new Promise((res) => setTimeout(res, opts.intervalMs ?? 200));
  }
}

export async function removeUnits(unitDir: string, names: string[], systemctl: Systemctl = realSystemctl): Promise<void> {
  for (const n of names) await systemctl(['disable', '--now', n]);
  for (const n of names) fs.rmSync(path.join(unitDir, n), { force: true });
  await must(systemctl, ['daemon-reload']);
}

export async function unitActive(name: string, systemctl: Systemctl = realSystemctl): Promise<boolean> {
  return (await systemctl(['is-active', name])).code === 0;
}
