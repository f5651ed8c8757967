/**
 * OpenAI chat requests for any served model: the messages the client sent, checked and handed to the model's own
 * chat template (as vLLM does), and the `stop` strings applied to the answer as it is decoded.
 */
import type { ChatMessage } from '../infer/types.js';
import { partialSuffix } from './partial-suffix.js';

export class ChatInputError extends Error {
  constructor(readonly field: string, message: string) {
    super(message);
    this.name = 'ChatInputError';
  }
}

/** `developer` is OpenAI's newer name for the system role; templates know only `system`. */
const ROLES: Record<string, ChatMessage['role']> = { system: 'system', developer: 'system', user: 'user', assistant: 'assistant' };

/**
 * Messages as the template takes them. Content may be a string or an array of text parts (OpenAI's content
 * parts), which are joined; anything the models here cannot read (images, audio, tool calls) is refused by name.
 */
export function chatMessages(raw: unknown): ChatMessage[] {
  if (!Array.isArray(raw) || raw.length === 0) throw new ChatInputError('messages', 'messages must be a non-empty array of {role, content}');
  const out = raw.map((m: unknown, i): ChatMessage => {
    const field = `messages.${i}`;
    if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new ChatInputError(field, `${field} must be an object with role and content`);
    const { role, content } = m as { role?: unknown; content?: unknown };
    const mapped = typeof role === 'string' ? ROLES[role] : undefined;
    if (!mapped) {
      throw new ChatInputError(`${field}.role`, `${field}.role must be one of system, developer, user, assistant (got ${JSON.stringify(role)}); tool and function messages are not supported`);
    }
    return { role: mapped, content: contentText(content, `${field}.content`) };
  });
  if (out.every((m) => m.role !== 'user')) throw new ChatInputError('messages', 'messages must hold at least one user message');
  return out;
}

function contentText(content: unknown, field: string): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((part: unknown, i) => {
      const p = part as { type?: unknown; text?: unknown } | null;
      if (p && p.type === 'text' && typeof p.text === 'string') return p.text;
      const type = p && typeof p.type === 'string' ? `"${p.type}"` : 'this';
      throw new ChatInputError(`${field}.${i}`, `${field}.${i}: ${type} content parts are not supported; send text parts ({"type": "text", "text": ...}) or a string`);
    }).join('');
  }
  throw new ChatInputError(field, `${field} must be a string or an array of text parts`);
}

/** OpenAI allows up to 4 stop sequences, as a string or an array; null means none. */
export function stopSequences(raw: unknown): string[] {
  if (raw === undefined || raw === null) return [];
  const list = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(list) || list.length > 4 || !list.every((s) => typeof s === 'string' && s.length > 0)) {
    throw new ChatInputError('stop', 'stop must be a non-empty string or an array of at most 4 non-empty strings');
  }
  return list as string[];
}

/**
 * Text pieces in, text safe to send out: holds back a tail that may still become a stop sequence, and reports
 * the first stop found (the answer ends before it, as OpenAI's does).
 */
export class StopMatcher {
  private pending = '';
  stopped = false;
  constructor(private readonly stops: readonly string[]) {}

  /** What may be sent now of the answer so far; after a stop, nothing more. */
  push(delta: string): string {
    if (this.stopped) return '';
    if (this.stops.length === 0) return delta;
    this.pending += delta;
    let cut = -1;
    for (const s of this.stops) {
      const at = this.pending.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stopped = true;
      const out = this.pending.slice(0, cut);
      this.pending = '';
      return out;
    }
    // Keep the longest tail that is the start of a stop sequence; the rest cannot be part of one.
    const keep = partialSuffix(this.pending, this.stops);
    const out = this.pending.slice(0, this.pending.length - keep);
    this.pending = this.pending.slice(this.pending.length - keep);
    return out;
  }

  /** The held-back tail once the answer ended without a stop. */
  flush(): string {
    const out = this.stopped ? '' : this.pending;
    this.pending = '';
    return out;
  }
}
