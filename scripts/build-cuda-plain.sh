#!/bin/bash
# Builds ssql_cuda.node with nvcc alone (no cmake, cmake-js or npm): the fallback of scripts/gpu-check.sh on a GPU
# machine whose driver or libraries do not match the carried addon. Same sources and flags as native/CMakeLists.txt
# (hidden symbol visibility included, and --fmad=false for augment_kernels.cu: see there).
#   bash scripts/build-cuda-plain.sh OUT_DIR [NAPI_INCLUDE_DIR]
# Environment: SSQL_CUDA_ARCHS ("90", "80;90"; default: the GPUs nvidia-smi lists, else 80;90), NVCC, PYTHON
# (the interpreter whose site-packages hold the nvidia-* wheels), SSQL_JOBS (parallel compiles).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: build-cuda-plain.sh OUT_DIR [NAPI_INCLUDE_DIR]}
napi=${2:-.device/include}
mkdir -p "$out/obj"

nvcc=${NVCC:-}
if [ -z "$nvcc" ]; then
  for c in "${CUDA_HOME:-/nonexistent}/bin/nvcc" /usr/local/cuda/bin/nvcc "$(command -v nvcc || true)"; do
    [ -n "$c" ] && [ -x "$c" ] && { nvcc=$c; break; }
  done
fi
[ -n "$nvcc" ] || { echo "build-cuda-plain: no nvcc (set NVCC or CUDA_HOME)" >&2; exit 1; }

archs=${SSQL_CUDA_ARCHS:-}
if [ -z "$archs" ] && command -v nvidia-smi >/dev/null; then
  archs=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | tr -d . | sort -u | paste -sd';' || true)
fi
archs=${archs:-80;90}
gencode=""
for a in ${archs//;/ }; do gencode="$gencode -gencode=arch=compute_$a,code=[sm_$a,compute_$a]"; done

python=${PYTHON:-}
if [ -z "$python" ]; then
  for c in .venv/bin/python python3 python; do command -v "$c" >/dev/null && { python=$c; break; }; done
fi
# include/ and lib/ folders of the nvidia-* wheels (cudnn, nccl, cublas or cu13, ...), one per line.
wheel_dirs() {
  "$python" - "$1" <<'PY'
import importlib.util, os, sys
spec = importlib.util.find_spec("nvidia")
for root in (spec.submodule_search_locations if spec else []):
    for d in sorted(os.listdir(root)):
        p = os.path.join(root, d, sys.argv[1])
        if os.path.isdir(p):
            print(os.path.realpath(p))
PY
}
mapfile -t incs < <(wheel_dirs include)
mapfile -t libs < <(wheel_dirs lib)
# The toolkit's include folder (for g++ on the .cc files): nvcc may be a wrapper script, so ask it where it lives.
top=$("$nvcc" --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -1)
cuda_inc=""
for d in "${CUDA_HOME:-/nonexistent}/include" "$top/include" "$(dirname "$(dirname "$(readlink -f "$nvcc")")")/include" \
         /usr/local/cuda/include; do
  [ -f "$d/cuda_runtime.h" ] && { cuda_inc=$d; break; }
done
[ -n "$cuda_inc" ] || { echo "build-cuda-plain: cannot find cuda_runtime.h next to $nvcc (set CUDA_HOME)" >&2; exit 1; }
incs+=("$cuda_inc")
libs+=("$(dirname "$cuda_inc")/lib64" /usr/lib/x86_64-linux-gnu /usr/local/cuda/lib64)

find_lib() {  # find_lib NAME...: the first file of those names in the library folders
  for name in "$@"; do
    for d in "${libs[@]}"; do [ -e "$d/$name" ] && { echo "$d/$name"; return 0; }; done
  done
  echo "build-cuda-plain: none of $* in: ${libs[*]}" >&2
  return 1
}
cudnn=$(find_lib libcudnn.so.9 libcudnn.so)
cublas=$(find_lib libcublas.so.13 libcublas.so.12 libcublas.so)
nccl=$(find_lib libnccl.so.2 libnccl.so)

inc_flags="-I$napi"
for d in "${incs[@]}"; do inc_flags="$inc_flags -I$d"; done
defs="-DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS"
echo "build-cuda-plain: $nvcc ($("$nvcc" --version | tail -1)), archs $archs, CUDA headers $cuda_inc"
echo "build-cuda-plain: $cudnn, $cublas, $nccl"

jobs=${SSQL_JOBS:-$(nproc)}
ls native/cuda/*.cu native/cuda/*.cc | xargs -P "$jobs" -I{} sh -c '
  src={}; obj="$0/obj/$(basename "$src").o"
  case "$src" in
    *.cu) fmad=; case "$src" in *augment_kernels.cu) fmad=--fmad=false ;; esac
      "$1" -std=c++17 -O3 $fmad --extended-lambda --expt-relaxed-constexpr -Xcompiler=-fPIC,-fvisibility=hidden,-fvisibility-inlines-hidden $2 $3 $4 -c "$src" -o "$obj" ;;
    *.cc) g++ -std=c++17 -O3 -fPIC -fvisibility=hidden -fvisibility-inlines-hidden -fexceptions -Wall -Wno-sign-compare -Wno-unknown-pragmas $3 $4 -c "$src" -o "$obj" ;;
  esac || { echo "build-cuda-plain: compiling $src failed" >&2; exit 1; }
' "$out" "$nvcc" "$gencode" "$defs" "$inc_flags"

rpath=$(printf '%s\n' "$(dirname "$cudnn")" "$(dirname "$cublas")" "$(dirname "$nccl")" | sort -u | paste -sd:)
"$nvcc" -shared $gencode -cudart static -o "$out/ssql_cuda.node" "$out"/obj/*.o -Xlinker "$cudnn" -Xlinker "$cublas" \
  -Xlinker "$nccl" -Xlinker "-rpath,$rpath" -Xlinker --enable-new-dtags -ldl -lpthread -lrt
echo "build-cuda-plain: built $out/ssql_cuda.node"
