import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { GuardError } from '../../src/core/errors.js';
import { acceptedNames } from '../../src/dns/env.js';
import type { DnsProvider, ProviderContext, ProviderFactory } from '../../src/dns/types.js';

/**
 * The contract every DNS provider passes (lego's shared provider test), run against a real or fake server:
 *   await runProviderContract(t, { factory, env, secrets, zone, values, ... })
 * Each check is a subtest of t. Optional parts (nestedZone, faults, badEnv, seed) are skipped when absent, so
 * providers without an HTTP API (rfc2136, exec) run the rest.
 */
export interface ContractTarget {
  factory: ProviderFactory;
  /** A working environment: credentials and endpoint. */
  env: NodeJS.ProcessEnv;
  /** Values that must never appear in logs or in errors. */
  secrets: string[];
  /** A zone the account holds; every name used lies under it. */
  zone: string;
  /** A zone inside `zone` (b.example.com under example.com) for the "nested name finds its zone" check. */
  nestedZone?: string;
  /** The TXT values the server holds at fqdn; in `zone` only when given and the backend can tell zones apart. */
  values(fqdn: string, zone?: string): Promise<string[]> | string[];
  /** Adds a value as another client would; without it the provider itself writes the other value. */
  seed?(fqdn: string, value: string): Promise<void> | void;
  /** Fault injection of the fakes; failNext counts requests, whatever they are. */
  faults?: { failNext(count: number, status: number): void; failAdds?(count: number): void };
  /** An environment with wrong credentials that the server refuses. */
  badEnv?: NodeJS.ProcessEnv;
  /** ctx.options for every provider built (the exec provider's script). */
  options?: ProviderContext['options'];
}

const txtValue = () => crypto.randomBytes(32).toString('base64url');

