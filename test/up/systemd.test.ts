/**
 * The systemd path's systemctl sequence, where systemd does not run as PID 1: a fake systemctl records the calls
 * and keeps each unit's active/enabled state, so install, update (a running unit is restarted, not left on its
 * old settings), a failed readiness and undo (files and state back as they were) are checked call by call.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { installUnits, waitUnitReady, type Systemctl } from '../../src/up/systemd.js';
import { tempDir } from '../helpers/cli.js';

function fakeSystemctl(state: { active: Set<string>; enabled: Set<string> }, failOn?: string) {
  const calls: string[] = [];
  const run: Systemctl = async (args) => {
    const line = args.join(' ');
    calls.push(line);
    if (failOn === line) return { code: 1, output: `Job for ${args.at(-1)} failed.` };
    const [verb, unit] = [args[0]!, args.at(-1)!];
    switch (verb) {
      case 'is-active': return state.active.has(unit) ? { code: 0, output: 'active\n' } : { code: 3, output: 'inactive\n' };
      case 'is-enabled': return state.enabled.has(unit) ? { code: 0, output: 'enabled\n' } : { code: 1, output: 'disabled\n' };
      case 'enable': state.enabled.add(unit); break;
      case 'disable': state.enabled.delete(unit); break;
      case 'restart': case 'start': state.active.add(unit); break;
      case 'stop': state.active.delete(unit); break;
      case 'daemon-reload': break;
      default: return { code: 1, output: `unknown verb ${verb}` };
    }
    return { code: 0, output: '' };
  };
  return { calls, run };
}

const UNIT = 'guardctl.service';

test('a fresh install: daemon-reload, enable, restart, ready; undo stops, disables and removes the unit', async (t) => {
  const dir = tempDir(t);
  const state = { active: new Set<string>(), enabled: new Set<string>() };
  const s = fakeSystemctl(state);
  let readyAsked = 0;
  const { undo } = await installUnits(dir, { [UNIT]: 'new\n' }, UNIT, { systemctl: s.run, ready: async () => { readyAsked++; } });
  assert.deepEqual(s.calls, [`is-active ${UNIT}`, `is-enabled ${UNIT}`, 'daemon-reload', `enable ${UNIT}`, `restart ${UNIT}`]);
  assert.equal(readyAsked, 1);
  assert.equal(fs.readFileSync(path.join(dir, UNIT), 'utf8'), 'new\n');
  s.calls.length = 0;
  await undo();
  assert.deepEqual(s.calls, [`stop ${UNIT}`, `disable ${UNIT}`, 'daemon-reload']);
  assert.equal(fs.existsSync(path.join(dir, UNIT)), false);
  assert.deepEqual([state.active.size, state.enabled.size], [0, 0]);
});

test('an update of a running, enabled unit restarts it (new settings apply); undo brings the old unit back and running', async (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, UNIT), 'old\n', { mode: 0o644 });
  const state = { active: new Set([UNIT]), enabled: new Set([UNIT]) };
  const s = fakeSystemctl(state);
  const { undo } = await installUnits(dir, { [UNIT]: 'new\n' }, UNIT, { systemctl: s.run, ready: async () => {} });
  assert.ok(s.calls.includes(`restart ${UNIT}`), s.calls.join('; '));
  assert.ok(!s.calls.some((c) => c.includes('--now')), 'enable --now leaves a running unit on its old settings');
  s.calls.length = 0;
  await undo();
  assert.deepEqual(s.calls, ['daemon-reload', `enable ${UNIT}`, `restart ${UNIT}`]);
  assert.equal(fs.readFileSync(path.join(dir, UNIT), 'utf8'), 'old\n');
  assert.ok(state.active.has(UNIT) && state.enabled.has(UNIT));
});

test('a daemon that is never ready fails the install, and the old unit comes back running', async (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, UNIT), 'old\n', { mode: 0o644 });
  const state = { active: new Set([UNIT]), enabled: new Set([UNIT]) };
  const s = fakeSystemctl(state);
  await assert.rejects(
    installUnits(dir, { [UNIT]: 'new\n' }, UNIT, { systemctl: s.run, ready: async () => { throw new Error('guardctl.service stopped before it was ready'); } }),
    /stopped before it was ready/,
  );
  assert.deepEqual(s.calls, [`is-active ${UNIT}`, `is-enabled ${UNIT}`, 'daemon-reload', `enable ${UNIT}`, `restart ${UNIT}`, 'daemon-reload', `enable ${UNIT}`, `restart ${UNIT}`]);
  assert.equal(fs.readFileSync(path.join(dir, UNIT), 'utf8'), 'old\n');
});

test('a failed restart of a unit that was stopped and disabled leaves it stopped, disabled and absent', async (t) => {
  const dir = tempDir(t);
  const state = { active: new Set<string>(), enabled: new Set<string>() };
  const s = fakeSystemctl(state, `restart ${UNIT}`);
  await assert.rejects(installUnits(dir, { [UNIT]: 'new\n' }, UNIT, { systemctl: s.run }), /systemctl restart guardctl\.service failed: Job for guardctl\.service failed\./);
  assert.deepEqual(s.calls.slice(-3), [`stop ${UNIT}`, `disable ${UNIT}`, 'daemon-reload']);
  assert.equal(fs.existsSync(path.join(dir, UNIT)), false);
  assert.equal(state.enabled.size, 0);
});

test('waitUnitReady: 200 resolves; a unit that stops (auto-restart counts as not active) fails at once with journalctl named', async () => {
  const state = { active: new Set([UNIT]), enabled: new Set<string>() };
  const s = fakeSystemctl(state);
  let answers = 0;
  await waitUnitReady(UNIT, 'http://127.0.0.1:1/readyz', async () => ({ status: ++answers < 3 ? 503 : 200 }), { systemctl: s.run, intervalMs: 1 });
  assert.equal(answers, 3);
  state.active.delete(UNIT);
  await assert.rejects(
    waitUnitReady(UNIT, 'http://127.0.0.1:1/readyz', async () => { throw new Error('ECONNREFUSED'); }, { systemctl: s.run, intervalMs: 1 }),
    (err: Error & { hint?: string }) => /guardctl\.service stopped before it was ready \(inactive\)/.test(err.message) && /journalctl -u guardctl\.service/.test(err.hint ?? ''),
  );
});
