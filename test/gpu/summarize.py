"""Merges the GPU check's step outputs into OUT/gpu-check.json and prints the summary (python3 test/gpu/summarize.py OUT)."""
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except Exception as e:  # a missing step output is reported, not fatal
        return {"missing": f"{os.path.basename(path)}: {e}"}


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return f"{v:.1e}"


def main():
    out = sys.argv[1]
    steps = []
    if os.path.exists(os.path.join(out, "steps.jsonl")):
        steps = [json.loads(line) for line in open(os.path.join(out, "steps.jsonl")) if line.strip()]
    notes = open(os.path.join(out, "notes.txt")).read().splitlines() if os.path.exists(os.path.join(out, "notes.txt")) else []
    env = load(os.path.join(out, "gpu-env.json"))
    ops = load(os.path.join(out, "gpu-ops.json"))
    ours = load(os.path.join(out, "gpu-bench-ours.json"))
    torch = load(os.path.join(out, "gpu-bench-torch.json"))

    print("=== summary")
    print("steps: " + ", ".join(f"{s['step']}={s['rc']} ({s['seconds']}s)" for s in steps))
    for n in notes:
        print("note: " + n)
    print(f"cuda addon: {env.get('cuda_addon', '?')}")
    summary = ops.get("summary")
    if summary:
        checks = ops.get("checks", [])
        print(f"op cases: {summary.get('casesPassed')}/{summary.get('cases')} pass; ops failing: {summary.get('opsFailing') or 'none'}; "
              f"checks: {sum(1 for c in checks if c['ok'])}/{len(checks)} pass" + ("" if "checks" in summary else " (incomplete run)"))
        print("per op (worst normalized error: CUDA vs CPU / CUDA vs JS reference):")
        items = sorted(ops.get("perOp", {}).items())
        line = []
        for name, p in items:
            line.append(f"{'ok' if p['ok'] else 'FAIL'} {name} {fmt(p.get('vsCpu'))}/{fmt(p.get('vsReference'))}")
        for i in range(0, len(line), 3):
            print("  " + " | ".join(line[i:i + 3]))
        for c in ops.get("cases", []):
            if not c.get("ok"):
                print(f"  FAILED case {c['name']}: {c.get('error') or ''}")
                for k, e in (c.get("vsReference") or {}).items():
                    print(f"      {k}: cpu {fmt((c.get('vsCpu') or {}).get(k))} ref {fmt(e)}")
        for c in ops.get("checks", []):
            print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['name']}: {c['detail'][:300]}")
    else:
        print(f"op cases: no result ({ops.get('missing') or ops.get('cuda')})")

    comparison = []
    by_name = {r["name"]: r for r in torch.get("layers", [])}
    tot = {"ours": 0.0, "torch": 0.0}
    complete = True
    if ours.get("layers"):
        print(f"conv2d, batch {ours.get('batch')}, ms per call (ours / PyTorch {torch.get('torch', '?')}, "
              f"cuDNN {torch.get('cudnn', '?')}); ratio = ours / PyTorch:")
        for r in ours["layers"]:
            t = by_name.get(r["name"], {})
            row = {"name": r["name"], "count": r.get("count", 1)}
            cells = []
            for p in ("fwd_ms", "bwd_data_ms", "bwd_weight_ms"):
                a, b = r.get(p), t.get(p)
                row[p] = {"ours": a, "torch": b, "ratio": (a / b) if a and b else None}
                if a and b:
                    tot["ours"] += a * row["count"]
                    tot["torch"] += b * row["count"]
                    cells.append(f"{a:.3f}/{b:.3f} ({a / b:.2f}x)")
                else:
                    complete = False
                    cells.append(f"{a}/{b}")
            row["peak_bytes"] = {"ours": r.get("peak_bytes"), "torch": t.get("peak_bytes")}
            comparison.append(row)
            peak = row["peak_bytes"]
            mem = f"{(peak['ours'] or 0) / 2**20:.0f}/{(peak['torch'] or 0) / 2**20:.0f} MiB" if peak["ours"] else "-"
            print(f"  {r['name']:22} fwd {cells[0]:24} bwd-data {cells[1]:24} bwd-weight {cells[2]:24} peak {mem}"
                  + (f"  ERROR {r['error'][:120]}" if r.get("error") else ""))
        if tot["torch"]:
            print(f"  whole ResNet-18 conv stack (fwd + both bwd, weighted by count): ours {tot['ours']:.2f} ms, "
                  f"PyTorch {tot['torch']:.2f} ms, ratio {tot['ours'] / tot['torch']:.2f}x" + ("" if complete else " (incomplete)"))
        print(f"fake quant: {ours.get('fake_quant')}")
    else:
        print(f"conv benchmark: no result ({ours.get('missing')})")

    result = {"steps": steps, "notes": notes, "env": env, "ops": ops, "bench": {
        "ours": ours, "torch": torch, "comparison": comparison,
        "total_ms": tot, "total_ratio": (tot["ours"] / tot["torch"]) if tot["torch"] else None}}
    with open(os.path.join(out, "gpu-check.json"), "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
