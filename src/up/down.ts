/**
 * `guardctl down`: removes what `up` recorded (nginx site, daemon or its units, renewal timer), and with
 * --revoke-keys / --delete-cert also the keys it minted and the certificate. The plan is built first and shown;
 * the command asks before doing it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CertStore } from '../acme/store.js';
import { GuardError } from '../core/errors.js';
import { openKeyBackend, type KeyStoreSpec } from '../keys/backend.js';
import type { Tier } from '../keys/types.js';
import { runFiles, runningDaemon, stopDaemonProcess } from './daemon.js';
import { removeSite } from './site.js';
import { readState, removeState, stateFile, type UpState } from './state.js';
import { removeUnits } from './systemd.js';

export interface DownOptions {
  revokeKeys: boolean;
  deleteCert: boolean;
}

export interface DownPlan {
  domain: string;
  actions: string[];
  keeps: string[];
}

export function planDown(state: UpState, home: string, o: DownOptions): DownPlan {
  const unitNames = [...(state.daemon.units ?? []), ...state.renewal.units];
  const pid = state.daemon.supervisor === 'process' ? runningDaemon(home)?.pid : undefined;
  const actions = [
    `remove the nginx site "${state.site.name}" (${state.site.files.filter((f) => fs.lstatSync(f, { throwIfNoEntry: false })).join(', ') || 'already gone'}) and reload nginx`,
    state.daemon.supervisor === 'process'
      ? `stop the daemon on ${state.daemon.host}:${state.daemon.port} (${pid ? `pid ${pid}` : 'not running'}) and remove ${runFiles(home).dir}`
      : `stop, disable and remove ${unitNames.join(', ')}`,
    ...(o.revokeKeys ? [`revoke the keys up minted: ${state.keys.map((k) => `${k.name} (${k.id})`).join(', ') || 'none'}`] : []),
    ...(o.deleteCert ? [`delete the certificate "${state.lineage}" from ${path.join(home, 'certs')}`] : []),
    `remove ${stateFile(home)}`,
  ];
  const keeps = [
    ...(o.revokeKeys ? [] : [`keys ${state.keys.map((k) => k.id).join(', ') || '(none)'} stay active (--revoke-keys revokes them)`]),
    ...(o.deleteCert ? [] : [`the certificate "${state.lineage}" stays in the store (--delete-cert deletes it)`]),
  ];
  return { domain: state.domain, actions, keeps };
}

export function requireState(home: string): UpState {
  const state = readState(home);
  if (!state) throw new GuardError('GUARD_E_USAGE', `nothing was deployed with guardctl up from ${home} (no ${stateFile(home)})`, { hint: 'check --home / GUARDCTL_HOME' });
  return state;
}

export async function runDown(state: UpState, deps: { home: string; env: NodeJS.ProcessEnv; now(): number; keyStore: KeyStoreSpec; tiers: Record<string, Tier> }, o: DownOptions): Promise<string[]> {
  const done: string[] = [];
  const removed = await removeSite({ root: state.site.root, bin: state.site.nginxBin, ...(state.site.reloadCmd ? { reloadCmd: state.site.reloadCmd } : {}) }, state.site.name);
  done.push(removed.length > 0 ? `removed ${removed.join(', ')}; nginx reloaded` : 'the site was already gone');
  if (state.daemon.supervisor === 'process') {
    const pid = await stopDaemonProcess(deps.home);
    fs.rmSync(runFiles(deps.home).dir, { recursive: true, force: true });
    done.push(pid ? `stopped the daemon (pid ${pid})` : 'the daemon was not running');
  } else {
    const units = [...(state.daemon.units ?? []), ...state.renewal.units];
    await removeUnits(path.dirname(units[0]!), units.map((u) => path.basename(u)));
    done.push(`removed ${units.join(', ')}`);
  }
  if (o.revokeKeys && state.keys.length > 0) {
    const backend = await openKeyBackend(deps.keyStore, { home: deps.home, env: deps.env, now: deps.now, tiers: deps.tiers });
    try {
      for (const k of state.keys) {
        const rec = await backend.get(k.id).catch(() => undefined);
        if (rec?.status === 'active') await backend.revoke(k.id);
      }
    } finally {
      await backend.close();
    }
    done.push(`revoked ${state.keys.map((k) => k.id).join(', ')}`);
  }
  if (o.deleteCert) {
    const store = new CertStore(deps.home);
    await store.locked(state.lineage, async () => fs.rmSync(store.lineageDir(state.lineage), { recursive: true, force: true }));
    done.push(`deleted the certificate "${state.lineage}"`);
  }
  removeState(deps.home);
  done.push(`removed ${stateFile(deps.home)}`);
  return done;
}
