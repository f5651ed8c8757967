/**
 * Incremental detokenization for streamed answers: token ids in, text deltas out, never a broken character.
 *
 * A byte-level BPE token can hold part of a UTF-8 sequence (a CJK character or an emoji is often split over two or
 * three tokens), and decoding a list that ends inside one yields U+FFFD. Decoding every token alone would emit
 * those replacement characters; decoding the whole answer at every step would cost O(n^2). As vLLM's
 * detokenize_incrementally does, each step decodes a short window instead: from the start of the last emitted
 * token(s) (`prefix`, kept so that decoders which treat a sequence's first token specially, such as Metaspace's
 * leading space, see the same start twice) to the end, and emits what the window adds beyond the prefix's text.
 * A window whose text ends in U+FFFD is held until the token that completes the character arrives.
 */
export class TextStream {
  private readonly tokens: number[] = [];
  /** Tokens before prefixStart are emitted and out of the window; prefixStart..readStart are emitted, kept as context. */
  private prefixStart = 0;
  private readStart = 0;

  constructor(private readonly decode: (ids: readonly number[]) => string) {}

  /** Adds tokens; returns the text they complete (possibly ''). */
  push(tokens: readonly number[]): string {
    for (const t of tokens) this.tokens.push(t);
    return this.advance(false);
  }

  /**
   * The text still held at the end of the answer (an unfinished character stays as U+FFFD, as a whole decode
   * would give it).
   */
  flush(): string {
    return this.advance(true);
  }

  private advance(final: boolean): string {
    if (this.tokens.length === this.readStart) return '';
    // Some tokenizers refuse to decode an empty list.
    const prefixText = this.prefixStart === this.readStart ? '' : this.decode(this.tokens.slice(this.prefixStart, this.readStart));
    const text = this.decode(this.tokens.slice(this.prefixStart));
    if (!final && (text.length <= prefixText.length || text.endsWith('\uFFFD'))) return '';
    this.prefixStart = this.readStart;
    this.readStart = this.tokens.length;
    return text.slice(prefixText.length);
  }
}
