/**
 * The bench's outside peer: transformers.js (@huggingface/transformers 4, a devDependency) `generate()` in this
 * process on the same demo guard model directory, CPU, one ONNX Runtime thread, greedy, local files only (no hub
 * access). It answers what guardctl's moderation answers with categories=always: the whole
 * "Safety: ...\nCategories: ..." text.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { AutoModelForCausalLM, AutoTokenizer, env } from '@huggingface/transformers';
import type { PreTrainedModel, PreTrainedTokenizer, Tensor } from '@huggingface/transformers';

export interface Peer {
  /** Answers of `texts` generated as one left-padded batch. */
  generate(texts: readonly string[]): Promise<string[]>;
  /**
   * Requests per second generating `n` prompts in batches of `batch`, one batch at a time. Each batch repeats one
   * prompt (cycling through `texts`): its left-padded batches of different prompts answer differently from the
   * same prompts alone on this model (rows then miss their EOS and run to the token limit), so the peer is
   * measured where its batches are right and padding costs it nothing, its best case.
   */
  throughput(texts: readonly string[], n: number, batch: number): Promise<number>;
}

/** Loads `models/<name>` as transformers.js would load it from the hub, from the local directory only. */
export async function loadPeer(modelsDir: string, name: string, maxNewTokens: number): Promise<Peer> {
  env.allowRemoteModels = false;
  env.localModelPath = path.resolve(modelsDir) + path.sep;
  const tok: PreTrainedTokenizer = await AutoTokenizer.from_pretrained(name);
  tok.padding_side = 'left';
  const model: PreTrainedModel = await AutoModelForCausalLM.from_pretrained(name, {
    dtype: 'fp32',
    device: 'cpu',
    session_options: { intraOpNumThreads: 1, interOpNumThreads: 1 },
  });
  const render = (text: string) => tok.apply_chat_template([{ role: 'user', content: text }], { tokenize: false, add_generation_prompt: true }) as string;
  const generate = async (texts: readonly string[]): Promise<string[]> => {
    const inputs = tok(texts.map(render), { add_special_tokens: false, padding: true });
    const out = (await model.generate({ ...inputs, max_new_tokens: maxNewTokens, do_sample: false })) as Tensor;
    const width = (inputs.input_ids as Tensor).dims[1]!;
    // The answer tokens only: every row is left-padded to the same prompt width.
    return tok.batch_decode(out.slice(null, [width, out.dims[1]!]), { skip_special_tokens: true });
  };
  return {
    generate,
    async throughput(texts, n, batch) {
      const t0 = performance.now();
      for (let i = 0; i < n; i += batch) {
        const rows = Array.from({ length: Math.min(batch, n - i) }, () => texts[(i / batch) % texts.length]!);
        await generate(rows);
      }
      return n / ((performance.now() - t0) / 1000);
    },
  };
}
