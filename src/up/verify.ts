/**
 * Checks the result the way a client sees it: through nginx, over HTTPS, with the new certificate checked
 * against the CA's root (the system's, or --ca-file for a private or test CA), `/readyz` 200 and one signed
 * request with a key minted by this run. `address` connects elsewhere than the domain's DNS answer (a host
 * that cannot resolve its own public name, or a test) while TLS still checks the domain's name.
 */
import fs from 'node:fs';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import net from 'node:net';
import { GuardError } from '../core/errors.js';
import { signRequest } from '../gate/sign-request.js';
import { textExchange } from './http-text.js';

export interface VerifyTarget {
  /** https://domain[:port][/base] */
  baseUrl: string;
  caFile?: string;
  address?: string;
  /** Connect from this local address (another loopback address stands for another client in tests). */
  localAddress?: string;
}

export interface VerifyCall {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  key?: { id: string; secret: string };
}

function lookupTo(address: string): LookupFunction {
  const family = net.isIP(address) || 4;
  return ((_host: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) => {
    if (opts?.all) cb(null, [{ address, family }]);
    else cb(null, address, family);
  }) as unknown as LookupFunction;
}

export function request(t: VerifyTarget, call: VerifyCall, timeoutMs = 60_000): Promise<{ status: number; body: string }> {
  const url = new URL(`${t.baseUrl}${call.path}`);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (call.body !== undefined) headers['content-type'] = 'application/json';
  if (call.key) Object.assign(headers, signRequest({ method: call.method, url: url.pathname + url.search, body: call.body, keyId: call.key.id, secret: call.key.secret, version: 2 }).headers);
  return textExchange((onResponse) => {
    const req = https.request(url, {
      method: call.method,
      headers,
      timeout: timeoutMs,
      servername: url.hostname,
      ...(t.caFile ? { ca: fs.readFileSync(t.caFile, 'utf8') } : {}),
      ...(t.address ? { lookup: lookupTo(t.address) } : {}),
      ...(t.localAddress ? { localAddress: t.localAddress } : {}),
      agent: false,
    }, onResponse);
    req.end(call.body);
    return req;
  }, timeoutMs);
}

/**
 * After a reload, nginx's old workers accept on the shared sockets until they notice their SIGQUIT, so for a
 * moment a new connection may still meet the previous configuration (the other site's certificate, no such
 * location). Such answers are asked again on a new connection, up to this bound; a lasting mismatch is reported.
 */
const OLD_WORKER_BOUND_MS = 15_000;

async function settled(t: VerifyTarget, call: VerifyCall): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + OLD_WORKER_BOUND_MS;
  for (;;) {
    try {
      const r = await request(t, call);
      if (r.status !== 404 || Date.now() > deadline) return r;
    } catch (err) {
      if (!/altnames|ECONNRESET|EPIPE|socket hang up/.test((err as Error).message) || Date.now() > deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function expect200(t: VerifyTarget, call: VerifyCall, what: string): Promise<string> {
  let r;
  try {
    r = await settled(t, call);
  } catch (err) {
    throw new GuardError('GUARD_E_NETWORK', `${what}: ${t.baseUrl}${call.path} failed: ${(err as Error).message}`, {
      hint: /certificate|self.signed|issuer/i.test((err as Error).message)
        ? 'the certificate does not chain to a root this host trusts: for a private or test CA give its root with --ca-file'
        : 'check that the domain resolves to this host and nginx listens (--verify-address connects to another address)',
      cause: err,
    });
  }
  if (r.status !== 200) throw new GuardError('GUARD_E_NETWORK', `${what}: ${t.baseUrl}${call.path} answered ${r.status}: ${r.body.slice(0, 300)}`);
  return r.body;
}

/** /readyz through nginx; then, with a key, one signed moderation (or translation when no moderation model runs). */
export async function verifyDeployment(t: VerifyTarget, key: { id: string; secret: string } | undefined, task: 'moderate' | 'translate'): Promise<string[]> {
  const checks: string[] = [];
  await expect200(t, { method: 'GET', path: '/readyz' }, 'readiness through nginx');
  checks.push(`GET ${t.baseUrl}/readyz: 200 (certificate trusted for ${new URL(t.baseUrl).hostname})`);
  if (key) {
    const call: VerifyCall = task === 'moderate'
      ? { method: 'POST', path: '/api/v1/moderate', body: JSON.stringify({ text: 'hello, how are you?' }), key }
      : { method: 'POST', path: '/api/v1/translate', body: JSON.stringify({ text: 'hello', target_lang: 'zh' }), key };
    await expect200(t, call, `a signed ${task === 'moderate' ? 'moderation' : 'translation'}`);
    checks.push(`signed POST ${t.baseUrl}${call.path} with key ${key.id}: 200`);
  }
  return checks;
}
