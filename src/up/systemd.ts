/**
 * The units `up` installs where systemd runs: guardctl.service (the daemon) and guardctl-renew.service + .timer,
 * rendered by src/systemd/units.ts, written atomically into the unit folder and started with systemctl. Undo
 * stops and disables them and puts the folder's previous files back byte for byte.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { writeFileAtomic } from '../core/atomic.js';
import { GuardError } from '../core/errors.js';
import { restoreSnapshot, takeSnapshot } from '../nginx/snapshot.js';
import { renderUnits, type SystemdInputs } from '../systemd/units.js';

export type UnitName = 'guardctl.service' | 'guardctl-renew.service' | 'guardctl-renew.timer';

export function unitsFor(inputs: SystemdInputs, names: UnitName[]): Record<string, string> {
  const all = renderUnits(inputs);
  return Object.fromEntries(names.map((n) => [n, all[n]]));
}

async function systemctl(args: string[]): Promise<void> {
  const r = await execa('systemctl', args, { reject: false, all: true, timeout: 120_000, stdin: 'ignore' });
  if (r.failed) {
    throw new GuardError('GUARD_E_DAEMON', `systemctl ${args.join(' ')} failed: ${(r.all ?? r.shortMessage ?? '').toString().trim().split('\n').slice(-3).join(' / ')}`, {
      hint: `see journalctl -u ${args[args.length - 1]}`,
    });
  }
}

/** Writes the units, enables and starts `start`; returns the written paths and an undo. */
export async function installUnits(unitDir: string, units: Record<string, string>, start: string): Promise<{ files: string[]; undo: () => Promise<void> }> {
  const files = Object.keys(units).map((n) => path.join(unitDir, n));
  const snap = takeSnapshot(files, unitDir);
  const undo = async () => {
    await systemctl(['disable', '--now', start]).catch(() => {});
    restoreSnapshot(snap);
    await systemctl(['daemon-reload']);
  };
  try {
    for (const [name, text] of Object.entries(units)) writeFileAtomic(path.join(unitDir, name), text, 0o644);
    await systemctl(['daemon-reload']);
    await systemctl(['enable', '--now', start]);
  } catch (err) {
    await undo().catch(() => {});
    throw err;
  }
  return { files, undo };
}

export async function removeUnits(unitDir: string, names: string[]): Promise<void> {
  for (const n of names) await systemctl(['disable', '--now', n]).catch(() => {});
  for (const n of names) fs.rmSync(path.join(unitDir, n), { force: true });
  await systemctl(['daemon-reload']);
}

export async function unitActive(name: string): Promise<boolean> {
  const r = await execa('systemctl', ['is-active', name], { reject: false, timeout: 30_000, stdin: 'ignore' });
  return r.exitCode === 0;
}
