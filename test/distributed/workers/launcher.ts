// The launcher as its own process (so a test can signal or kill it): launches failure.js on N ranks.
import * as path from "node:path";
import { spawnWorkers } from "../../../lib/distributed/launch";

spawnWorkers(Number(process.argv[2] ?? 2), [], { script: path.join(__dirname, "failure.js"), gracePeriodMs: 2000 }).then((r) => process.exit(r.exitCode));
