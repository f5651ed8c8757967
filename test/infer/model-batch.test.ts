import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FromWorker, WorkItem } from '../../src/infer/protocol.js';
import type { Kv, Runner } from '../../src/infer/runner.js';
import { ModelBatch } from '../../src/infer/model-batch.js';
import { Scheduler } from '../../src/infer/scheduler.js';
import { HANG_BOUND_MS, waitFor } from '../helpers/wait.js';

/**
 * The scheduler and ModelBatch over a scripted runner (no ONNX Runtime): every token is 1 (never EOS), and merging
 * KV caches fails the way a large allocation does. Every request the worker takes must be answered exactly once.
 */
function scriptedRunner(): Runner {
  const kv = (rows: number, lens: number[]): Kv => ({ rows, length: Math.max(0, ...lens), lens, mask: new Uint8Array(0), tensors: [] });
  const logits = (rows: number) => Array.from({ length: rows }, () => Float32Array.from([0, 5, 0]));
  return {
    gpu: false,
    device: 'cpu',
    async prefill(prompts: readonly (readonly number[])[]) {
      return { logits: logits(prompts.length), ms: 1, runs: [{ ms: 1, tokens: 1 }], kv: kv(prompts.length, prompts.map((p) => p.length)) };
    },
    async decode(state: Kv) {
      await new Promise((r) => setTimeout(r, 2));
      return { logits: logits(state.rows), ms: 1, kv: kv(state.rows, state.lens.map((l) => l + 1)) };
    },
    async extend(state: Kv, tokens: readonly (readonly number[])[]) {
      return { logits: logits(state.rows), ms: 1, kv: kv(state.rows, state.lens.map((l) => l + tokens[0]!.length)) };
    },
    merge(): Kv {
      throw new RangeError('Array buffer allocation failed');
    },
    select(state: Kv, rows: readonly number[]) {
      return kv(rows.length, rows.map((r) => state.lens[r]!));
    },
    dispose() {},
    bytesOf: () => 0,
    gpuTensors: 0,
    async release() {},
  } as unknown as Runner;
}

const item = (id: number, maxNewTokens: number): WorkItem => ({ id, model: 'm', kind: 'generate', ids: [5, 6, 7], maxNewTokens, submittedAt: Date.now() });

test('a failed KV merge on admission answers the joining request and keeps the running batch', async () => {
  const answers = new Map<number, FromWorker[]>();
  let scheduler!: Scheduler;
  let joined = false;
  scheduler = new Scheduler({ maxBatch: 8, maxWaitMs: 0, continuousAdmission: true }, (msg) => {
    if (msg.type === 'done' || msg.type === 'failed') answers.set(msg.id, [...(answers.get(msg.id) ?? []), msg]);
    // The second request arrives while the first one decodes: it is prefilled, then merged (which fails).
    if (msg.type === 'step' && msg.event.kind === 'decode' && !joined) {
      joined = true;
      scheduler.submit(item(2, 4));
    }
  });
  scheduler.addModel('m', scriptedRunner(), [2], 0);
  scheduler.submit(item(1, 20));
  await waitFor(() => answers.size === 2, () => `both requests to be answered (answered: ${[...answers.keys()].join(', ') || 'none'})`, HANG_BOUND_MS, 5);
  await scheduler.close();
  assert.deepEqual([...answers.keys()].sort(), [1, 2], 'every request is answered');
  const [second] = answers.get(2)!;
  assert.equal(second!.type, 'failed');
  assert.equal((second as { code: string }).code, 'engine_failed');
  // The batch that was already running is not collateral damage.
  const [first] = answers.get(1)!;
  assert.equal(first!.type, 'done', JSON.stringify(first));
  assert.ok([...answers.values()].every((a) => a.length === 1), 'answered once');
});

test('WebGPU-style batches: a finished row rides along at a fixed position; live rows advance', async () => {
  const fed: number[][] = [];
  const runner = scriptedRunner();
  const decode = runner.decode.bind(runner);
  runner.decode = (async (state: Kv, tokens: readonly number[], positions: readonly number[] = state.lens) => {
    fed.push([...positions]);
    return decode(state, tokens);
  }) as Runner['decode'];
  const answers: FromWorker[] = [];
  const batch = new ModelBatch('m', runner, [2], 0, (msg) => void answers.push(msg), false);
  // Prompts of 3 tokens; the first stops after 2 new tokens, the second after 6.
  await batch.admit([item(1, 2), item(2, 6)]);
  while (batch.running) await batch.decode();
  assert.deepEqual(answers.filter((m) => m.type === 'done').map((m) => m.id), [1, 2]);
  // Prefill gave each row its first token at position 3 (lens 3); row 1's second token came from the decode at
  // position 3, then it finished and is fed position 4 from then on; row 2 goes 3, 4, 5, 6, 7.
  assert.deepEqual(fed, [[3, 3], [4, 4], [4, 5], [4, 6], [4, 7]]);
});

