/**
 * Prefix reuse: the tokens every request of a model starts with (the guard template's policy before the user's
 * text, a fixed system prompt) are prefilled once per model and device, and their KV is the start of every batch
 * that needs them, so a prefill runs on each prompt's own tokens only.
 *
 * The heads are found on the main thread at load (sharedHeads): the chat template rendered around two different
 * user texts, for each conversation shape the template tells apart (a user message; a user message and the
 * assistant's answer), tokenized, and cut to their common token prefix less one token, since BPE may merge the
 * last shared token with the text that follows. That cut is a guess about the tokenizer, not a guarantee: the
 * worker checks every prompt token by token (PrefixCache.match), and a batch whose prompts do not all start with
 * one head is prefilled in full.
 *
 * The heads' KV lives in host memory, one [1, kvHeads, length, headDim] copy per past tensor, and is repeated per
 * row into each batch's first past: on WebGPU that is one upload per batch instead of a prefill of the head.
 * (On WebGPU it is computed by the GPU all the same, by a second session whose presents come back to the host:
 * worker.ts. The serving session's are GPU buffers, which onnxruntime-node 1.30 cannot read back, and a GPU
 * tensor cannot be repeated per row without one.)
 */
import type { ChatMessage } from './types.js';
import type { KvArray } from './kv.js';

/** The two renders of each shape: user texts (and answers) that differ from their first character on, so the
 * renders part where the text starts. */
const PROBES = [
  { user: 'Hello there, how are you?', answer: '42 名字' },
  { user: 'The cat sat on the mat.', answer: '¿Qué hora es?' },
] as const;

/**
 * The token heads every prompt of one conversation shape shares, longest first, without duplicates; none where
 * the template renders nothing in common (or rejects every shape).
 */
export function sharedHeads(render: (messages: ChatMessage[]) => string, encode: (text: string) => number[]): number[][] {
  const shapes: ((p: (typeof PROBES)[number]) => ChatMessage[])[] = [
    (p) => [{ role: 'user', content: p.user }],
    (p) => [{ role: 'user', content: p.user }, { role: 'assistant', content: p.answer }],
  ];
  const heads: number[][] = [];
  for (const shape of shapes) {
    let a: number[], b: number[];
    try {
      a = encode(render(shape(PROBES[0])));
      b = encode(render(shape(PROBES[1])));
    } catch {
      continue; // a template that refuses this shape: its requests never have it either
    }
    let n = 0;
    while (n < a.length && n < b.length && a[n] === b[n]) n++;
    // One token of margin: the last common token may merge with the start of another text.
    const head = a.slice(0, Math.max(0, n - 1));
    if (head.length > 0 && !heads.some((h) => sameIds(h, head))) heads.push(head);
  }
  // What the shapes share serves a batch that mixes them (a prompt and a response moderated together).
  if (heads.length === 2) {
    const [x, y] = heads as [number[], number[]];
    let n = 0;
    while (n < x.length && n < y.length && x[n] === y[n]) n++;
    if (n > 0 && n < Math.min(x.length, y.length)) heads.push(x.slice(0, n));
  }
  return heads.sort((x, y) => y.length - x.length);
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, i) => b[i] === id);
}

export interface CachedHead {
  ids: readonly number[];
  /** Per past tensor (pastNames order): the head's KV, [1, kvHeads, ids.length, headDim]. */
  kv: KvArray[];
}

export class PrefixCache {
  private readonly heads: CachedHead[] = [];

  add(head: CachedHead): void {
    this.heads.push(head);
    this.heads.sort((x, y) => y.ids.length - x.ids.length);
  }

  /** Tokens of each cached head, longest first. */
  get lengths(): number[] {
    return this.heads.map((h) => h.ids.length);
  }

  /** Bytes the heads' KV holds. */
  get bytes(): number {
    return this.heads.reduce((n, h) => n + h.kv.reduce((m, a) => m + a.byteLength, 0), 0);
  }

  /**
   * The longest head that every prompt starts with, token by token, and goes beyond (a row needs at least one
   * token of its own, whose logits the prefill returns); undefined when there is none.
   */
  match(prompts: readonly (readonly number[])[]): CachedHead | undefined {
    return this.heads.find((head) => prompts.every((p) => p.length > head.ids.length && head.ids.every((id, i) => p[i] === id)));
  }

  /** The head's KV repeated for `rows` rows: [rows, kvHeads, length, headDim] per past tensor. */
  static repeat(head: CachedHead, rows: number): KvArray[] {
    return head.kv.map((one) => {
      const out = new (one.constructor as new (length: number) => KvArray)(one.length * rows);
      for (let r = 0; r < rows; r++) out.set(one, r * one.length);
      return out;
    });
  }
}
