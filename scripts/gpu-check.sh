#!/bin/bash
# The GPU check, run on a lent GPU machine from the repository root with .device/ carried (sh scripts/gpu-pack.sh
# prepares it; DEVELOPERS.md has the device command):
#   bash scripts/gpu-check.sh
# 1. prints the machine (nvidia-smi, PyTorch, nvcc, glibc), unpacks node, points LD_LIBRARY_PATH at the nvidia-*
#    wheels found through python3 and at the carried libraries;
# 2. loads both addons; if ssql_cuda.node cannot load or use the GPU, prints ldd and the error and rebuilds it with
#    this machine's nvcc (scripts/build-cuda-plain.sh);
# 3. `ssql info`, the shared op cases on CUDA vs CPU and the JS references, the CUDA checks;
# 4. the quantization ops on CUDA vs the CPU ops; augmentBatch on CUDA vs the CPU op and the GPU loader path, and
#    GPU augmentation throughput (32 and 224 px); fake-quant fwd/bwd timings, ours and PyTorch's;
# 5. the NCCL process group through lib/distributed (one rank) and all-reduce timings, ours and PyTorch's;
# 6. whole SSQL_SimSiam and SimSiam training steps (CIFAR ResNet-18, batch 256 per view), ours and PyTorch's;
# 7. conv2d fwd/bwd on ResNet-18 CIFAR layer shapes at batch 256, ours and PyTorch eager (same GPU, same run);
# 8. writes $OUT/gpu-check.json (plus every step's own JSON and this log) and prints the summary.
# Every step has a time limit and runs whatever happened before it; all steps together stay within
# SSQL_CHECK_BUDGET seconds (default 540: a step gets at most what is left, keeping time for the summary).
# Environment: OUT, PYTHON, SSQL_FORCE_REBUILD=1, SSQL_CHECK_BUDGET.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
DEV=$ROOT/.device
OUT=${OUT:-$ROOT/out-gpu}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
# Inside the copied tree rather than /tmp, which may be mounted noexec.
WORK=$DEV/work
rm -rf "$WORK" && mkdir -p "$WORK"
T0=$(date +%s)
STEPS=$OUT/steps.jsonl
: > "$STEPS"
NOTES=$OUT/notes.txt
: > "$NOTES"

note() { echo "$*" | tee -a "$NOTES"; }

BUDGET=${SSQL_CHECK_BUDGET:-540}
SUMMARY_RESERVE=20

# step NAME LIMIT CMD...: runs CMD under a time limit (cut to what is left of the budget) and records its exit
# status; never stops the script. A step with under 10 s left is skipped (recorded with rc 125).
step() {
  local name=$1 limit=$2
  shift 2
  local start left
  # SSQL_CHECK_ONLY="step-ours quant": run just those steps (and the summary).
  case " ${SSQL_CHECK_ONLY:-$name} summary " in *" $name "*) ;; *) return 125 ;; esac
  start=$(date +%s)
  left=$((T0 + BUDGET - start))
  [ "$name" != summary ] && left=$((left - SUMMARY_RESERVE))
  if [ "$left" -lt 10 ]; then
    echo "=== $name: skipped (budget of ${BUDGET}s spent)"
    printf '{"step": "%s", "rc": 125, "seconds": 0, "skipped": true}\n' "$name" >> "$STEPS"
    return 125
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo
  echo "=== $name (limit ${limit}s, t+$((start - T0))s)"
  timeout --kill-after=10 "$limit" "$@"
  local rc=$?
  local secs=$(($(date +%s) - start))
  echo "=== $name: exit $rc after ${secs}s"
  printf '{"step": "%s", "rc": %d, "seconds": %d}\n' "$name" "$rc" "$secs" >> "$STEPS"
  return $rc
}

echo "=== machine"
nvidia-smi || note "nvidia-smi failed"
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3 python; do command -v "$c" >/dev/null && { PY=$c; break; }; done
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'gpu available', torch.cuda.is_available())" 2>&1 | tail -1
NVCC=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
[ -n "$NVCC" ] && echo "nvcc: $NVCC $("$NVCC" --version | tail -1)" || note "no nvcc on this machine"
echo "glibc: $(ldd --version 2>&1 | head -1)"

