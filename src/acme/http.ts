/**
 * Plain GETs to the CA (its directory, ARI's renewalInfo) over node:http(s), with the same trust as
 * acme-client's requests (its https agent, which GUARDCTL_ACME_CA_CERTIFICATES configures). acme-client's own
 * HTTP client retries a refused connection for over a minute and then fails with an unhelpful TypeError; these
 * answer at once with the socket's error.
 */
import http from 'node:http';
import https from 'node:https';
import acme from 'acme-client';

export interface JsonResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

export function getJson(url: string, timeoutMs = 30_000): Promise<JsonResponse> {
  const target = new URL(url);
  const agent = target.protocol === 'https:' ? ((acme.axios.defaults.httpsAgent as https.Agent | undefined) ?? https.globalAgent) : http.globalAgent;
  const get = target.protocol === 'https:' ? https.get : http.get;
  return new Promise((resolve, reject) => {
    const req = get(target, { agent, headers: { accept: 'application/json', 'user-agent': 'guardctl' }, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (text.length > 1_000_000) req.destroy(new Error('response too large'));
      });
      res.on('end', () => {
        let body: unknown = null;
        try {
          body = text === '' ? null : JSON.parse(text);
        } catch {
          body = text;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000}s`)));
    req.on('error', reject);
  });
}
