#!/usr/bin/env bash
# FlexStream's device check, one call on a GPU machine (run from the repository root):
#   info     the GPU, driver, Java and PyTorch seen
#   fatbin   the jar's fatbin is the checked-in one; with nvcc present, the .cu still compiles to it
#   tests    the probe finds the GPU, then the GPU differential tests (CudaKernelsTest: every kernel against the
#            scalar reference on odd shapes) and end-to-end token tests (CudaEndToEndTest), with the selection tests
#   e2e      `flexstream generate` on a generated tiny model: the cuda backend under several placements gives the
#            CPU backend's tokens (greedy)
#   bench    OPT-shaped random model (default opt-1.3b, batch 64, prompt 128, 32 new tokens) on the cuda backend, and
#            native/bench_pytorch.py on the same workload (fp32 and fp16) in the same call
#   offload  the same workload offloaded with a device budget (default 3g) smaller than the model (5.3 GB fp32)
#
# What it needs (the lent GPU machines have neither a JDK 25 nor a Maven repository):
#   - the kit made by `native/make-gpu-kit.sh --jre` on a build machine, carried as target/gpu-kit (about 63 MB:
#     a jlink'd Java 25 runtime plus the jars), or FLEXSTREAM_GPU_KIT=DIR; without the kit's jre/, a JDK 25 from
#     JAVA_HOME or /usr/lib/jvm/*25*
#   - python3 with torch for the baseline (transformers is used when installed, else a plain PyTorch OPT)
#   - optional: nvidia-smi (info), nvcc (the fatbin stage rebuilds and compares)
#
# Usage: native/check-gpu.sh [stage ...]      (default: every stage, in the order above)
# Environment: BENCH_SHAPE=opt-1.3b BENCH_BATCH=64 BENCH_PROMPT=128 BENCH_GEN=32 BENCH_REPEAT=2 BENCH_DTYPES=fp32,fp16
#              OFFLOAD_DEVICE_MEM=3g OFFLOAD_PERCENT="20 80 0 100 100 0" WORK=/tmp/flexstream-check
#              CHECK_BACKEND=cuda (cpu runs the e2e, bench and offload plumbing on a machine without a GPU)
# Exit status 0 when every stage run passed; a summary with each stage's result and time ends the output.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

KIT="${FLEXSTREAM_GPU_KIT:-target/gpu-kit}"
WORK="${WORK:-/tmp/flexstream-check}"
SHAPE="${BENCH_SHAPE:-opt-1.3b}"
BATCH="${BENCH_BATCH:-64}"
PROMPT="${BENCH_PROMPT:-128}"
GEN="${BENCH_GEN:-32}"
REPEAT="${BENCH_REPEAT:-2}"
OFFLOAD_MEM="${OFFLOAD_DEVICE_MEM:-3g}"
OFFLOAD_PERCENT="${OFFLOAD_PERCENT:-20 80 0 100 100 0}"
BACKEND="${CHECK_BACKEND:-cuda}"
mkdir -p "$WORK"

# ---- Java and the classpath ----------------------------------------------------------------------------------
if [ -x "$KIT/jre/bin/java" ]; then
  JAVA="$KIT/jre/bin/java"
elif [ -n "${JAVA_HOME:-}" ] && "$JAVA_HOME/bin/java" -version 2>&1 | grep -q 'version "25'; then
  JAVA="$JAVA_HOME/bin/java"
