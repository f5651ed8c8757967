/** bench/http-load.ts's thread: runs each job with its own keep-alive agent and answers with the rate. */
import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
import type { LoadJob } from './http-load.js';
import { drive, signedPost } from './setup.js';

const keys = workerData as { keyId: string; secret: string };
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

parentPort!.on('message', (job: LoadJob & { id: number }) => {
  drive(job.n, job.concurrency, (i) => signedPost(agent, job.port, keys, job.path, job.bodies[i % job.bodies.length]!)).then(
    (rate) => parentPort!.postMessage({ id: job.id, rate }),
    (err: unknown) => parentPort!.postMessage({ id: job.id, error: (err as Error).message }),
  );
});
