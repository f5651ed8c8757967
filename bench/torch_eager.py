#!/usr/bin/env python3
"""PyTorch eager baseline for `npm run bench:gpu`: prefill and decode tokens/s of a Qwen3-shaped decoder with
random weights, at the same prompt length, new-token count and batch sizes as the Node benchmark.

    python3 bench/torch_eager.py [--layers 28] [--prompt-tokens 256] [--new-tokens 64] [--batches 1,8]
                                 [--dtype fp16|fp32] [--device cuda|cpu] [--rounds 2]

The model is written out here in plain torch (embedding, RMSNorm, q_norm/k_norm, rotary positions, grouped-query
attention, SiLU MLP, tied lm_head) rather than taken from transformers, so the baseline does not depend on which
transformers version the GPU host has. It decodes greedily with a KV cache that grows by concatenation, as
transformers' DynamicCache does, and computes logits for the last position only at prefill, as generate() does.
Speed does not depend on the weights' values. Timings synchronise the device around each phase.
"""
import argparse
import math
import time

import torch
import torch.nn.functional as F


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        var = x.float().pow(2).mean(-1, keepdim=True)
        return (x.float() * torch.rsqrt(var + self.eps)).to(x.dtype) * self.weight


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Attention(torch.nn.Module):
    def __init__(self, hidden, heads, kv_heads, head_dim):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.q = torch.nn.Linear(hidden, heads * head_dim, bias=False)
        self.k = torch.nn.Linear(hidden, kv_heads * head_dim, bias=False)
        self.v = torch.nn.Linear(hidden, kv_heads * head_dim, bias=False)
        self.o = torch.nn.Linear(heads * head_dim, hidden, bias=False)
        self.q_norm, self.k_norm = RMSNorm(head_dim), RMSNorm(head_dim)

    def forward(self, x, cos, sin, mask, past):
        b, s, _ = x.shape
        q = self.q_norm(self.q(x).view(b, s, self.heads, self.head_dim)).transpose(1, 2)
        k = self.k_norm(self.k(x).view(b, s, self.kv_heads, self.head_dim)).transpose(1, 2)
        v = self.v(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if past is not None:
            k, v = torch.cat((past[0], k), dim=2), torch.cat((past[1], v), dim=2)
        rep = self.heads // self.kv_heads
        kk, vv = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        if hasattr(F, "scaled_dot_product_attention"):
            out = F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask)
        else:  # torch 1.x (this machine's Debian torch): the same arithmetic by hand
            att = (q @ kk.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask
            out = att.softmax(-1) @ vv
        return self.o(out.transpose(1, 2).reshape(b, s, -1)), (k, v)


class Layer(torch.nn.Module):
    def __init__(self, hidden, heads, kv_heads, head_dim, inter):
        super().__init__()
        self.attn = Attention(hidden, heads, kv_heads, head_dim)
        self.ln1, self.ln2 = RMSNorm(hidden), RMSNorm(hidden)
        self.gate = torch.nn.Linear(hidden, inter, bias=False)
        self.up = torch.nn.Linear(hidden, inter, bias=False)
        self.down = torch.nn.Linear(inter, hidden, bias=False)

    def forward(self, x, cos, sin, mask, past):
        a, present = self.attn(self.ln1(x), cos, sin, mask, past)
        x = x + a
        h = self.ln2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h)), present


class Qwen3Shaped(torch.nn.Module):
    def __init__(self, layers, hidden=1024, heads=16, kv_heads=8, head_dim=128, inter=3072, vocab=151936, theta=1e6):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, hidden)
        self.layers = torch.nn.ModuleList(Layer(hidden, heads, kv_heads, head_dim, inter) for _ in range(layers))
        self.norm = RMSNorm(hidden)
        self.head_dim, self.theta = head_dim, theta

    def rotary(self, positions, dtype):
        inv = 1.0 / (self.theta ** (torch.arange(0, self.head_dim, 2, device=positions.device).float() / self.head_dim))
        freqs = positions.float()[..., None] * inv
        emb = torch.cat((freqs, freqs), dim=-1)[:, None]  # [b, 1, s, head_dim]
        return emb.cos().to(dtype), emb.sin().to(dtype)

    def forward(self, ids, positions, mask, past=None, last_only=False):
        x = self.embed(ids)
        cos, sin = self.rotary(positions, x.dtype)
        presents = []
        for i, layer in enumerate(self.layers):
            x, p = layer(x, cos, sin, mask, None if past is None else past[i])
            presents.append(p)
        x = self.norm(x[:, -1:] if last_only else x)
        return x @ self.embed.weight.T, presents  # tied embeddings


def causal_mask(b, s, past_len, dtype, device):
    # Additive mask [b, 1, s, past_len + s]: position i sees the whole past and prompt positions <= i.
    total = past_len + s
    allowed = torch.arange(total, device=device)[None, :] <= (torch.arange(s, device=device)[:, None] + past_len)
    m = torch.zeros(s, total, dtype=dtype, device=device).masked_fill(~allowed, torch.finfo(dtype).min)
    return m[None, None].expand(b, 1, s, total)


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def run(model, batch, prompt, new, dtype, device):
    ids = torch.randint(0, 151936, (batch, prompt), device=device)
    pos = torch.arange(prompt, device=device)[None].expand(batch, prompt)
    sync(device)
    t0 = time.perf_counter()
    logits, past = model(ids, pos, causal_mask(batch, prompt, 0, dtype, device), last_only=True)
    token = logits[:, -1].argmax(-1, keepdim=True)
    sync(device)
    t1 = time.perf_counter()
    for step in range(new):
        p = prompt + step
        logits, past = model(token, torch.full((batch, 1), p, device=device), torch.zeros(batch, 1, 1, p + 1, dtype=dtype, device=device), past)
        token = logits[:, -1].argmax(-1, keepdim=True)
    sync(device)
    t2 = time.perf_counter()
    return batch * prompt / (t1 - t0), batch * new / (t2 - t1), (t2 - t0) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=28)
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--dtype", default="fp16")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    dtype = {"fp16": torch.float16, "fp32": torch.float32, "bf16": torch.bfloat16}[a.dtype]
    torch.manual_seed(0)
    model = Qwen3Shaped(a.layers).to(a.device, dtype).eval()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    name = torch.cuda.get_device_name() if a.device == "cuda" else "cpu"
    print(f"torch {torch.__version__} eager, {a.dtype} on {name}: {a.layers} layers, {params:.0f}M parameters; prompt {a.prompt_tokens} tokens, {a.new_tokens} new")
    with torch.inference_mode():
        run(model, 1, 8, 2, dtype, a.device)  # warm-up: kernels and allocator
        for batch in [int(b) for b in a.batches.split(",")]:
            best = None
            for _ in range(a.rounds):
                r = run(model, batch, a.prompt_tokens, a.new_tokens, dtype, a.device)
                if best is None or r[2] < best[2]:
                    best = r
            print(f"torch-{a.dtype} batch {batch}: prefill {best[0]:.0f} tok/s, decode {best[1]:.1f} tok/s, wall {best[2]:.0f} ms")


if __name__ == "__main__":
    main()
