#!/usr/bin/env bash
# Packs node_modules for the GPU run (bench/gpu-run.sh) smaller than ../shared/tools/device-pack.sh does, so that
# the repository and .device-carry fit the device machine's 64 MiB: the run needs neither the dev-only packages
# (typescript, playwright, transformers.js, the Qwen3 tokenizer package, sharp), nor the key store, ACME, Redis and
# PostgreSQL clients, nor onnxruntime's install-time helpers: bench/gpu.bench.ts loads only the engine.
# The device machine takes 64 MiB in all. Run device-pack.sh once first (it brings node and the Vulkan loader); this replaces its node_modules archive.
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
[ -f .device-carry/gpu-env.sh ] || { echo "run ../shared/tools/device-pack.sh first"; exit 1; }
# src/ and bench/ transpiled to JavaScript here, so the run needs neither tsx nor esbuild (carry .gpu too).
grep -qx '/.gpu/' .git/info/exclude || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu
node_modules/.bin/esbuild $(git ls-files 'src/*.ts' 'bench/*.ts') --outdir=.gpu --format=esm --platform=node --target=node20 --outbase=. --log-level=warning
tar -C "$root" \
  --exclude='node_modules/onnxruntime-node/bin/napi-v*/win32' --exclude='node_modules/onnxruntime-node/bin/napi-v*/darwin' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v*/linux/arm64' --exclude='node_modules/onnxruntime-web' \
  --exclude='node_modules/*/build/Release/obj*' --exclude='node_modules/.cache' \
  --exclude='node_modules/@lenml' --exclude='node_modules/@huggingface/transformers' --exclude='node_modules/@img' \
  --exclude='node_modules/sharp' --exclude='node_modules/@typescript' --exclude='node_modules/typescript' \
  --exclude='node_modules/playwright-core' --exclude='node_modules/@types' \
  --exclude='node_modules/better-sqlite3' --exclude='node_modules/@peculiar' --exclude='node_modules/node-forge' \
  --exclude='node_modules/acme-client' --exclude='node_modules/axios' --exclude='node_modules/handlebars' \
  --exclude='node_modules/uglify-js' --exclude='node_modules/@opentelemetry' --exclude='node_modules/ioredis' \
  --exclude='node_modules/pg' --exclude='node_modules/prebuild-install' --exclude='node_modules/protobufjs' \
  --exclude='node_modules/tsx' --exclude='node_modules/esbuild' --exclude='node_modules/@esbuild' \
  --exclude='node_modules/@protobufjs' --exclude='node_modules/adm-zip' --exclude='node_modules/flatbuffers' \
  -cf - node_modules | xz -T2 -6 > .device-carry/node_modules.tar.xz
du -sh .device-carry/*
