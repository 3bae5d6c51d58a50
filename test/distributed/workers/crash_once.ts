// Runs `node lib/main.js ...argv` in this process; on torchrun's first attempt, the rank in CRASH_RANK kills itself
// (SIGKILL, as an OOM killer would) as soon as $CRASH_AFTER exists, to test restarts that resume.
import * as fs from "node:fs";
import * as path from "node:path";

if (process.env.TORCHELASTIC_RESTART_COUNT === "0" && process.env.RANK === process.env.CRASH_RANK) {
  const marker = process.env.CRASH_AFTER!;
  const timer = setInterval(() => {
    if (fs.existsSync(marker)) process.kill(process.pid, "SIGKILL");
  }, 20);
  timer.unref();
}
process.argv = [process.argv[0], path.join(__dirname, "..", "..", "..", "lib", "main.js"), ...process.argv.slice(2)];
require("../../../lib/main.js");
