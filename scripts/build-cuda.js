// Builds ssql_cuda.node with cmake-js when a CUDA toolchain is present; otherwise says why in one line.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
if (!fs.existsSync(path.join(root, "native", "CMakeLists.txt"))) {
  console.log("CUDA addon: skipped (native/CMakeLists.txt is not present)");
  process.exit(0);
}
require("./build-cuda-impl.js");
