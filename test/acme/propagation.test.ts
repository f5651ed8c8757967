import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isGuardError } from '../../src/core/errors.js';
import { parseDnsServers } from '../../src/acme/dns-query.js';
import { findAuthorities, findZone, resolveChallengeTarget, waitForTxt, type WaitForTxtOptions } from '../../src/acme/propagation.js';
import { canBind, freeLoopbackPort, startBind, type BindServer } from '../helpers/bind.js';
import { HANG_BOUND_MS } from '../helpers/wait.js';

const quiet: WaitForTxtOptions['log'] = () => {};
const via = (bind: BindServer) => [{ host: bind.address, port: bind.port }];

/**
 * A log for waitForTxt that runs `write` (once) when the wait first says it is waiting for a value: the record
 * appears while the wait is under way, whatever the machine's speed. `written` tells whether it ran.
 */
function writeWhenWaiting(lines: string[], write: () => void): { log: WaitForTxtOptions['log']; written: () => boolean } {
  let done = false;
  return {
    log: (_level, message) => {
      lines.push(message);
      if (!done && /^waiting for TXT .* lacks /.test(message)) {
        write();
        done = true;
      }
    },
    written: () => done,
  };
}

test('--dns-resolvers parsing: IPv4, IPv6, ports, lists; names and junk are refused', () => {
  assert.deepEqual(parseDnsServers('127.0.0.1:5353, 8.8.8.8'), [{ host: '127.0.0.1', port: 5353 }, { host: '8.8.8.8', port: 53 }]);
  assert.deepEqual(parseDnsServers(['[::1]:5353', '2001:db8::53']), [{ host: '::1', port: 5353 }, { host: '2001:db8::53', port: 53 }]);
  for (const bad of ['dns.google', '127.0.0.1:0', '127.0.0.1:99999', '1.2.3']) {
    assert.throws(() => parseDnsServers(bad), (err: unknown) => isGuardError(err) && err.code === 'GUARD_E_USAGE' && err.message.includes(bad));
  }
});

test('the zone, its name servers and the port: found through the resolvers, on the resolver\'s port', async (t) => {
  const bind = await startBind(t, { zones: { 'example.test': ['@ NS ns3.example.test.', 'ns3 A 127.0.0.1'] } });
  if (!bind) return;
  assert.equal(await findZone('_acme-challenge.deep.sub.example.test', via(bind)), 'example.test');
  assert.equal(await findZone('delegated.test', via(bind)), 'delegated.test');
  const auth = await findAuthorities('_acme-challenge.www.example.test', via(bind));
  assert.equal(auth.port, bind.port);
  assert.deepEqual(auth.nameservers.map((n) => [n.name, n.addresses]), [['ns1.example.test', ['127.0.0.1']], ['ns3.example.test', ['127.0.0.1']]]);
  assert.equal((await findAuthorities('_acme-challenge.example.test', via(bind), 5300)).port, 5300);
  await assert.rejects(findZone('_acme-challenge.elsewhere.invalid', via(bind)), /no zone holds _acme-challenge\.elsewhere\.invalid.*REFUSED/);
});

test('a record that appears after a delay: the wait returns once it is served', async (t) => {
  const bind = await startBind(t);
  if (!bind) return;
  const fqdn = '_acme-challenge.late.example.test';
  const lines: string[] = [];
  const writer = writeWhenWaiting(lines, () => bind.nsupdate([`update add ${fqdn} 60 TXT "late-value"`]));
  const auth = await waitForTxt({ fqdn, values: ['late-value'], resolvers: via(bind), timeoutMs: HANG_BOUND_MS, intervalMs: 150, log: writer.log });
  assert.ok(writer.written(), 'returned before the record existed');
  assert.deepEqual([auth.target, auth.zone], [fqdn, 'example.test']);
  assert.ok(lines.some((l) => l.includes(`ns1.example.test (127.0.0.1:${bind.port}) lacks "late-value"`)), lines.join('\n'));
});

test('a missing value times out naming the server and the value it lacks', async (t) => {
  const bind = await startBind(t);
  if (!bind) return;
  const fqdn = '_acme-challenge.example.test';
  bind.nsupdate([`update add ${fqdn} 60 TXT "apex-value"`]);
  const started = Date.now();
  await assert.rejects(
    waitForTxt({ fqdn, values: ['apex-value', 'wildcard-value'], resolvers: via(bind), timeoutMs: 1200, intervalMs: 200, log: quiet }),
    (err: unknown) => {
      assert.ok(isGuardError(err));
      assert.match(err.message, new RegExp(`not served by every name server of example\\.test after 1\\.2s: ns1\\.example\\.test \\(127\\.0\\.0\\.1:${bind.port}\\) lacks "wildcard-value"$`));
      assert.deepEqual((err.details?.lacking as Array<{ missing: string[] }>)[0]?.missing, ['wildcard-value']);
      return true;
    },
  );
  // It gave up at its own timeout, not at some much longer default (a loose bound: a busy machine is slow).
  assert.ok(Date.now() - started < 15_000);
  // Both values there: the same wait succeeds.
  bind.nsupdate([`update add ${fqdn} 60 TXT "wildcard-value"`]);
  await waitForTxt({ fqdn, values: ['apex-value', 'wildcard-value'], resolvers: via(bind), timeoutMs: HANG_BOUND_MS, intervalMs: 200, log: quiet });
});

