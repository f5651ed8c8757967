/**
 * The longest prompt, in UTF-8 bytes, that can still fit in a token limit: prompts longer than that are refused
 * with 'input_too_long' before anyone tokenizes them, because tokenizing costs time superlinear in the length of
 * a run without word breaks (one CJK character repeated: 1 MB took 5.8 s on the event loop).
 *
 * Why the bound never refuses a prompt that fits: every token of the prompt stands for a contiguous piece of the
 * normalized text, and no piece is longer than the longest token of the vocabulary (`maxTokenBytes`, in bytes).
 * So tokens >= normalizedBytes / maxTokenBytes. Normalization can shrink text by at most `shrink` (bytes in /
 * bytes out), so tokens >= promptBytes / (shrink * maxTokenBytes), and a prompt longer than
 * limit * shrink * maxTokenBytes bytes has more than `limit` tokens. The prompt measured is the rendered one
 * (template, defanged messages, forced prefix), so the template's fixed part is counted as it is tokenized.
 *
 * That argument holds only where every byte of the text ends up in some token: byte-level BPE (GPT-2, Qwen,
 * Llama 3), whose alphabet is the 256 bytes (no unknown token swallowing a run) and whose pre-tokenizer drops
 * nothing. For any other tokenizer (WordPiece, Unigram, pre-tokenizers that drop whitespace, normalizers that
 * delete text) there is no bound (Infinity): the token count alone decides, off the event loop.
 */

type Json = Record<string, unknown>;

/**
 * Bytes in / bytes out of the normalizer, at most; undefined where it can delete text. NFC: 3, checked over every
 * code point and every canonical decomposition (U+1FEF GREEK VARIA, 3 bytes -> U+0060, 1 byte; U+0390 from its
 * 9-byte decomposition; Hangul L+V+T jamo, 9 bytes -> one 3-byte syllable).
 */
function normalizerShrink(n: unknown): number | undefined {
  if (n === null || n === undefined) return 1;
  const type = (n as Json).type;
  if (type === 'NFC') return 3;
  if (type === 'Sequence') {
    let product = 1;
    for (const inner of ((n as Json).normalizers as unknown[] | undefined) ?? []) {
      const f = normalizerShrink(inner);
      if (f === undefined) return undefined;
      product *= f;
    }
    return product;
  }
  return undefined;
}

/** True where the pre-tokenizer keeps every byte: ByteLevel, alone or after Splits that isolate but never remove. */
function keepsEveryByte(p: unknown): boolean {
  const type = (p as Json | null)?.type;
  if (type === 'ByteLevel') return true;
  if (type !== 'Sequence') return false;
  const steps = ((p as Json).pretokenizers as Json[] | undefined) ?? [];
  return steps.some((s) => s.type === 'ByteLevel') && steps.every((s) => s.type === 'ByteLevel' || (s.type === 'Split' && s.behavior !== 'Removed'));
}

/** Longest text one token can stand for, in bytes: byte-level vocabulary entries are one character per byte. */
function maxTokenBytes(tokenizerJson: Json): number {
  const vocab = ((tokenizerJson.model as Json).vocab ?? {}) as Record<string, number>;
  let longest = 1;
  for (const piece of Object.keys(vocab)) {
    let chars = 0;
    for (const _ of piece) chars++;
    if (chars > longest) longest = chars;
  }
  // Added tokens (<|im_start|>) match their content as written, not through the byte alphabet.
  for (const added of (tokenizerJson.added_tokens as Array<{ content?: unknown }> | undefined) ?? []) {
    if (typeof added.content === 'string') longest = Math.max(longest, Buffer.byteLength(added.content));
  }
  return longest;
}

/**
 * Bytes per token at most, after normalization (shrink * longest token): a prompt of more than limit times this
 * many bytes cannot fit in `limit` tokens. Infinity where the tokenizer gives no such guarantee (see above).
 */
export function bytesPerTokenBound(tokenizerJson: Json): number {
  const model = tokenizerJson.model as Json | undefined;
  if (model?.type !== 'BPE' || !keepsEveryByte(tokenizerJson.pre_tokenizer)) return Infinity;
  // A fused unknown token could stand for a run of any length (byte-level vocabularies never need one).
  if (model.unk_token != null && model.fuse_unk === true) return Infinity;
  const shrink = normalizerShrink(tokenizerJson.normalizer);
  if (shrink === undefined) return Infinity;
  return shrink * maxTokenBytes(tokenizerJson);
}