test('a lone request on an idle device is prefilled at once: a batching window of ten hang bounds never holds it', async () => {
  const events: string[] = [];
  const scheduler = new Scheduler({ maxBatch: 8, maxWaitMs: 10 * HANG_BOUND_MS, continuousAdmission: true }, (msg) => {
    if (msg.type === 'step') events.push(msg.event.kind);
    else if (msg.type === 'admitted' || msg.type === 'done') events.push(msg.type);
  });
  scheduler.addModel('m', scriptedRunner(), [2], 0);
  // Before, the lone request waited out maxWaitMs: nothing happened until it passed.
  scheduler.submit(item(1, 2));
  try {
    await waitFor(() => events.includes('done'), () => `the lone request to be answered (events: ${events.join(', ') || 'none'})`);
  } finally {
    await scheduler.close();
  }
  assert.deepEqual(events, ['admitted', 'prefill', 'decode', 'done']);
});

test('an idle device reads its inbox again while each pass brings more: requests that arrive a pass apart share the first prefill, and a steady stream cannot hold it back', async () => {
  for (const [stream, expected] of [[2, 3], [40, 9]] as const) {
    const prefills: number[] = [];
    const answered = new Set<number>();
    const scheduler = new Scheduler({ maxBatch: 64, maxWaitMs: 10 * HANG_BOUND_MS, continuousAdmission: false }, (msg) => {
      if (msg.type === 'step' && msg.event.kind === 'prefill') prefills.push(msg.event.batchSize);
      if (msg.type === 'done') answered.add(msg.id);
    });
    scheduler.addModel('m', scriptedRunner(), [2], 0);
    // Request 1 now, then one more in each of the next `stream` passes of the event loop (as messages sent in one
    // burst reach a worker's inbox a few microseconds apart).
    let next = 2;
    const more = () => {
      if (next > stream + 1) return;
      scheduler.submit(item(next++, 1));
      setImmediate(more);
    };
    setImmediate(more);
    scheduler.submit(item(1, 1));
    try {
      await waitFor(() => answered.size === stream + 1, () => `every request to be answered (${answered.size} of ${stream + 1})`);
    } finally {
      await scheduler.close();
    }
    // Before, the first pass started a prefill of what it had: requests 1 and 2. Now the inbox is read again while
    // a pass brought more, up to 8 passes: 3 requests, or 9 of a stream that goes on.
    assert.equal(prefills[0], expected, `first prefill of ${stream + 1} requests arriving a pass apart: ${prefills.join('+')}`);
  }
});

test('a score that continues keeps its prefill: fed its continuation, then decodes; one that stops is answered by the prefill', async (t) => {
  for (const reshapes of [false, true]) await t.test(reshapes ? 'CPU: the continuation in one run' : 'WebGPU-style: one token per step', () => continuedScore(reshapes));
});