test('a challenge delegated by CNAME (also chained) is followed to its target in another zone', async (t) => {
  const bind = await startBind(t, {
    zones: { 'example.test': ['_acme-challenge.chain CNAME hop.example.test.', 'hop CNAME _acme-challenge.cname.delegated.test.', 'loop1 CNAME loop2.example.test.', 'loop2 CNAME loop1.example.test.'] },
  });
  if (!bind) return;
  const target = '_acme-challenge.cname.delegated.test';
  assert.equal(await resolveChallengeTarget('_acme-challenge.cname.example.test', via(bind)), target);
  assert.equal(await resolveChallengeTarget('_acme-challenge.chain.example.test.', via(bind)), target);
  assert.equal(await resolveChallengeTarget('_acme-challenge.plain.example.test', via(bind)), '_acme-challenge.plain.example.test');
  await assert.rejects(resolveChallengeTarget('loop1.example.test', via(bind)), /CNAMEs of loop1\.example\.test loop/);
  const writer = writeWhenWaiting([], () => bind.nsupdate([`update add ${target} 60 TXT "delegated-value"`]));
  const auth = await waitForTxt({ fqdn: '_acme-challenge.cname.example.test', values: ['delegated-value'], resolvers: via(bind), timeoutMs: HANG_BOUND_MS, intervalMs: 150, log: writer.log });
  assert.ok(writer.written());
  assert.deepEqual([auth.target, auth.zone], [target, 'delegated.test']);
});

test('two authoritative servers, one lagging: the wait waits for both, and names the laggard', async (t) => {
  // Two real named on one port: ns1 on 127.0.0.1, ns2 on ::1 (named binds only addresses of an interface, so
  // not 127.0.0.2), each primary for its own copy of example.test; updates reach ns2 only when the test says so.
  if (!(await canBind('::1'))) return t.skip('no IPv6 loopback (::1) here');
  const port = await freeLoopbackPort('127.0.0.1', '::1');
  const ns2 = ['@ NS ns2.example.test.', 'ns2 AAAA ::1'];
  const first = await startBind(t, { port, zones: { 'example.test': ns2 } });
  if (!first) return;
  const second = await startBind(t, { port, address: '::1', nsAddress: '127.0.0.1', zones: { 'example.test': ns2 } });
  assert.ok(second);
  const fqdn = '_acme-challenge.example.test';
  first.nsupdate([`update add ${fqdn} 60 TXT "both"`]);
  await assert.rejects(
    waitForTxt({ fqdn, values: ['both'], resolvers: via(first), timeoutMs: 800, intervalMs: 200, log: quiet }),
    new RegExp(`ns2\\.example\\.test \\(\\[::1\\]:${port}\\) lacks "both"$`),
  );
  const lines: string[] = [];
  const writer = writeWhenWaiting(lines, () => second.nsupdate([`update add ${fqdn} 60 TXT "both"`]));
  const auth = await waitForTxt({ fqdn, values: ['both'], resolvers: via(first), timeoutMs: HANG_BOUND_MS, intervalMs: 150, log: writer.log });
  assert.ok(writer.written(), 'returned while ns2 still lacked the value');
  assert.match(lines.join('\n'), new RegExp(`^waiting for TXT .*ns2\\.example\\.test \\(\\[::1\\]:${port}\\) lacks "both"`, 'm'));
  assert.deepEqual(auth.nameservers.map((n) => n.name), ['ns1.example.test', 'ns2.example.test']);
});

test('unreachable resolvers and an aborted wait end with clear errors', async (t) => {
  const port = await freeLoopbackPort();
  await assert.rejects(
    waitForTxt({ fqdn: '_acme-challenge.example.test', values: ['v'], resolvers: [{ host: '127.0.0.1', port }], timeoutMs: 600, intervalMs: 200, log: quiet }),
    (err: unknown) => isGuardError(err) && /cannot check the propagation of TXT _acme-challenge\.example\.test after 0\.6s: .*(connection refused|timed out)/.test(err.message),
  );
  const bind = await startBind(t);
  if (!bind) return;
  // Aborted while it waits: it ends with the abort, long before its own timeout.
  const controller = new AbortController();
  const abortWhenWaiting = writeWhenWaiting([], () => controller.abort());
  const waiting = waitForTxt({ fqdn: '_acme-challenge.never.example.test', values: ['v'], resolvers: via(bind), timeoutMs: 10 * HANG_BOUND_MS, intervalMs: 100, signal: controller.signal, log: abortWhenWaiting.log });
  const hang = new Promise((_resolve, reject) => setTimeout(() => reject(new Error('the aborted wait went on')), HANG_BOUND_MS).unref());
  await assert.rejects(Promise.race([waiting, hang]), { name: 'AbortError' });
});
