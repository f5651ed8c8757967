/**
 * The model's tokenizer and chat template. The engine (main thread) renders prompts, decodes answers and encodes
 * short prompts with it; the tokenizer workers (tokenize-worker.ts) hold their own copies and encode the rest,
 * because encoding a long text without word breaks takes seconds. Prompts are counted before they are queued
 * (so 'input_too_long' and 'ambiguous_candidates' answer without reaching a device worker), which only ever sees
 * token ids.
 */
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { EngineError } from './types.js';
import type { ChatMessage } from './types.js';
import type { ModelDir } from './model-dir.js';
import { configError } from './model-dir.js';

/** Special-token strings transformers passes to chat templates (tokenizer_config holds strings or {content}). */
function specialTokens(cfg: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
    const v = cfg[key];
    if (typeof v === 'string') out[key] = v;
    else if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') out[key] = (v as { content: string }).content;
  }
  return out;
}

export class ChatTokenizer {
  readonly eosIds: readonly number[];
  private readonly tokenizer: Tokenizer;
  private readonly template: Template;
  private readonly specials: Record<string, string>;
  /** The control-token strings (<|im_start|>, <|im_end|>, ...) that user text must never produce. */
  private readonly controlStrings: string[];
  /** Added tokens after which the rest of a text can be encoded without what comes before them (jointEncoder), with their ids. */
  private readonly cutStrings: Map<string, number>;

  constructor(model: Pick<ModelDir, 'dir' | 'tokenizerJson' | 'tokenizerConfig' | 'chatTemplate' | 'config'>) {
    try {
      this.tokenizer = new Tokenizer(model.tokenizerJson, model.tokenizerConfig);
    } catch (err) {
      throw configError(`${model.dir}/tokenizer.json cannot be loaded: ${(err as Error).message}`);
    }
    try {
      this.template = new Template(model.chatTemplate);
    } catch (err) {
      throw configError(`${model.dir}/tokenizer_config.json chat_template does not parse: ${(err as Error).message}`);
    }
    this.eosIds = model.config.eosIds;
    this.specials = specialTokens(model.tokenizerConfig);
    const added = (model.tokenizerJson as { added_tokens?: Array<{ id?: unknown; content?: unknown; special?: unknown; rstrip?: unknown; normalized?: unknown }> }).added_tokens ?? [];
    this.controlStrings = added.filter((a) => a.special === true && typeof a.content === 'string' && a.content.length > 1).map((a) => a.content as string);
    this.cutStrings = cutStrings(added, (model.tokenizerJson as { normalizer?: unknown }).normalizer != null);
  }

  /**
   * Message content with every control-token string broken by a zero-width space after its first character:
   * the tokenizer recognises those strings anywhere in the text, so without this a caller could close the user
   * turn and forge the assistant's answer (for the guard: its verdict). The visible text is unchanged.
   */
  private defang(content: string): string {
    let out = content;
    for (const s of this.controlStrings) if (out.includes(s)) out = out.split(s).join(`${s[0]}\u200B${s.slice(1)}`);
    return out;
  }

  /** The prompt text: the chat template with the generation prompt, then the forced answer prefix. */
  render(messages: readonly ChatMessage[], prefix = ''): string {
    let text: string;
    try {
      const safe = messages.map((m) => ({ ...m, content: this.defang(m.content) }));
      text = this.template.render({ ...this.specials, messages: safe, add_generation_prompt: true });
    } catch (err) {
      // Templates reject some conversations on purpose (raise_exception): the caller sent something unusable.
      throw new EngineError('engine_failed', `the chat template rejected the messages: ${(err as Error).message}`);
    }
    return text + prefix;
  }

  /** Token ids of text, special tokens in it (<|im_start|>) recognised, nothing added around it. */
  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * The prompt's ids and, for scoring, the candidates' first tokens; a prompt over `limit` tokens comes back
   * without them (the engine refuses it; the candidates would cost one more encode each).
   */
  encodePrompt(
    prompt: string, limit: number, candidates?: readonly string[], continuations?: readonly (string | null)[],
  ): { ids: number[]; candidateIds?: number[]; continuationIds?: (number[] | null)[] } {
    const ids = this.encode(prompt);
    if (!candidates || ids.length > limit) return { ids };
    const joint = this.jointEncoder(prompt, ids);
    const candidateIds = this.candidateFirstTokens(prompt, ids, candidates, joint);
    if (!continuations) return { ids, candidateIds };
    return { ids, candidateIds, continuationIds: candidates.map((c, i) => this.continuationTokens(joint, ids, c, candidateIds[i]!, continuations[i] ?? null)) };
  }

