// Runs `node lib/main.js ...argv` in this process; on torchrun's first attempt, the rank in CRASH_RANK kills itself
// (SIGKILL, as an OOM killer would) as soon as $CRASH_AFTER exists, to test restarts that resume.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

if (process.env.TORCHELASTIC_RESTART_COUNT === "0" && process.env.RANK === process.env.CRASH_RANK) {
  const timer = setInterval(() => {
    if (fs.existsSync(process.env.CRASH_AFTER)) process.kill(process.pid, "SIGKILL");
  }, 20);
  timer.unref();
}
process.argv = [process.argv[0], path.join(__dirname, "..", "..", "..", "lib", "main.js"), ...process.argv.slice(2)];
require("../../../lib/main.js");