echo "=== unpacking node and libraries"
mkdir -p "$WORK/lib"
unxz_to() {  # unxz_to SRC DST, with python's lzma where xz is missing
  if command -v xz >/dev/null; then xz -dc "$1" > "$2"
  else "$PY" -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$1" "$2"; fi
}
unxz_to "$DEV/bin/node.xz" "$WORK/node" && chmod +x "$WORK/node"
for f in "$DEV"/lib/*; do
  case "$f" in
    *.xz) b=$(basename "$f" .xz); unxz_to "$f" "$WORK/lib/$b" ;;
    *) cp "$f" "$WORK/lib/" ;;
  esac
done
WHEEL_LIBS=$("$PY" - <<'PY'
import importlib.util, os
spec = importlib.util.find_spec("nvidia")
dirs = []
for root in (spec.submodule_search_locations if spec else []):
    for d in sorted(os.listdir(root)):
        p = os.path.join(root, d, "lib")
        if os.path.isdir(p):
            dirs.append(p)
try:  # a PyTorch that bundles cuDNN/NCCL in torch/lib instead of using the wheels
    import torch
    dirs.append(os.path.join(os.path.dirname(torch.__file__), "lib"))
except Exception:
    pass
print(":".join(dirs))
PY
)
[ -n "$WHEEL_LIBS" ] || note "no nvidia-* wheel library folders found through $PY"
export LD_LIBRARY_PATH="$WORK/lib${WHEEL_LIBS:+:$WHEEL_LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
NODE_LIBPATH=$LD_LIBRARY_PATH
write_node_wrapper() {
  printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec "%s" "$@"\n' "$NODE_LIBPATH" "$WORK/node" > "$WORK/nodew"
  chmod +x "$WORK/nodew"
}
write_node_wrapper
"$WORK/nodew" --version || note "node does not run here"

# probe ADDON: loads it; for the CUDA addon also asks cudaAvailable(). Exit 0 when usable.
probe() {
  "$WORK/nodew" -e '
    const m = require(process.argv[1]);
    const why = typeof m.cudaAvailable === "function" ? m.cudaAvailable() : null;
    if (why) { console.log("loaded, but CUDA is unavailable: " + why); process.exit(3); }
    console.log("loaded " + process.argv[1] + " (" + m.device + ")");' "$1"
}

echo "=== loading the addons"
export SSQL_CPU_ADDON=$DEV/addons/ssql_cpu.node
export SSQL_CUDA_ADDON=$DEV/addons/ssql_cuda.node
if ! probe "$SSQL_CPU_ADDON"; then
  ldd "$SSQL_CPU_ADDON" | sed 's/^/  ldd: /'
  NODE_LIBPATH="$DEV/compat:$LD_LIBRARY_PATH"
  write_node_wrapper
  if probe "$SSQL_CPU_ADDON"; then note "CPU addon loads only with the carried libstdc++ (.device/compat)"
  else NODE_LIBPATH=$LD_LIBRARY_PATH; write_node_wrapper; note "CPU addon does not load: CUDA is compared with the JS references only"; fi
fi
CUDA_ADDON_SOURCE=carried
probe_out=$(probe "$SSQL_CUDA_ADDON" 2>&1)
probe_rc=$?
echo "$probe_out" | tail -5
rebuild=0
if [ "${SSQL_FORCE_REBUILD:-0}" = 1 ]; then rebuild=1; note "SSQL_FORCE_REBUILD=1: rebuilding the CUDA addon"
elif [ $probe_rc != 0 ]; then
  echo "--- ldd of the carried ssql_cuda.node:"
  ldd "$SSQL_CUDA_ADDON" | sed 's/^/  /'
  # A rebuild helps when the addon does not fit this machine (driver, library versions, glibc), not without a GPU.
  if echo "$probe_out" | grep -q "no CUDA device is visible\|no NVIDIA driver\|cudaErrorNoDevice"; then note "no usable GPU here: not rebuilding"
  else rebuild=1; note "carried CUDA addon unusable here: rebuilding with $NVCC"; fi
fi
if [ $rebuild = 1 ]; then
  if [ -n "$NVCC" ] && NVCC=$NVCC PYTHON=$PY step rebuild-cuda-addon 300 bash scripts/build-cuda-plain.sh "$WORK/build-cuda" "$DEV/include"; then
    export SSQL_CUDA_ADDON=$WORK/build-cuda/ssql_cuda.node
    CUDA_ADDON_SOURCE=rebuilt
    probe "$SSQL_CUDA_ADDON" || { ldd "$SSQL_CUDA_ADDON" | sed 's/^/  /'; note "the rebuilt CUDA addon is unusable too"; }
  else
    note "rebuild failed or impossible"
  fi
fi
echo "cuda addon: $CUDA_ADDON_SOURCE ($SSQL_CUDA_ADDON)"
printf '{"cuda_addon": "%s", "cuda_addon_path": "%s", "python": "%s", "nvcc": "%s"}\n' "$CUDA_ADDON_SOURCE" \
  "$SSQL_CUDA_ADDON" "$PY" "$NVCC" > "$OUT/gpu-env.json"

CHECK="$DEV/js/test/gpu/check.js"
step info 30 "$WORK/nodew" "$DEV/js/lib/main.js" info
step ops 150 "$WORK/nodew" "$CHECK" ops --out "$OUT/gpu-ops.json"
step quant 60 "$WORK/nodew" "$CHECK" quant --out "$OUT/gpu-quant.json"
step augment 60 "$WORK/nodew" "$CHECK" augment --out "$OUT/gpu-augment.json"
step aug-bench 60 "$WORK/nodew" "$CHECK" augbench --out "$OUT/gpu-augbench.json"
step fq-ours 60 "$WORK/nodew" "$CHECK" fqbench --out "$OUT/gpu-fq-ours.json"
step fq-torch 60 "$PY" test/gpu/torch_fq_bench.py --out "$OUT/gpu-fq-torch.json"
step nccl-ours 60 "$WORK/nodew" "$CHECK" nccl --out "$OUT/gpu-nccl.json"
step nccl-torch 45 "$PY" test/gpu/torch_nccl_bench.py --out "$OUT/gpu-nccl-torch.json"
STEP_CONFIGS=configs/cifar/resnet18_ssql_simsiam_cifar.yaml,configs/cifar/resnet18_simsiam_cifar.yaml
step step-ours 150 "$WORK/nodew" "$CHECK" step --configs "$STEP_CONFIGS" --batch 256 --steps 10 --warmup 3 --out "$OUT/gpu-step-ours.json"
step step-torch 120 "$PY" bench/torch_ssql_step.py --batch 256 --steps 10 --warmup 3 --out "$OUT/gpu-step-torch.json"
SHAPES=test/gpu/resnet18-cifar-convs.json
step bench-ours 120 "$WORK/nodew" "$CHECK" bench --shapes "$SHAPES" --out "$OUT/gpu-bench-ours.json"
step bench-torch 90 "$PY" test/gpu/torch_conv_bench.py --shapes "$SHAPES" --out "$OUT/gpu-bench-torch.json"
step summary 30 "$PY" test/gpu/summarize.py "$OUT"
echo "=== done in $(($(date +%s) - T0))s; results in $OUT/gpu-check.json"
rm -rf "$WORK"