export async function runProviderContract(t: TestContext, target: ContractTarget): Promise<void> {
  const name = target.factory.meta.name;
  const logs: string[] = [];
  const errors: unknown[] = [];
  let n = 0;
  const fqdn = (label: string) => `_acme-challenge.${label}-${++n}.${target.zone}`;
  const record = (name: string, value: string) => ({ fqdn: name, value, ttl: 60 });
  // Fast retries, and a known number of tries for the persistent-failure check.
  const ctxFor = (env: NodeJS.ProcessEnv, options = target.options): ProviderContext => ({
    env: { GUARDCTL_DNS_HTTP_BACKOFF_MS: '1', GUARDCTL_DNS_HTTP_TRIES: '3', ...env },
    log: (level, message) => logs.push(`${level} ${message}`),
    options,
  });
  const make = (env = target.env, options = target.options): DnsProvider => target.factory.create(ctxFor(env, options));
  const values = async (name: string, zone?: string) => [...(await target.values(name, zone))].sort();
  /** Expects a GuardError naming the provider; keeps it for the final secrets check. */
  const refused = async (run: () => Promise<unknown>, also?: RegExp): Promise<GuardError> => {
    let caught: unknown;
    try {
      await run();
    } catch (err) {
      caught = err;
    }
    errors.push(caught);
    assert.ok(caught instanceof GuardError, `expected a GuardError, got ${String(caught)}`);
    assert.equal(caught.code, 'GUARD_E_DNS_PROVIDER');
    assert.ok(caught.message.startsWith(`${name}: `), `message should start with "${name}: ": ${caught.message}`);
    assert.ok(caught.hint, 'a hint says what to do');
    if (also) assert.match(caught.message, also);
    return caught;
  };
  const provider = make();

  await t.test(`${name}: present adds the value`, async () => {
    const [at, v] = [fqdn('add'), txtValue()];
    await provider.present(record(at, v));
    assert.deepEqual(await values(at), [v]);
    await provider.cleanup(record(at, v));
    assert.deepEqual(await values(at), []);
  });

  await t.test(`${name}: a second value at the same name coexists, and cleanup removes only its own (apex + wildcard)`, async () => {
    const at = `_acme-challenge.${target.zone}`;
    const [apex, wildcard] = [txtValue(), txtValue()];
    await provider.present(record(at, apex));
    await provider.present(record(at, wildcard));
    assert.deepEqual(await values(at), [apex, wildcard].sort());
    await provider.cleanup(record(at, apex));
    assert.deepEqual(await values(at), [wildcard]);
    await provider.cleanup(record(at, wildcard));
    assert.deepEqual(await values(at), []);
  });

  await t.test(`${name}: present twice is idempotent`, async () => {
    const [at, v] = [fqdn('twice'), txtValue()];
    await provider.present(record(at, v));
    await provider.present(record(at, v));
    assert.deepEqual(await values(at), [v]);
    await provider.cleanup(record(at, v));
    assert.deepEqual(await values(at), []);
  });

  await t.test(`${name}: cleanup keeps another client's value; cleanup of an absent value is not an error`, async () => {
    const [at, theirs, mine] = [fqdn('other'), txtValue(), txtValue()];
    await provider.cleanup(record(at, mine)); // nothing there at all
    if (target.seed) await target.seed(at, theirs);
    else await provider.present(record(at, theirs));
    await provider.present(record(at, mine));
    await provider.cleanup(record(at, mine));
    await provider.cleanup(record(at, mine)); // already gone
    assert.deepEqual(await values(at), [theirs]);
    await provider.cleanup(record(at, theirs));
  });

  if (target.nestedZone) {
    const nested = target.nestedZone;
    await t.test(`${name}: a nested name is written in the most specific zone`, async () => {
      const [inNested, inParent, v] = [`_acme-challenge.a.${nested}`, `_acme-challenge.a.not-a-zone.${target.zone}`, txtValue()];
      await provider.present(record(inNested, v));
      await provider.present(record(inParent, v));
      assert.deepEqual(await values(inNested, nested), [v]);
      assert.deepEqual(await values(inNested, target.zone), []);
      assert.deepEqual(await values(inParent, target.zone), [v]);
      await provider.cleanup(record(inNested, v));
      await provider.cleanup(record(inParent, v));
      assert.deepEqual(await values(inNested), []);
    });
  }

  if (target.faults) {
    const faults = target.faults;
    await t.test(`${name}: 429 and 5xx answers are retried and the call succeeds`, async () => {
      const [at, v] = [fqdn('retry'), txtValue()];
      faults.failNext(2, 429);
      await provider.present(record(at, v));
      faults.failNext(1, 500);
      faults.failNext(1, 503);
      await provider.cleanup(record(at, v));
      assert.deepEqual(await values(at), []);
      assert.ok(logs.some((l) => l.startsWith('warn') && l.includes('retrying')), 'each retry is logged');
    });

    await t.test(`${name}: a persistent failure gives a clear error naming the provider, the action and the status`, async () => {
      faults.failNext(3, 503);
      const err = await refused(() => make().present(record(fqdn('down'), txtValue())), /failed after 3 tries: HTTP 503/);
      assert.equal(err.details?.status, 503);
    });

    if (faults.failAdds) {
      const failAdds = faults.failAdds;
      await t.test(`${name}: a refused add is reported, not retried, and leaves nothing behind`, async () => {
        const [at, v] = [fqdn('refused'), txtValue()];
        failAdds(1);
        await refused(() => provider.present(record(at, v)), /add/);
        assert.deepEqual(await values(at), []);
      });
    }
  }

  if (target.badEnv) {
    const badEnv = target.badEnv;
    await t.test(`${name}: wrong credentials give a clear error`, async () => {
      await refused(() => make(badEnv).present(record(fqdn('bad'), txtValue())));
    });
  }

  const required = target.factory.meta.env.filter((v) => v.required);
  if (required.length) {
    await t.test(`${name}: missing settings give an error naming every accepted variable`, async () => {
      const names = new Set(target.factory.meta.env.flatMap((v) => [...acceptedNames(v), `${v.name}_FILE`]));
      const env = Object.fromEntries(Object.entries(target.env).filter(([k]) => !names.has(k)));
      const err = await refused(async () => make(env, {}).present(record(fqdn('nocreds'), txtValue())));
      for (const v of required) for (const accepted of acceptedNames(v)) assert.ok(err.message.includes(accepted), `${accepted} missing from: ${err.message}`);
    });
  }

  const secretVars = target.factory.meta.env.filter((v) => v.secret && acceptedNames(v).some((k) => target.env[k]));
  if (secretVars.length) {
    await t.test(`${name}: every secret can come from NAME_FILE (trimmed)`, async (tt) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-dns-'));
      tt.after(() => fs.rmSync(dir, { recursive: true, force: true }));
      const env: NodeJS.ProcessEnv = { ...target.env };
      for (const v of secretVars) {
        const key = acceptedNames(v).find((k) => target.env[k])!;
        const file = path.join(dir, v.name);
        fs.writeFileSync(file, `${target.env[key]}\n`, { mode: 0o600 });
        for (const k of acceptedNames(v)) delete env[k];
        env[`${v.name}_FILE`] = file;
      }
      const [at, v] = [fqdn('file'), txtValue()];
      const p = make(env);
      await p.present(record(at, v));
      assert.deepEqual(await values(at), [v]);
      await p.cleanup(record(at, v));
      await refused(() => make({ ...env, [`${secretVars[0]!.name}_FILE`]: path.join(dir, 'missing') }).present(record(at, v)), /_FILE/);
    });
  }

  await t.test(`${name}: secrets never appear in logs or errors`, () => {
    assert.ok(logs.length > 0, 'the provider logs what it does');
    const text = [...logs, ...errors.flatMap((e) => (e instanceof GuardError ? [e.message, e.hint ?? '', JSON.stringify(e.details ?? {})] : [String(e)]))].join('\n');
    for (const secret of target.secrets) assert.ok(!text.includes(secret), `a secret leaked into logs or errors:\n${text}`);
  });
}
