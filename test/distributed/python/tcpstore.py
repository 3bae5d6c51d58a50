"""A real torch.distributed.TCPStore for the tests of lib/distributed/c10d_store.ts.

usage: tcpstore.py serve [--classic]    serve a store on a free loopback port, print {"port": P}, then run the
                                        commands read from stdin one per line (a torch client's side of the
                                        interop checks) and print one JSON answer per command; EOF stops it.
Commands: "get KEY" (the value, as text), "set KEY VALUE", "add KEY N", "check KEY".
"""
import json
import sys
from datetime import timedelta

import torch.distributed as dist


def main() -> None:
    classic = "--classic" in sys.argv
    server = dist.TCPStore("127.0.0.1", 0, None, True, timedelta(seconds=30), wait_for_workers=False, use_libuv=not classic)
    client = dist.TCPStore("127.0.0.1", server.port, None, False, timedelta(seconds=10), wait_for_workers=False)
    print(json.dumps({"port": server.port, "torch": __import__("torch").__version__}), flush=True)
    for line in sys.stdin:
        parts = line.rstrip("\n").split(" ", 2)
        op = parts[0]
        if op == "get":
            out = client.get(parts[1]).decode("utf8")
        elif op == "set":
            client.set(parts[1], parts[2])
            out = "ok"
        elif op == "add":
            out = client.add(parts[1], int(parts[2]))
        elif op == "check":
            out = client.check([parts[1]])
        else:
            out = f"unknown command {op}"
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
