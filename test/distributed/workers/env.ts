// Prints the launcher's variables as one JSON line (and a line on stderr), then exits.
const keys = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT", "OMP_NUM_THREADS"];
console.log(JSON.stringify(Object.fromEntries(keys.map((k) => [k, process.env[k]]))));
console.error(`rank ${process.env.RANK} says hello\nand goodbye`);