  /**
   * A function giving the ids of prompt + text. A moderation needs six of them (three candidates, three
   * continuations), and encoding the whole prompt each time cost five sixths of the event loop's tokenizing time
   * on the demo guard model. So where the prompt holds an added token that can serve as a cut (cutStrings), only
   * that token and what follows it are encoded again, and the prompt's ids before it are kept:
   * - the tokenizer encodes the texts between added tokens on their own, so nothing before the cut can change;
   * - the cut token leads the part encoded again, so that part is never a text's first section, which some
   *   tokenizers treat differently (Metaspace's prepend_scheme 'first').
   * The prompt's own ids are checked to end with that part's encoding; where they do not, the whole prompt is
   * encoded each time, as before.
   */
  private jointEncoder(prompt: string, promptIds: readonly number[]): (text: string) => number[] {
    const whole = (text: string) => this.encode(prompt + text);
    let cut = -1;
    let tokenId = -1;
    for (const [s, id] of this.cutStrings) {
      const at = prompt.lastIndexOf(s);
      if (at > cut) [cut, tokenId] = [at, id];
    }
    if (cut < 0) return whole;
    const rest = prompt.slice(cut);
    const tail = this.encode(rest);
    const keep = promptIds.length - tail.length;
    if (keep < 0 || tail[0] !== tokenId || tail.some((id, i) => promptIds[keep + i] !== id)) return whole;
    const head = promptIds.slice(0, keep);
    return (text) => head.concat(this.encode(rest + text));
  }

  /**
   * The tokens that follow the prompt when `text` (which starts with the candidate) is appended: exactly those a
   * prompt of prompt + text would hold after the prompt's own, or null where tokenizing the joint string changes
   * the prompt's tokens or the candidate's first token (then the caller decodes from a prompt of its own).
   */
  private continuationTokens(encodeJoint: (text: string) => number[], promptIds: readonly number[], candidate: string, first: number, text: string | null): number[] | null {
    if (text === null || !text.startsWith(candidate)) return null;
    const joint = encodeJoint(text);
    const extends_ = joint.length > promptIds.length && promptIds.every((id, i) => joint[i] === id) && joint[promptIds.length] === first;
    return extends_ ? joint.slice(promptIds.length) : null;
  }

  /** Text of generated ids, special tokens (eos) left out. */
  decode(ids: readonly number[]): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: true });
  }

  /**
   * The token each candidate continuation starts with after `prompt` (rendered prompt + prefix), found by
   * tokenizing the joint string: "Safety:" + " Unsafe" must tokenize as the prompt's tokens followed by one more,
   * or the first-token comparison would not mean what the caller thinks. Two candidates starting with the same
   * token cannot be told apart either.
   */
  candidateFirstTokens(
    prompt: string, promptIds: readonly number[], candidates: readonly string[], encodeJoint = this.jointEncoder(prompt, promptIds),
  ): number[] {
    if (candidates.length === 0) throw new EngineError('ambiguous_candidates', 'score() needs at least one candidate', { candidates: 0 });
    const firsts: number[] = [];
    for (const candidate of candidates) {
      const joint = encodeJoint(candidate);
      const extends_ = joint.length > promptIds.length && promptIds.every((id, i) => joint[i] === id);
      if (!extends_) {
        throw new EngineError('ambiguous_candidates', `candidate ${JSON.stringify(candidate)} does not tokenize as a continuation of the prefix`, { candidate });
      }
      const first = joint[promptIds.length]!;
      const clash = firsts.indexOf(first);
      if (clash >= 0) {
        throw new EngineError('ambiguous_candidates', `candidates ${JSON.stringify(candidates[clash])} and ${JSON.stringify(candidate)} start with the same token`, {
          candidates: [candidates[clash], candidate],
          token: first,
        });
      }
      firsts.push(first);
    }
    return firsts;
  }
}

/**
 * The added tokens a prompt can be cut after (jointEncoder):
 * - those the tokenizer splits on before normalizing (not `normalized`, or no normalizer): a normalized one is
 *   found only inside a normalized section, so the text after it is not a section of its own;
 * - those whose text no other added token contains, so no match of the splitter can start before the cut and end
 *   after it;
 * - without rstrip: its trim would act alike in both encodings, but nothing is gained by relying on that.
 */
function cutStrings(added: ReadonlyArray<{ id?: unknown; content?: unknown; rstrip?: unknown; normalized?: unknown; special?: unknown }>, normalizes: boolean): Map<string, number> {
  const texts = added.map((a) => a.content).filter((c): c is string => typeof c === 'string' && c.length > 0);
  // As @huggingface/tokenizers reads the flag: absent, a special token is not normalized and any other is.
  const normalized = (a: { normalized?: unknown; special?: unknown }) => (typeof a.normalized === 'boolean' ? a.normalized : a.special !== true);
  return new Map(added
    .filter((a) => typeof a.id === 'number' && typeof a.content === 'string' && a.content.length > 0 && a.rstrip !== true && !(normalizes && normalized(a)))
    .filter((a) => !texts.some((other) => other !== a.content && other.includes(a.content as string)))
    .map((a) => [a.content as string, a.id as number]));
}
