/**
 * `guardctl up`: gathers what is installed, builds the plan, then runs the steps (certificate -> daemon -> nginx
 * site -> renewal -> keys -> verify -> record) through runSteps, which undoes them in reverse order on failure.
 * Every step calls the module that owns the work (acme, nginx, keys, systemd units); nothing here issues,
 * renders or stores anything itself.
 */
import fs from 'node:fs';
import path from 'node:path';
import { issueCertificate } from '../acme/issue.js';
import { isPlaceholder } from '../acme/placeholder-flag.js';
import type { LifecycleDeps } from '../acme/obtain.js';
import { CertStore } from '../acme/store.js';
import { GuardError, isGuardError } from '../core/errors.js';
import { keyStoreExists, openKeyBackend, type KeyBackend, type KeyStoreSpec } from '../keys/backend.js';
import type { Tier } from '../keys/types.js';
import type { SiteOptions } from '../nginx/render.js';
import { runSteps, type Progress, type Step, type StepOutcome, type StepReport } from './apply.js';
import { httpGet, runFiles, runningDaemon, startDaemonProcess, stopDaemonProcess } from './daemon.js';
import type { UpOptions } from './options.js';
import { buildPlan, reloadHook, servedTask, type Facts, type Plan } from './plan.js';
import { installWithUndo, servesWebroot, siteDiff, siteFiles, siteOptionsFor } from './site.js';
import { installTargets } from '../nginx/install.js';
import { readState, stateFile, writeState, type UpState } from './state.js';
import { installUnits, unitActive, unitsFor, waitUnitReady, type Systemctl } from './systemd.js';
import { verifyDeployment } from './verify.js';
import type { SystemdInputs } from '../systemd/units.js';

export interface UpDeps {
  home: string;
  env: NodeJS.ProcessEnv;
  now(): number;
  lifecycle: LifecycleDeps;
  keyStore: KeyStoreSpec;
  tiers: Record<string, Tier>;
  progress: Progress;
  /** systemctl for the systemd path (tests pass one that records calls); default the real one. */
  systemctl?: Systemctl;
}

export interface UpResult {
  plan: Plan;
  dryRun: boolean;
  changed: boolean;
  steps: StepReport[];
  /** New keys, with their secrets (shown once). */
  keys: Array<{ id: string; name: string; tier: string; secret: string }>;
  verified: string[];
  url: string;
  /** What the deployment serves: the call `up` suggests. */
  task: 'moderate' | 'translate';
}

interface Prepared {
  plan: Plan;
  facts: Facts;
  site: SiteOptions;
  bootstrap: SiteOptions;
  state?: UpState;
}

/** The units' inputs for this deployment: the daemon with up's serve arguments, renewal twice a day. */
export function unitInputs(o: UpOptions, home: string): SystemdInputs {
  return { bin: o.bin, home, envFile: o.envFile, rwPaths: [o.webroot], serveArgs: o.serveArgs, onCalendar: '*-*-* 00,12:00:00', randomizedDelaySec: '12h' };
}

function unitDiffers(dir: string, units: Record<string, string>): boolean {
  return Object.entries(units).some(([n, text]) => {
    try {
      return fs.readFileSync(path.join(dir, n), 'utf8') !== text;
    } catch {
      return true;
    }
  });
}

