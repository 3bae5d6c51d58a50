// Builds build-cuda/Release/ssql_cuda.node with cmake-js: finds nvcc and the cuDNN/cuBLAS/NCCL folders
// (explicit *_ROOT variables, a CUDA install, or the pip nvidia-* wheels), then configures and builds.
// Without nvcc it says why in one line and exits 0, so `npm run build:native` works on CPU-only machines.
//   SSQL_CUDA_ARCHS="80;90"   GPU architectures (default 80;90)
//   CUDA_HOME / CUDA_PATH     the CUDA toolkit; CUDNN_ROOT, NCCL_ROOT, CUBLAS_ROOT: library installs
"use strict";
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { spawnSync } = require("node:child_process");

const root = path.resolve(__dirname, "..");
const outDir = path.join(root, "build-cuda");

function isFile(p) {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function findNvcc() {
  const candidates = [];
  for (const v of ["CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"]) if (process.env[v]) candidates.push(path.join(process.env[v], "bin", "nvcc"));
  candidates.push("/usr/local/cuda/bin/nvcc");
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) if (dir) candidates.push(path.join(dir, "nvcc"));
  return candidates.find(isFile);
}

/** site-packages folders of the repo's venv and of the python3 on PATH, where pip puts nvidia/<lib>/{lib,include}. */
function sitePackages() {
  const dirs = new Set();
  const venvLib = path.join(root, ".venv", "lib");
  if (fs.existsSync(venvLib))
    for (const py of fs.readdirSync(venvLib)) dirs.add(path.join(venvLib, py, "site-packages"));
  for (const python of [path.join(root, ".venv", "bin", "python"), "python3"]) {
    const r = spawnSync(python, ["-c", "import site,sys; print('\\n'.join(site.getsitepackages() + [site.getusersitepackages()]))"], {
      encoding: "utf8",
    });
    if (r.status === 0) for (const line of r.stdout.split("\n")) if (line.trim()) dirs.add(line.trim());
  }
  // Real paths, so the run path embedded in the addon survives a symlinked .venv.
  const real = [...dirs].filter((d) => fs.existsSync(path.join(d, "nvidia"))).map((d) => fs.realpathSync(d));
  return [...new Set(real)];
}

/** lib/ and include/ folders of every nvidia-* wheel found (cudnn, nccl, cublas or cu13, ...). */
function wheelFolders() {
  const libs = [];
  const incs = [];
  for (const sp of sitePackages()) {
    const nv = path.join(sp, "nvidia");
    for (const name of fs.readdirSync(nv)) {
      const lib = path.join(nv, name, "lib");
      const inc = path.join(nv, name, "include");
      if (fs.existsSync(lib)) libs.push(lib);
      if (fs.existsSync(inc)) incs.push(inc);
    }
  }
  return { libs, incs };
}

function main() {
  const nvcc = findNvcc();
  if (!nvcc) {
    console.log("CUDA addon: skipped (no nvcc in CUDA_HOME, /usr/local/cuda/bin or PATH)");
    return 0;
  }
  const cudaHome = path.dirname(path.dirname(fs.realpathSync(nvcc)));
  const { libs, incs } = wheelFolders();
  const archs = process.env.SSQL_CUDA_ARCHS || "80;90";
  const cmakeJs = path.join(root, "node_modules", "cmake-js", "bin", "cmake-js");
  if (!isFile(cmakeJs)) {
    console.error("CUDA addon: cmake-js is missing from node_modules; run 'npm ci' first");
    return 1;
  }
  const napiDir = require(path.join(root, "node_modules", "node-addon-api")).include_dir.replace(/"/g, "");
  const defs = {
    CMAKE_CUDA_COMPILER: nvcc,
    CUDAToolkit_ROOT: cudaHome,
    CMAKE_CUDA_ARCHITECTURES: archs,
    NODE_ADDON_API_DIR: path.resolve(root, napiDir),
    SSQL_LIB_DIRS: libs.join(";"),
    SSQL_INCLUDE_DIRS: incs.join(";"),
  };
  const common = ["-O", outDir, "-d", path.join(root, "native"), "--log-level", "warn"];
  const cd = Object.entries(defs).map(([k, v]) => `--CD${k}=${v}`);
  console.log(`CUDA addon: nvcc ${nvcc}, architectures ${archs}, ${libs.length} wheel library folders`);
  // `configure` always re-runs cmake, so changed -D values reach an existing build folder; `build` is incremental.
  const steps = [
    ["configure", [...common, ...cd]],
    ["build", [...common, "--parallel", String(Math.max(1, os.availableParallelism?.() ?? os.cpus().length))]],
  ];
  for (const [cmd, args] of steps) {
    const r = spawnSync(process.execPath, [cmakeJs, cmd, ...args], { cwd: root, stdio: "inherit" });
    if (r.status !== 0) {
      console.error(`CUDA addon: cmake-js ${cmd} failed (exit ${r.status ?? r.signal}).`);
      console.error(hint(cmd));
      return 1;
    }
  }
  const built = path.join(outDir, "Release", "ssql_cuda.node");
  if (!isFile(built)) {
    console.error(`CUDA addon: the build reported success but ${built} is missing`);
    return 1;
  }
  console.log(`CUDA addon: built ${path.relative(root, built)}`);
  return 0;
}

function hint(step) {
  if (step === "configure")
    return [
      "hint: configure fails when cmake (>= 3.18) is missing, nvcc cannot compile for SSQL_CUDA_ARCHS, or cuDNN/cuBLAS/NCCL",
      "      are not found: 'sh scripts/setup.sh --cuda' installs the pip wheels into .venv, or set CUDNN_ROOT/NCCL_ROOT/",
      "      CUBLAS_ROOT to installs with include/ and lib/. A stale cache clears with 'rm -rf build-cuda'.",
    ].join("\n");
  return [
    "hint: a compile error names the file above; an 'unsupported gpu architecture' error means SSQL_CUDA_ARCHS lists",
    "      an architecture this nvcc cannot target (e.g. SSQL_CUDA_ARCHS=80 for older toolkits); link errors about",
    "      cudnn/cublas/nccl mean a library folder lacks the .so (check the paths printed by configure).",
  ].join("\n");
}

process.exitCode = main();
