#!/usr/bin/env python3
"""Makes a model directory with Qwen3-0.6B's shape and random weights, for `npm run bench:gpu -- --model DIR`.

Runs where torch and transformers are installed (the GPU host has them; this machine does not). Speed does not
depend on the weights' values, so random ones stand in for the real checkpoint, which cannot be downloaded there.
The tokenizer and chat template are the embedded guard demo's (a vocabulary smaller than the model's, as with
real Qwen exports); the graph has the decoder contract guardctl loads (input_ids, attention_mask, position_ids,
past_key_values.N.key/value -> logits, present.N.key/value), fp32, weights in external data (the file is ~3 GB).

    python3 bench/make_qwen3_shaped.py OUT_DIR [--layers 28]
"""
import json
import os
import shutil
import sys

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM
from transformers.cache_utils import DynamicCache

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "models", "guard-demo")


def qwen3_0_6b(layers):
    # Qwen/Qwen3-0.6B's config.json, but for the layer count (lower it for a quick smoke run).
    return Qwen3Config(
        vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=layers,
        num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
        rope_theta=1000000, rms_norm_eps=1e-6, tie_word_embeddings=True, torch_dtype="float32",
    )


class Decoder(torch.nn.Module):
    """The flat signature guardctl feeds: the past as 2 * layers tensors, the presents likewise."""

    def __init__(self, model, layers):
        super().__init__()
        self.model, self.layers = model, layers

    def forward(self, input_ids, attention_mask, position_ids, *past):
        cache = DynamicCache()
        for i in range(self.layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, past_key_values=cache, use_cache=True)
        flat = []
        for i in range(self.layers):
            layer = out.past_key_values.layers[i]
            flat += [layer.keys, layer.values]
        return (out.logits, *flat)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    layers = int(sys.argv[sys.argv.index("--layers") + 1]) if "--layers" in sys.argv else 28
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    demo_cfg = json.load(open(os.path.join(DEMO, "config.json")))
    cfg = qwen3_0_6b(layers)
    cfg.eos_token_id, cfg.pad_token_id = demo_cfg["eos_token_id"], demo_cfg["pad_token_id"]
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(cfg).eval()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(DEMO, name), os.path.join(out, name))
    json.dump(json.loads(cfg.to_json_string()), open(os.path.join(out, "config.json"), "w"), indent=2)
    json.dump({"eos_token_id": cfg.eos_token_id, "pad_token_id": cfg.pad_token_id, "do_sample": False}, open(os.path.join(out, "generation_config.json"), "w"), indent=2)

    batch, seq, past_len = 2, 5, 3
    kvh, hd = cfg.num_key_value_heads, cfg.head_dim
    args = (
        torch.randint(0, 4096, (batch, seq)),
        torch.ones(batch, past_len + seq, dtype=torch.long),
        torch.arange(past_len, past_len + seq).unsqueeze(0).expand(batch, seq).contiguous(),
    )
    past = [torch.randn(batch, kvh, past_len, hd) for _ in range(2 * layers)]
    inputs = ["input_ids", "attention_mask", "position_ids"] + [f"past_key_values.{i}.{t}" for i in range(layers) for t in ("key", "value")]
    outputs = ["logits"] + [f"present.{i}.{t}" for i in range(layers) for t in ("key", "value")]
    axes = {
        "input_ids": {0: "batch_size", 1: "sequence_length"},
        "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
        "position_ids": {0: "batch_size", 1: "sequence_length"},
        "logits": {0: "batch_size", 1: "sequence_length"},
    }
    for n in inputs[3:]:
        axes[n] = {0: "batch_size", 2: "past_sequence_length"}
    for n in outputs[1:]:
        axes[n] = {0: "batch_size", 2: "total_sequence_length"}
    path = os.path.join(out, "onnx", "model.onnx")
    with torch.no_grad():
        torch.onnx.export(Decoder(model, layers), (*args, *past), path, input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    # Over 2 GB the exporter writes one external file per tensor: gather them into model.onnx_data, the layout
    # of onnx-community exports that guardctl checks for.
    import onnx
    graph = onnx.load(path)
    for f in os.listdir(os.path.join(out, "onnx")):
        os.remove(os.path.join(out, "onnx", f))
    onnx.save_model(graph, path, save_as_external_data=True, all_tensors_to_one_file=True, location="model.onnx_data", size_threshold=1024)
    size = sum(os.path.getsize(os.path.join(out, "onnx", f)) for f in os.listdir(os.path.join(out, "onnx")))
    print(f"wrote {out}: {layers} layers, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters, onnx/ {size / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