async function continuedScore(reshapes: boolean): Promise<void> {
  const fed: number[][] = [];
  const runner = scriptedRunner();
  const decode = runner.decode.bind(runner);
  let prefills = 0;
  const prefill = runner.prefill.bind(runner);
  runner.prefill = ((prompts: readonly (readonly number[])[], keepKv: boolean) => (prefills++, prefill(prompts, keepKv))) as Runner['prefill'];
  runner.decode = (async (state: Kv, tokens: readonly number[]) => {
    fed.push([...tokens]);
    return decode(state, tokens);
  }) as Runner['decode'];
  const answers: FromWorker[] = [];
  const extended: number[][][] = [];
  const extend = runner.extend.bind(runner);
  runner.extend = (async (state: Kv, tokens: readonly (readonly number[])[]) => {
    extended.push(tokens.map((t) => [...t]));
    return extend(state, tokens);
  }) as Runner['extend'];
  const batch = new ModelBatch('m', runner, [2], 0, (msg) => void answers.push(msg), reshapes);
  // The scripted logits favour id 1: candidate [0, 1, 2] index 1 wins. Row 7 continues with [40, 41, 42]; row 8's
  // winner has no continuation.
  const score = (id: number, continuations: (number[] | null)[]): WorkItem => ({ ...item(id, 3), kind: 'score', candidateIds: [0, 1, 2], continuations });
  await batch.admit([score(7, [null, [40, 41, 42], null]), score(8, [[9], null, [9]])]);
  while (batch.running) await batch.decode();
  assert.equal(prefills, 1);
  const done = answers.filter((m) => m.type === 'done') as Array<Extract<FromWorker, { type: 'done' }>>;
  assert.deepEqual(done.map((m) => m.id), [8, 7]);
  assert.deepEqual(done[0]!.result, { kind: 'score', probabilities: done[0]!.result.kind === 'score' ? done[0]!.result.probabilities : [] });
  const continued = done[1]!.result;
  assert.equal(continued.kind, 'score');
  assert.deepEqual(continued.kind === 'score' && continued.continued, { tokens: [1, 1, 1], finish: 'length' });
  if (reshapes) {
    // Row 8 left after the prefill; row 7 was fed 40, 41, 42 in one run, then its own tokens.
    assert.deepEqual(extended, [[[40, 41, 42]]]);
    assert.deepEqual(fed, [[1], [1]]);
  } else {
    // Row 8 rides along (fed padding); row 7 is fed 40, 41, 42 one step each, then its own tokens.
    assert.deepEqual(extended, []);
    assert.deepEqual(fed, [[40, 0], [41, 0], [42, 0], [1, 0], [1, 0]]);
  }
}

test('CPU: finished rows ride along until they are a quarter of the batch, then leave in one copy', async () => {
  const decodes: number[] = [];
  let selects = 0;
  const runner = scriptedRunner();
  const select = runner.select.bind(runner);
  runner.select = ((state: Kv, rows: readonly number[]) => (selects++, select(state, rows))) as Runner['select'];
  const answered = new Set<number>();
  const scheduler = new Scheduler({ maxBatch: 8, maxWaitMs: 0, continuousAdmission: true, batchWait: 'always' }, (msg) => {
    if (msg.type === 'step' && msg.event.kind === 'decode') decodes.push(msg.event.batchSize);
    if (msg.type === 'done') answered.add(msg.id);
  });
  scheduler.addModel('m', runner, [2], 0);
  // Eight rows that finish one per step (the prefill gives each its first token).
  for (let id = 1; id <= 8; id++) scheduler.submit(item(id, id + 1));
  try {
    await waitFor(() => answered.size === 8, () => `every request to be answered (${answered.size} of 8)`);
  } finally {
    await scheduler.close();
  }
  // Each step answers one row. Two finished rows are a quarter of 8: they leave together (8 -> 6); then one of 6
  // is not a quarter, two are (6 -> 4); one of 4 is (4 -> 3 -> 2 -> 1). Dropping each as it finished took 7 copies.
  assert.deepEqual(decodes, [8, 8, 6, 6, 4, 3, 2, 1]);
  assert.equal(selects, 5);
});

test('an idle device waits for the requests the first one announced, and no longer than its bound for those that never come', async () => {
  for (const [bound, followersCome, expected] of [[10 * HANG_BOUND_MS, true, 3], [1, false, 1]] as const) {
    const prefills: number[] = [];
    const answered = new Set<number>();
    const scheduler = new Scheduler({ maxBatch: 64, maxWaitMs: 10 * HANG_BOUND_MS, continuousAdmission: false, announcedWaitMs: bound }, (msg) => {
      if (msg.type === 'step' && msg.event.kind === 'prefill') prefills.push(msg.event.batchSize);
      if (msg.type === 'done') answered.add(msg.id);
    });
    scheduler.addModel('m', scriptedRunner(), [2], 0);
    // Request 1 says two more are on their way (the engine was tokenizing them); they come 20 passes of the event
    // loop later, well after the inbox has stopped bringing anything.
    scheduler.submit({ ...item(1, 1), following: 2 });
    let passes = 0;
    const later = () => {
      if (++passes < 20) return void setImmediate(later);
      scheduler.submit({ ...item(2, 1), following: 1 });
      scheduler.submit(item(3, 1));
    };
    if (followersCome) setImmediate(later);
    const all = followersCome ? 3 : 1;
    try {
      await waitFor(() => answered.size === all, () => `every request to be answered (${answered.size} of ${all})`);
    } finally {
      await scheduler.close();
    }
    assert.equal(prefills[0], expected, `first prefill: ${prefills.join('+')}`);
  }
});