elif ls -d /usr/lib/jvm/*25* >/dev/null 2>&1; then
  JAVA="$(ls -d /usr/lib/jvm/*25* | head -1)/bin/java"
else
  echo "check-gpu: no Java 25: carry the kit of 'native/make-gpu-kit.sh --jre' as $KIT, or set JAVA_HOME" >&2
  exit 2
fi
if [ ! -f "$KIT/lib/flexstream.jar" ]; then
  echo "check-gpu: no $KIT/lib/flexstream.jar: build the kit with native/make-gpu-kit.sh and carry it" >&2
  exit 2
fi
CP="$(ls "$KIT"/lib/*.jar | grep -v junit-platform-console | paste -sd:)"
CONSOLE="$(ls "$KIT"/lib/junit-platform-console-standalone-*.jar 2>/dev/null | head -1)"
# Native segments count against the direct-memory limit, which defaults to the heap size: lift it for 1.3B in fp32.
JFLAGS=(--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC -Xmx16g
        -XX:MaxDirectMemorySize=100g -Dorg.apache.avro.SERIALIZABLE_PACKAGES=io.flexstream)

flexstream() {
  "$JAVA" "${JFLAGS[@]}" -cp "$CP" io.flexstream.cli.FlexStreamCli "$@"
}

# ---- stages ---------------------------------------------------------------------------------------------------
stage_info() {
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, load: $(uptime | sed 's/.*load average: //')"
  nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>&1 || true
  "$JAVA" -version 2>&1 | head -1
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
               "gpu", torch.cuda.is_available())' 2>&1 | tail -1
}

stage_fatbin() {
  local jarred="$WORK/jar.fatbin"
  unzip -p "$KIT/lib/flexstream.jar" io/flexstream/kernel/cuda/flexstream_kernels.fatbin > "$jarred" || return 1
  cmp "$jarred" native/flexstream_kernels.fatbin || { echo "the jar's fatbin is not the checked-in one"; return 1; }
  echo "the jar's fatbin is native/flexstream_kernels.fatbin ($(stat -c %s "$jarred") bytes)"
  local nvcc; nvcc="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
  if [ -x "$nvcc" ]; then
    NVCC="$nvcc" native/build-fatbin.sh "$WORK/fresh.fatbin" || return 1
    cmp "$WORK/fresh.fatbin" native/flexstream_kernels.fatbin \
      && echo "nvcc here compiles the .cu to the same bytes" \
      || echo "note: nvcc here ($("$nvcc" --version | tail -1)) gives different bytes (another version?)"
  else
    echo "no nvcc here: the checked-in fatbin is what runs"
  fi
}

stage_tests() {
  echo "probe: a 1-layer run forced onto the GPU"
  flexstream bench generate --backend cuda --shape opt-125m --layers 1 --batch 2 --prompt-len 8 --gen-len 2 \
    --repeat 1 --warmup 0 || { echo "the cuda backend does not start here (reason above)"; return 1; }
  [ -n "$CONSOLE" ] || { echo "no junit-platform-console-standalone jar in $KIT/lib"; return 1; }
  local log="$WORK/tests.log"
  "$JAVA" "${JFLAGS[@]}" -jar "$CONSOLE" execute --disable-banner --disable-ansi-colors --details=tree \
    --class-path "$CP" --select-class io.flexstream.kernel.cuda.HostCopierTest \
    --select-class io.flexstream.kernel.cuda.ContentHashTest \
    --select-class io.flexstream.kernel.cuda.CudaProbeTest \
    --select-class io.flexstream.kernel.cuda.FatbinImageTest \
    --select-class io.flexstream.kernel.BackendsTest \
    --select-class io.flexstream.kernel.CudaKernelsTest \
    --select-class io.flexstream.kernel.cuda.CudaEndToEndTest 2>&1 | grep -v '^WARNING' | tee "$log"
  local rc=${PIPESTATUS[0]}
  if grep -q "no usable GPU" "$log"; then echo "GPU tests were skipped although the probe run worked"; return 1; fi
  return "$rc"
}

stage_e2e() {
  local model="$WORK/tiny" prompts="$WORK/prompts.jsonl"
  rm -rf "$model" "$WORK/offload-e2e"
  flexstream model tiny "$model" --hidden 128 --layers 3 --heads 4 --seed 5 || return 1
  python3 - "$prompts" <<'PY'
import json, sys
texts = ["Hello", "Offloading moves tensors between tiers", "A", "Kafka streams prompts to",
         "The zig-zag schedule reuses weights across batches", "Seven", "Last one in a partial block",
         "GPUs and CPUs", "One more prompt of a middling length here", "x", "Twelve tokens or so of text to pad",
         "The end"]
with open(sys.argv[1], "w") as f:
    for i, t in enumerate(texts):
        f.write(json.dumps({"id": f"p{i}", "prompt": t, "max_new_tokens": 8 + i % 5}) + "\n")
PY
  flexstream generate --backend cpu --model "$model" --input "$prompts" --output "$WORK/cpu.jsonl" --batch-size 8 \
    || return 1
  local policies=(
    ""
    "--percent 100 0 100 0 100 0 --gpu-batch-size 2 --num-gpu-batches 2"
    "--percent 30 40 0 100 0 100 --gpu-batch-size 2 --num-gpu-batches 3 --cpu-cache-compute"
    "--percent 0 0 0 0 0 0 --gpu-batch-size 4 --num-gpu-batches 2 --schedule row"
    "--percent 50 50 50 50 100 0 --gpu-batch-size 3 --num-gpu-batches 2 --device-mem 128m"
  )
  local failed=0 i=0
  for policy in "${policies[@]}"; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    flexstream generate --backend "$BACKEND" --model "$model" --input "$prompts" --output "$WORK/cuda-$i.jsonl" \
      --batch-size 8 --offload-dir "$WORK/offload-e2e" $policy || { failed=1; continue; }
    python3 - "$WORK/cpu.jsonl" "$WORK/cuda-$i.jsonl" "${policy:-in-memory engine}" "$BACKEND" <<'PY' || failed=1
import json, sys
def tokens(path):
    return {o["id"]: o.get("token_ids") for o in map(json.loads, open(path))}
cpu, gpu = tokens(sys.argv[1]), tokens(sys.argv[2])
same = sum(cpu[k] == gpu.get(k) for k in cpu)
print(f"{sys.argv[4]} [{sys.argv[3]}]: {same}/{len(cpu)} completions equal to the cpu backend's")
for k in cpu:
    if cpu[k] != gpu.get(k):
        print(f"  {k}: cpu {cpu[k]} {sys.argv[4]} {gpu.get(k)}")
sys.exit(0 if same == len(cpu) else 1)
PY
  done
  return "$failed"
}

stage_bench() {
  echo "== flexstream, $BACKEND backend"
  flexstream bench generate --backend "$BACKEND" --shape "$SHAPE" --batch "$BATCH" --prompt-len "$PROMPT" \
    --gen-len "$GEN" --repeat "$REPEAT" --warmup 1 2>&1 | tee "$WORK/bench-flexstream.log" || return 1
  echo "== PyTorch baseline, same workload, same machine"
  python3 native/bench_pytorch.py --shape "$SHAPE" --batch "$BATCH" --prompt-len "$PROMPT" --gen-len "$GEN" \
    --dtypes "${BENCH_DTYPES:-fp32,fp16}" --repeat 3 --warmup 1 2>&1 | tee "$WORK/bench-pytorch.log" || return 1
  python3 - "$WORK/bench-flexstream.log" "$WORK/bench-pytorch.log" <<'PY'
import json, re, sys
ours = float(re.search(r"throughput: ([0-9.]+) generated tokens/s", open(sys.argv[1]).read()).group(1))
print(f"flexstream fp32: {ours:.1f} tokens/s")
for line in open(sys.argv[2]):
    if line.startswith("RESULT "):
        r = json.loads(line[7:])
        print(f"pytorch {r['impl']} {r['dtype']}: {r['tokens_per_s']:.1f} tokens/s -> flexstream/pytorch "
              f"{ours / r['tokens_per_s']:.3f}")
PY
}

stage_offload() {
  rm -rf "$WORK/offload"
  # shellcheck disable=SC2086
  flexstream bench generate --backend "$BACKEND" --shape "$SHAPE" --batch "$BATCH" --prompt-len "$PROMPT" \
    --gen-len "$GEN" --repeat 1 --warmup 0 --percent $OFFLOAD_PERCENT --gpu-batch-size 16 --num-gpu-batches 4 \
    --device-mem "$OFFLOAD_MEM" --host-mem 64g --offload-dir "$WORK/offload"
}

# ---- driver ---------------------------------------------------------------------------------------------------
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(info fatbin tests e2e bench offload)
summary=()
status=0
for s in "${stages[@]}"; do
  if ! declare -F "stage_$s" >/dev/null; then
    echo "check-gpu: unknown stage '$s' (info fatbin tests e2e bench offload)" >&2; exit 2
  fi
  echo; echo "===== $s ====="
  start=$(date +%s)
  if "stage_$s"; then result=ok; else result=FAILED; status=1; fi
  summary+=("$(printf '%-8s %-6s %4d s' "$s" "$result" $(( $(date +%s) - start )))")
done
echo; echo "===== summary ====="
printf '%s\n' "${summary[@]}"
exit "$status"
