#!/bin/sh
# Prepares .device/ (git-ignored) for scripts/gpu-check.sh on a GPU machine that has python3, PyTorch, the nvidia-*
# wheels and nvcc but possibly no Node.js and no package registry:
#   .device/bin/node.xz          this machine's node binary (official builds are self-contained)
#   .device/addons/              ssql_cpu.node, ssql_cuda.node
#   .device/lib/                 shared libraries the CPU addon links that the GPU machine may lack (oneDNN, libgomp)
#   .device/compat/              libstdc++ of this machine, used there only if an addon fails to load without it
#   .device/include/             Node-API headers for the fallback nvcc build (scripts/build-cuda-plain.sh)
#   .device/js/                  compiled lib/ and the plain-node GPU runner (tsconfig.gpu.json)
# Run from anywhere: sh scripts/gpu-pack.sh   (builds missing addons first; fails above 60 MiB)
set -eu
cd "$(dirname "$0")/.."

# configure re-reads binding.gyp's source glob (new .cc files); the build itself is incremental.
npx node-gyp configure >/dev/null && npx node-gyp build >/dev/null
node scripts/build-cuda.js
node -e '
  const cpu = require("./build/Release/ssql_cpu.node");
  const missing = ["conv2d", "batchNorm", "matmul", "maxPool2d", "crossEntropy", "uniform", "sgdStep_"].filter((k) => !(k in cpu));
  console.log(`gpu-pack: CPU addon exports ${Object.keys(cpu).length} names` +
    (missing.length ? `; it lacks ${missing.join(", ")}: those CUDA ops will be checked against the JS references only` : ""));'
[ -f build-cuda/Release/ssql_cuda.node ] || { echo "gpu-pack: build-cuda/Release/ssql_cuda.node is missing (no nvcc?)" >&2; exit 1; }

rm -rf .device
mkdir -p .device/bin .device/addons .device/lib .device/compat .device/include

echo "gpu-pack: compressing node $(node --version)"
xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > .device/bin/node.xz

cp build/Release/ssql_cpu.node build-cuda/Release/ssql_cuda.node .device/addons/
# Libraries of the CPU addon outside glibc/libstdc++ (oneDNN and its OpenMP runtime), xz-compressed when large.
for lib in $(ldd build/Release/ssql_cpu.node | awk '$3 ~ /^\// && $1 !~ /^(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|ld-linux-x86-64)\.so/ {print $3}'); do
  cp -L "$lib" ".device/lib/$(basename "$lib")"
done
if [ -e /usr/lib/x86_64-linux-gnu/libgomp.so.1 ]; then cp -L /usr/lib/x86_64-linux-gnu/libgomp.so.1 .device/lib/; fi
for f in .device/lib/*; do
  if [ "$(stat -c %s "$f")" -gt 4000000 ]; then xz -T0 -6 "$f"; fi
done
cp -L "$(g++ -print-file-name=libstdc++.so.6)" .device/compat/

cp node_modules/node-api-headers/include/*.h node_modules/node-addon-api/napi*.h .device/include/

echo "gpu-pack: compiling TypeScript (tsconfig.gpu.json)"
npx tsc -p tsconfig.gpu.json
cp package.json .device/js/
# Runtime npm dependencies of lib/ (the GPU machine has no registry).
mkdir -p .device/js/node_modules
for dep in $(node -p 'Object.keys(require("./package.json").dependencies).filter((d) => d !== "node-addon-api").join(" ")'); do
  cp -r "node_modules/$dep" .device/js/node_modules/
done

size=$(du -sm .device | cut -f1)
du -sh .device/* .device
if [ "$size" -ge 60 ]; then
  echo "gpu-pack: .device is ${size} MiB, over the 60 MiB budget" >&2
  exit 1
fi
echo "gpu-pack: ready (${size} MiB). Device command: bash scripts/gpu-check.sh   carry: [\".device\"]"
