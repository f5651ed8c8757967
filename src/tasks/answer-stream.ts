/**
 * A translation's answer as it streams: the model's raw text grows piece by piece, and the client should see the
 * pieces of the *result* (trimmed; for formatted translation, unwrapped from <target></target>), so that the
 * pieces join to the final event's `result`. Each raw update maps to the result it already fixes (a `view` that
 * holds back what a later piece could still change: trailing whitespace, a half-arrived closing tag), and only
 * growth of that view is emitted. Should a view ever stop extending what was sent (a model that writes text
 * before its <target> tag), nothing more is emitted and the final event's `result` is the answer.
 */
import { partialSuffix } from './partial-suffix.js';

const OPEN = '<target>';
const CLOSE = '</target>';

/** The part of `text` that no later text can change, given that trailing whitespace may yet be trimmed. */
function settled(text: string): string {
  return text.trimStart().replace(/\s+$/u, '');
}

/** Drops a suffix that may be the start of `tag`. */
function withoutPartial(text: string, tag: string): string {
  return text.slice(0, text.length - partialSuffix(text, [tag]));
}

function formattedView(raw: string): string {
  // As unwrapFormatted reads the whole answer: inside the first <target>, or all of it when there is none.
  const open = raw.indexOf(OPEN);
  if (open === -1) return settled(withoutPartial(raw, OPEN));
  const inner = raw.slice(open + OPEN.length);
  const end = inner.indexOf(CLOSE);
  return settled(end === -1 ? withoutPartial(inner, CLOSE) : inner.slice(0, end));
}

export class AnswerStream {
  private raw = '';
  private sent = '';
  private stopped = false;

  constructor(
    private readonly preserveFormat: boolean,
    private readonly emit: (delta: string) => void,
  ) {}

  push(piece: string): void {
    this.raw += piece;
    this.offer(this.preserveFormat ? formattedView(this.raw) : settled(this.raw));
  }

  /** The whole answer is in: emits what the final result adds. */
  end(result: string): void {
    this.offer(result);
  }

  private offer(view: string): void {
    if (this.stopped) return;
    if (!view.startsWith(this.sent)) {
      this.stopped = true;
      return;
    }
    if (view.length === this.sent.length) return;
    const delta = view.slice(this.sent.length);
    this.sent = view;
    this.emit(delta);
  }
}
