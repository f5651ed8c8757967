/** One HTTP(S) exchange read as text, bounded by a timeout: what `up`'s readiness checks and verification need. */
import type { ClientRequest, IncomingMessage } from 'node:http';

export function textExchange(start: (onResponse: (res: IncomingMessage) => void) => ClientRequest, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = start((res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000}s`)));
    req.on('error', reject);
  });
}