test('a request that arrives while the device runs, after an announced wait ran out, does not start a second pump beside the first', async () => {
  // The bug: the announced wait's wake-up outlived its timer, so the next submission called it during the first
  // pump's step and started another pump, which ran the batch's next step beside the first: a decode and a prefill
  // on one batch at once, rows and KV cache out of step ("decode failed: Cannot read properties of undefined",
  // seen under bench:serve's HTTP load).
  let inFlight = 0;
  let most = 0;
  let submitted = false;
  const runner = scriptedRunner();
  const base = { prefill: runner.prefill.bind(runner), decode: runner.decode.bind(runner) };
  const kv = (rows: number, lens: number[]): Kv => ({ rows, length: Math.max(0, ...lens), lens, mask: new Uint8Array(0), tensors: [] });
  const tracked = <A extends unknown[], R>(call: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
    most = Math.max(most, ++inFlight);
    try {
      return await call(...args);
    } finally {
      inFlight--;
    }
  };
  Object.assign(runner, {
    prefill: tracked(base.prefill),
    decode: tracked(async (state: Kv, tokens: readonly number[]) => {
      if (!submitted) {
        submitted = true;
        scheduler.submit(item(2, 2));
      }
      return base.decode(state, tokens);
    }),
    merge: (a: Kv, b: Kv) => kv(a.rows + b.rows, [...a.lens, ...b.lens]),
  });
  const answered = new Map<number, string>();
  // The bound must outlast the first look at the inbox (one event-loop pass), so that its timer is what starts the
  // device: 50 ms is ample there, and a pass that took longer would only leave the bug unexercised, never fail.
  const scheduler = new Scheduler({ maxBatch: 8, maxWaitMs: 0, continuousAdmission: true, announcedWaitMs: 50 }, (msg) => {
    if (msg.type === 'done') answered.set(msg.id, 'done');
    if (msg.type === 'failed') answered.set(msg.id, msg.message);
  });
  scheduler.addModel('m', runner, [2], 0);
  // Announces a follower that never comes: the device starts once the bound has passed.
  scheduler.submit({ ...item(1, 4), following: 1 });
  try {
    await waitFor(() => answered.size === 2, () => `both requests to be answered (${[...answered.keys()]})`);
  } finally {
    await scheduler.close();
  }
  assert.deepEqual([...answered].sort(), [[1, 'done'], [2, 'done']]);
  assert.equal(most, 1, 'runs on one batch at once');
});

test('streamed rows of one step share one tokens message, each token after its row\'s earlier ones and before its answer', async () => {
  const tokenMessages: number[][] = [];
  const order: string[] = [];
  const answered = new Set<number>();
  const scheduler = new Scheduler({ maxBatch: 8, maxWaitMs: 0, continuousAdmission: true, batchWait: 'always' }, (msg) => {
    if (msg.type === 'tokens') {
      tokenMessages.push(msg.tokens);
      for (let i = 0; i < msg.tokens.length; i += 2) order.push(`token ${msg.tokens[i]}`);
    }
    if (msg.type === 'done') {
      answered.add(msg.id);
      order.push(`done ${msg.id}`);
    }
  });
  scheduler.addModel('m', scriptedRunner(), [2], 0);
  // Three streamed rows prefilled together, each answering after 4 tokens: the prefill's tokens and two decode
  // steps' go out as a message per step naming all three; the fourth token travels with 'done'.
  for (const id of [1, 2, 3]) scheduler.submit({ ...item(id, 4), stream: true });
  try {
    await waitFor(() => answered.size === 3, () => `every request to be answered (${answered.size} of 3)`);
  } finally {
    await scheduler.close();
  }
  assert.deepEqual(tokenMessages, [[1, 1, 2, 1, 3, 1], [1, 1, 2, 1, 3, 1], [1, 1, 2, 1, 3, 1]]);
  for (const id of [1, 2, 3]) assert.ok(order.lastIndexOf(`token ${id}`) < order.indexOf(`done ${id}`), order.join(', '));
});
