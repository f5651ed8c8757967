/**
 * A generate's answer as text pieces while its tokens arrive. A token may end inside a character (byte-level BPE
 * splits multi-byte UTF-8), and a decoder may print a token differently after its neighbour, so each piece is
 * decoded with the token before it as context (the offsets scheme of text-generation-inference) and held back
 * while it ends in U+FFFD. end() gives whatever the full decode holds beyond the pieces sent, so the pieces
 * joined are the answer's text.
 */
export class TextStream {
  private readonly tokens: number[] = [];
  /** Tokens before prefixOffset are settled; those from prefixOffset to readOffset were sent, as context. */
  private prefixOffset = 0;
  private readOffset = 0;
  private sent = '';

  constructor(
    private readonly decode: (tokens: readonly number[]) => string,
    /** The new text and the answer's tokens so far. */
    private readonly emit: (delta: string, tokens: number) => void,
  ) {}

  push(tokens: readonly number[]): void {
    this.tokens.push(...tokens);
    const before = this.text(this.tokens.slice(this.prefixOffset, this.readOffset));
    const now = this.text(this.tokens.slice(this.prefixOffset));
    if (now.length <= before.length || now.endsWith('\uFFFD') || !now.startsWith(before)) return;
    this.prefixOffset = this.readOffset;
    this.readOffset = this.tokens.length;
    this.send(now.slice(before.length));
  }

  /** The rest, given the answer's full text (a decoder's last word on spacing wins over the pieces). */
  end(text: string): void {
    if (text.startsWith(this.sent)) this.send(text.slice(this.sent.length));
  }

  /** Tokenizers refuse to decode nothing. */
  private text(tokens: readonly number[]): string {
    return tokens.length === 0 ? '' : this.decode(tokens);
  }

  private send(delta: string): void {
    if (delta === '') return;
    this.sent += delta;
    this.emit(delta, this.tokens.length);
  }
}
