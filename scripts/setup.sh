#!/bin/sh
# Installs whatever the trainer needs and is missing on a Debian 12 machine; cheap when all is there.
#   sh scripts/setup.sh            system packages, npm packages, native addon, compiled TypeScript
#   sh scripts/setup.sh --python   also the Python venv with the PyTorch reference (fixtures, benchmarks)
#   sh scripts/setup.sh --cuda     also the cuDNN/NCCL/cuBLAS wheels the CUDA addon compiles against
set -e
cd "$(dirname "$0")/.."

want_python=0
want_cuda=0
for arg in "$@"; do
  case "$arg" in
    --python) want_python=1 ;;
    --cuda) want_python=1; want_cuda=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=""
for pkg in libdnnl-dev libgloo-dev dataset-fashion-mnist libjpeg62-turbo-dev libpng-dev python3-venv; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y $missing || { $sudo apt-get update && $sudo apt-get install -y $missing; }
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ ! -f build/Release/ssql_cpu.node ]; then
  echo "setup: npm ci (builds the CPU addon and the TypeScript)"
  # onnxruntime-node ships its CPU binaries in the package; skip its optional download of CUDA EP libraries (nuget).
  ONNXRUNTIME_NODE_INSTALL=skip npm ci
else
  # An addon older than its sources would run the old ops silently: rebuild it.
  if [ -n "$(find native/core native/cpu binding.gyp -newer build/Release/ssql_cpu.node -type f | head -n 1)" ]; then
    echo "setup: native sources changed since the CPU addon was built: node-gyp rebuild"
    npx node-gyp rebuild -j 2
  fi
  npx tsc -p tsconfig.json
fi

if [ "$want_python" = 1 ] && ! .venv/bin/python -c "import torch, PIL" 2>/dev/null; then
  echo "setup: Python venv with the PyTorch CPU reference (and Pillow, the original's image library) in .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --retries 1 --timeout 15 "torch==2.13.0+cpu" numpy==2.4.6 pillow==12.3.0
fi
if [ "$want_python" = 1 ] && ! .venv/bin/python -c "import onnx, onnxruntime" 2>/dev/null; then
  echo "setup: onnx and onnxruntime in .venv (checks of the exported ONNX models)"
  .venv/bin/pip install -q --retries 1 --timeout 15 onnx==1.23.1 onnxruntime==1.30.0
fi
# TensorBoard's event reader checks the event files the trainer writes (test/unit/tensorboard.test.ts).
if [ "$want_python" = 1 ] && ! .venv/bin/python -c "import tensorboard" 2>/dev/null; then
  .venv/bin/pip install -q --retries 1 --timeout 15 tensorboard==2.21.0 || echo "setup: tensorboard not installed; its read-back test will skip"
fi
if [ "$want_cuda" = 1 ] && [ ! -d .venv/lib/python3*/site-packages/nvidia/cudnn ]; then
  echo "setup: cuDNN, NCCL and cuBLAS wheels in .venv"
  .venv/bin/pip install -q --retries 1 --timeout 15 nvidia-cudnn-cu13==9.24.0.43 nvidia-nccl-cu13==2.30.7 nvidia-cublas==13.1.1.3
fi
