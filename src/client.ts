/**
 * `guardctl/client`: for JavaScript programs that call a guardctl daemon. createSigningFetch() returns a fetch that
 * signs every request with the key's secret (version 2 of docs/signing.md: method, path, query, the body's exact
 * bytes, timestamp and a fresh nonce), usable wherever a fetch is taken, such as the OpenAI client's `fetch` option.
 * The secret never leaves the process; only the signature travels.
 */
import { signRequest } from './gate/sign-request.js';

export interface SigningFetchOptions {
  /** The key id (gk_...). */
  keyId: string;
  /** The key's secret (gs_...), as printed once by `guardctl keys create`. */
  secret: string;
  /** The fetch to send with; default: the global fetch. */
  fetch?: typeof globalThis.fetch;
}

export function createSigningFetch(options: SigningFetchOptions): typeof globalThis.fetch {
  const { keyId, secret } = options;
  if (typeof keyId !== 'string' || !keyId.startsWith('gk_')) throw new TypeError('createSigningFetch: keyId must be a guardctl key id (gk_...)');
  if (typeof secret !== 'string' || !secret.startsWith('gs_')) throw new TypeError('createSigningFetch: secret must be the key\'s secret (gs_...)');
  const send = options.fetch ?? globalThis.fetch;
  return async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    // The body is read once, signed as these exact bytes, and sent as them.
    const body = request.body === null ? undefined : Buffer.from(await request.arrayBuffer());
    const headers = new Headers(request.headers);
    // A client that must send an API key (the OpenAI client) puts it here: it is no credential of ours, so it
    // does not travel, and the daemon sees the signature alone.
    headers.delete('authorization');
    const signed = signRequest({ method: request.method, url: request.url, bodyBytes: body, keyId, secret, version: 2 });
    for (const [name, value] of Object.entries(signed.headers)) headers.set(name, value);
    return send(request.url, {
      method: request.method, headers, body, signal: request.signal, redirect: request.redirect,
      ...(body !== undefined ? { duplex: 'half' } : {}),
    } as RequestInit);
  };
}
