#!/usr/bin/env bash
# Compiles flexstream_kernels.cu into flexstream_kernels.fatbin: SASS for sm_80 (A100) and sm_90 (H100/H200) plus
# compute_90 PTX, which the driver JIT-compiles for newer GPUs. CUDA 13 PTX needs an R580+ driver.
# Usage: native/build-fatbin.sh [OUTPUT]   (default: native/flexstream_kernels.fatbin, the checked-in copy)
# NVCC overrides the compiler (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/flexstream_kernels.fatbin}"
nvcc="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
if [ ! -x "$nvcc" ]; then
  echo "build-fatbin: nvcc not found (set NVCC or install the CUDA toolkit); the checked-in fatbin still works" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
"$nvcc" -fatbin -O3 -std=c++17 \
  -gencode arch=compute_80,code=sm_80 \
  -gencode arch=compute_90,code=sm_90 \
  -gencode arch=compute_90,code=compute_90 \
  -o "$out" "$here/flexstream_kernels.cu"
echo "build-fatbin: wrote $out ($(stat -c %s "$out") bytes) with $("$nvcc" --version | tail -1)" >&2
