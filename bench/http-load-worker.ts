/**
 * bench/http-load.ts's thread: a load generator in the manner of wrk or autocannon. Each job's requests are
 * signed and laid out as HTTP/1.1 bytes before the clock starts, then written on `concurrency` keep-alive
 * sockets, one request in flight on each, with only the status line and Content-Length of each answer read.
 * On a 2-core machine the client's CPU comes out of the server's: node's http client cost about as much per
 * request as the server's whole HTTP layer, which the served rows would then be charged with.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { signRequest } from '../src/gate/sign-request.js';
import type { LoadJob } from './http-load.js';

const keys = workerData as { keyId: string; secret: string };

function requestBytes(job: LoadJob, body: string): Buffer {
  const { headers } = signRequest({ method: 'POST', url: job.path, body, keyId: keys.keyId, secret: keys.secret });
  const lines = [`POST ${job.path} HTTP/1.1`, `Host: 127.0.0.1:${job.port}`, 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

/**
 * Sends the requests `take` hands out one after another on one keep-alive connection; rejects on any answer but
 * a 200, and on a connection that ends before its last answer. A failed connection is destroyed, and `take`
 * hands the other connections nothing more once one has failed.
 */
function connection(port: number, take: () => Buffer | undefined, failed: (err: Error) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    let pending: Buffer = Buffer.alloc(0);
    let done = false;
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      failed(err);
      socket.destroy();
      reject(err);
    };
    const next = () => {
      const req = take();
      if (req) return void socket.write(req);
      done = true;
      socket.end(() => resolve());
    };
    socket.on('connect', next);
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the server closed the connection before answering')));
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      const end = pending.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = pending.subarray(0, end).toString('latin1');
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (!length) return fail(new Error(`an answer without Content-Length: ${head.split('\r\n')[0]}`));
      const total = end + 4 + Number(length[1]);
      if (pending.length < total) return;
      const status = head.slice(9, 12);
      if (status !== '200') return fail(new Error(`HTTP ${status}: ${pending.subarray(end + 4, total).toString()}`));
      pending = pending.subarray(total);
      next();
    });
  });
}

parentPort!.on('message', (job: LoadJob & { id: number }) => {
  const requests = Array.from({ length: job.n }, (_, i) => requestBytes(job, job.bodies[i % job.bodies.length]!));
  let sent = 0;
  let stopped = false;
  const take = () => (!stopped && sent < requests.length ? requests[sent++] : undefined);
  const stop = () => {
    stopped = true;
  };
  const t0 = performance.now();
  Promise.all(Array.from({ length: job.concurrency }, () => connection(job.port, take, stop))).then(
    () => parentPort!.postMessage({ id: job.id, rate: job.n / ((performance.now() - t0) / 1000) }),
    (err: unknown) => parentPort!.postMessage({ id: job.id, error: (err as Error).message }),
  );
});