async function withKeys<T>(deps: UpDeps, fn: (store: KeyBackend) => Promise<T>): Promise<T> {
  const store = await openKeyBackend(deps.keyStore, { home: deps.home, env: deps.env, now: deps.now, tiers: deps.tiers });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function gather(o: UpOptions, deps: UpDeps): Promise<Prepared> {
  const state = readState(deps.home);
  if (state && state.domain !== o.domain) {
    throw new GuardError('GUARD_E_USAGE', `${deps.home} already runs ${state.domain} (${stateFile(deps.home)})`, {
      hint: `run guardctl down for ${state.domain} first, or give this domain its own data directory (--home / GUARDCTL_HOME)`,
    });
  }
  const store = new CertStore(deps.home);
  const meta = store.exists(o.lineage) ? store.readMeta(o.lineage) : undefined;
  const site = await siteOptionsFor(o, deps.home, false);
  const bootstrap = { ...site, bootstrap: true, certFile: undefined, keyFile: undefined, trustedCertFile: undefined };
  const t = installTargets(o.nginx.root, o.siteName);
  const daemon = o.supervisor === 'process' ? runningDaemon(deps.home) : undefined;
  const running = o.supervisor === 'systemd' ? await unitActive('guardctl.service', deps.systemctl) : daemon !== undefined;
  const keys = keyStoreExists(deps.keyStore, deps.home)
    ? (await withKeys(deps, (s) => s.list())).filter((k) => k.status === 'active').map((k) => ({ id: k.id, name: k.name, tier: k.tier }))
    : [];
  const units = unitsFor(unitInputs(o, deps.home), ['guardctl.service', 'guardctl-renew.service', 'guardctl-renew.timer']);
  const facts: Facts = {
    now: deps.now(),
    ...(meta ? { lineage: { names: meta.names, notAfter: meta.cert.notAfter, revoked: Boolean(meta.revokedAt), provider: meta.dns.provider, placeholder: isPlaceholder(meta), ...(meta.deploy?.reloadCmd ? { reloadCmd: meta.deploy.reloadCmd } : {}) } } : {}),
    site: { installed: fs.existsSync(t.siteFile), diff: await siteDiff(o.nginx.root, site), servesWebroot: servesWebroot(t, o.webroot), files: siteFiles(t, site) },
    daemon: { running, ...(daemon ? { pid: daemon.pid } : {}), ...(state && running ? { args: state.daemon.serveArgs } : {}) },
    keys,
    unitsDiffer: {
      daemon: unitDiffers(o.unitDir, { 'guardctl.service': units['guardctl.service']! }),
      timer: unitDiffers(o.unitDir, { 'guardctl-renew.service': units['guardctl-renew.service']!, 'guardctl-renew.timer': units['guardctl-renew.timer']! }),
    },
  };
  return { plan: buildPlan(o, deps.home, facts), facts, site, bootstrap, ...(state ? { state } : {}) };
}

export async function planUp(o: UpOptions, deps: UpDeps): Promise<Plan> {
  return (await gather(o, deps)).plan;
}

const unchanged = (summary: string): StepOutcome => ({ summary, changed: false });

/**
 * What a failed run created in the data directory (the daemon's state and audit files, a key store made for its
 * keys, the webroot): removed after the undos, so the directory is as it was. The certificate store and the CA
 * account (acme/) stay: a certificate already obtained is kept.
 */
function newEntriesCleaner(home: string, webroot: string): (alsoKeep?: string[]) => void {
  const before = new Set(fs.existsSync(home) ? fs.readdirSync(home) : []);
  const webrootExisted = fs.existsSync(webroot);
  return (alsoKeep: string[] = []) => {
    const keep = new Set(['certs', 'acme', ...alsoKeep]);
    if (fs.existsSync(home)) for (const n of fs.readdirSync(home)) if (!before.has(n) && !keep.has(n)) fs.rmSync(path.join(home, n), { recursive: true, force: true });
    if (!webrootExisted) fs.rmSync(webroot, { recursive: true, force: true });
  };
}

function steps(o: UpOptions, deps: UpDeps, p: Prepared, minted: UpResult['keys'], verified: string[], daemonLeftover: { value: boolean }): Step[] {
  const action = (id: string) => p.plan.steps.find((s) => s.id === id)?.action ?? 'unchanged';
  const nginx = { root: o.nginx.root, bin: o.nginx.bin, ...(o.nginx.reloadCmd ? { reloadCmd: o.nginx.reloadCmd } : {}) };
  const list: Step[] = [];
  const stepOf = (id: string) => p.plan.steps.find((s) => s.id === id)!;

  if (p.plan.steps.some((s) => s.id === 'bootstrap')) {
    list.push({ id: 'bootstrap', title: stepOf('bootstrap').title, run: async () => {
      const { result, undo } = await installWithUndo(nginx, p.bootstrap);
      return { summary: `installed ${result.siteFile} (HTTP only, serves ${o.webroot})`, changed: result.changed, undo };
    } });
  }
  list.push({ id: 'cert', title: stepOf('cert').title, run: async () => {
    if (action('cert') === 'unchanged') return unchanged('reused the stored certificate');
    if (o.http) fs.mkdirSync(o.webroot, { recursive: true, mode: 0o755 });
    const r = await issueCertificate(o.issue, deps.lifecycle);
    // No undo: a certificate already obtained is kept, since issuing it again costs rate limit.
    return { summary: `issued ${r.meta.cert.serial}, valid until ${r.meta.cert.notAfter}`, changed: true };
  } });
  // Keys before the daemon: it refuses to start on a key store without an active key.
  list.push({ id: 'keys', title: 'API keys', run: async () => {
    const toMint = o.keys.filter((k) => !p.facts.keys.some((e) => e.name === k.name && e.tier === k.tier));
    if (toMint.length === 0) return unchanged(`kept ${o.keys.map((k) => k.name).join(', ')}`);
    const made = await withKeys(deps, async (s) => {
      const out: UpResult['keys'] = [];
      try {
        for (const k of toMint) {
          const { record, secret } = await s.create({ name: k.name, tier: k.tier });
          out.push({ id: record.id, name: record.name, tier: record.tier, secret });
        }
      } catch (err) {
        for (const k of out) await s.revoke(k.id).catch(() => {});
        throw err;
      }
      return out;
    });
    minted.push(...made);
    return { summary: `minted ${made.map((k) => `${k.name} (${k.id})`).join(', ')}`, changed: true, undo: async () => {
      await withKeys(deps, async (s) => {
        for (const k of made) await s.revoke(k.id);
      });
    } };
  } });
  list.push({ id: 'daemon', title: stepOf('daemon').title, run: async () => {
    if (action('daemon') === 'unchanged') return unchanged('already running with these settings');
    if (o.supervisor === 'systemd') {
      const units = unitsFor(unitInputs(o, deps.home), ['guardctl.service']);
      // Type=exec counts the unit started once the process runs: a daemon that cannot bind fails here, not later.
      const ready = () => waitUnitReady('guardctl.service', `http://${o.daemon.host}:${o.daemon.port}${o.basePath}/readyz`, httpGet, { systemctl: deps.systemctl });
      const { undo } = await installUnits(o.unitDir, units, 'guardctl.service', { systemctl: deps.systemctl, ready });
      return { summary: `guardctl.service enabled and started (${o.supervisorWhy})`, changed: true, undo };
    }
    const old = action('daemon') === 'update' ? p.state?.daemon : undefined;
    if (old) await stopDaemonProcess(deps.home);
    const start = (d: { host: string; port: number; basePath: string; serveArgs: string[] }) =>
      startDaemonProcess({ home: deps.home, host: d.host, port: d.port, basePath: d.basePath, serveArgs: d.serveArgs, env: deps.env });
    // The previous daemon comes back with its own settings, so readiness is polled on its address, not the new one.
    const restoreOld = async () => {
      if (old) await start(old);
    };
    try {
      const d = await start({ ...o.daemon, basePath: o.basePath, serveArgs: o.serveArgs });
      return { summary: `pid ${d.pid} ready (pid file ${d.pidFile}, log ${d.logFile})`, changed: true, undo: async () => {
        try {
          await stopDaemonProcess(deps.home);
          await restoreOld();
        } catch (err) {
          daemonLeftover.value = true;
          throw err;
        }
      } };
    } catch (err) {
      try {
        await restoreOld();
      } catch (restoreErr) {
        daemonLeftover.value = true;
        throw new GuardError('GUARD_E_DAEMON', `${(err as Error).message}, and could not restore the previous daemon: ${(restoreErr as Error).message}`, {
          hint: isGuardError(err) ? err.hint : undefined, cause: err,
        });
      }
      throw err;
    }
  } });
  list.push({ id: 'site', title: stepOf('site').title, run: async () => {
    const { result, undo } = await installWithUndo(nginx, p.site);
    if (!result.changed) return unchanged('already installed as rendered');
    return { summary: `installed ${result.siteFile}; nginx -t passed, reloaded${result.reloadVerified ? ' (new workers confirmed)' : ''}`, changed: true, undo };
  } });
  list.push({ id: 'renewal', title: 'renewal', run: async () => {
    const store = new CertStore(deps.home);
    const meta = store.readMeta(o.lineage);
    const hook = reloadHook(o);
    let undoUnits: (() => Promise<void>) | undefined;
    if (o.supervisor === 'systemd' && p.facts.unitsDiffer.timer) {
      undoUnits = (await installUnits(o.unitDir, unitsFor(unitInputs(o, deps.home), ['guardctl-renew.service', 'guardctl-renew.timer']), 'guardctl-renew.timer', { systemctl: deps.systemctl })).undo;
    }
    if (meta.deploy?.reloadCmd === hook && !undoUnits) return unchanged(`reload hook already set (${hook})`);
    // deployedSerial: nginx reads the store's files, so the current certificate needs no deploy run of its own.
    if (meta.deploy?.reloadCmd !== hook) store.writeMeta(o.lineage, { ...meta, deploy: { ...meta.deploy, reloadCmd: hook }, deployedSerial: meta.cert.serial });
    return { summary: `reload hook: ${hook}${undoUnits ? '; guardctl-renew.timer enabled' : ''}`, changed: true, undo: async () => {
      store.writeMeta(o.lineage, meta);
      await undoUnits?.();
    } };
  } });
  list.push({ id: 'verify', title: `verify ${p.plan.url} through nginx`, run: async () => {
    const task = servedTask(o);
    const key = minted[0];
    verified.push(...await verifyDeployment({ baseUrl: p.plan.url, ...o.verify }, key ? { id: key.id, secret: key.secret } : undefined, task));
    return unchanged(key ? 'readyz 200 and a signed request answered' : 'readyz 200 (no new key to sign with)');
  } });
  list.push({ id: 'record', title: 'record what was installed', run: async () => {
    if (!p.plan.changes && p.state) return unchanged(`${stateFile(deps.home)} already describes it`);
    const previous = p.state;
    const keys = [...(p.state?.keys ?? []).filter((k) => p.facts.keys.some((e) => e.id === k.id)), ...minted.map(({ id, name, tier }) => ({ id, name, tier }))];
    const t = installTargets(o.nginx.root, o.siteName);
    const state: UpState = {
      version: 1,
      domain: o.domain,
      lineage: o.lineage,
      challenge: o.http ? 'http-01' : 'dns-01',
      site: { root: o.nginx.root, name: o.siteName, options: p.site, files: siteFiles(t, p.site).map((f) => f.path), nginxBin: o.nginx.bin, ...(o.nginx.reloadCmd ? { reloadCmd: o.nginx.reloadCmd } : {}) },
      daemon: { supervisor: o.supervisor, host: o.daemon.host, port: o.daemon.port, basePath: o.basePath, serveArgs: o.serveArgs,
        ...(o.supervisor === 'process' ? { pidFile: runFiles(deps.home).pidFile, logFile: runFiles(deps.home).logFile } : { units: [path.join(o.unitDir, 'guardctl.service')] }) },
      renewal: { units: o.supervisor === 'systemd' ? ['guardctl-renew.service', 'guardctl-renew.timer'].map((n) => path.join(o.unitDir, n)) : [], reloadCmd: reloadHook(o) },
      keys,
      url: p.plan.url,
      updatedAt: new Date(deps.now()).toISOString(),
    };
    writeState(deps.home, state);
    return { summary: stateFile(deps.home), changed: true, undo: async () => {
      if (previous) writeState(deps.home, previous);
      else fs.rmSync(stateFile(deps.home), { force: true });
    } };
  } });
  return list;
}

export async function runUp(o: UpOptions, deps: UpDeps, opts: { dryRun?: boolean; onPlan?: (plan: Plan) => void }): Promise<UpResult> {
  const prepared = await gather(o, deps);
  opts.onPlan?.(prepared.plan);
  const base = { plan: prepared.plan, url: prepared.plan.url, task: servedTask(o), keys: [], verified: [] };
  if (opts.dryRun) return { ...base, dryRun: true, changed: false, steps: [] };
  const minted: UpResult['keys'] = [];
  const verified: string[] = [];
  const cleanNew = newEntriesCleaner(deps.home, o.webroot);
  const daemonLeftover = { value: false };
  let reports: StepReport[];
  try {
    reports = await runSteps(steps(o, deps, prepared, minted, verified, daemonLeftover), deps.progress);
  } catch (err) {
    // A daemon that could not be stopped or restored keeps its pid file: down and the next up find it there.
    cleanNew(daemonLeftover.value ? ['run'] : []);
    throw err;
  }
  return { ...base, dryRun: false, changed: reports.some((r) => r.changed), steps: reports, keys: minted, verified };
}

