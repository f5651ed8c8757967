#!/usr/bin/env bash
# The GPU measurement of issue 12 (item 7), as one command on the device machine, from the project root:
#   bash bench/gpu-run.sh            (after ../shared/tools/device-pack.sh and bench/gpu-pack.sh here)
# carrying .gpu and .device-carry/{node.xz,node_modules.tar.xz,debs,gpu-env.sh}. It prints and keeps under $OUT:
# PyTorch fp16 eager (bench/torch_eager.py) and `npm run bench:gpu` (webgpu against cpu) on a Qwen3-0.6B-shaped
# model with random weights made there, the same prompt length, new tokens and batches for both.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
ARGS=${GPU_BENCH_ARGS:---prompt-tokens 256 --new-tokens 64 --batches 1,8}
source .device-carry/gpu-env.sh > "$OUT/env.txt" 2>&1; cat "$OUT/env.txt"
export PYTHONUNBUFFERED=1
python3 -c 'import torch, transformers, onnx; print("torch", torch.__version__, "transformers", transformers.__version__, "onnx", onnx.__version__)'
echo "== PyTorch eager"
timeout 150 python3 bench/torch_eager.py --dtype fp16 --rounds 2 $ARGS 2>&1 | tee "$OUT/torch.txt"
echo "== model"
timeout 240 python3 bench/make_qwen3_shaped.py /tmp/q 2>&1 | tail -20 | tee "$OUT/build.txt"
echo "== bench:gpu"
timeout 300 node .gpu/bench/gpu.bench.js --model /tmp/q --rounds 1 $ARGS 2>&1 | tee "$OUT/gpu-bench.txt"
