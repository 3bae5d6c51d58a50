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
    quant = load(os.path.join(out, "gpu-quant.json"))
    fq = {"ours": load(os.path.join(out, "gpu-fq-ours.json")), "torch": load(os.path.join(out, "gpu-fq-torch.json"))}
    nccl = {"ours": load(os.path.join(out, "gpu-nccl.json")), "torch": load(os.path.join(out, "gpu-nccl-torch.json"))}
    step = {"ours": load(os.path.join(out, "gpu-step-ours.json")), "torch": load(os.path.join(out, "gpu-step-torch.json"))}
    augment = {"checks": load(os.path.join(out, "gpu-augment.json")), "bench": load(os.path.join(out, "gpu-augbench.json"))}

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
    else:
        print(f"conv benchmark: no result ({ours.get('missing')})")

    if quant.get("checks") is not None:
        qc = quant["checks"]
        print(f"quantization ops, CUDA vs CPU: {sum(1 for c in qc if c['ok'])}/{len(qc)} checks pass")
        for c in qc:
            print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['name']}: {c['detail'][:300]}")
    else:
        print(f"quantization checks: no result ({quant.get('missing')})")

    summarize_augment(augment)
    fq_cmp = summarize_fq(fq)
    step_cmp = summarize_steps(step)
    nccl_cmp = summarize_nccl(nccl)

    result = {"steps": steps, "notes": notes, "env": env, "ops": ops, "bench": {
        "ours": ours, "torch": torch, "comparison": comparison,
        "total_ms": tot, "total_ratio": (tot["ours"] / tot["torch"]) if tot["torch"] else None},
        "quant": quant, "fake_quant_bench": dict(fq, comparison=fq_cmp),
        "ssl_step": dict(step, comparison=step_cmp), "nccl": dict(nccl, comparison=nccl_cmp), "augment": augment}
    with open(os.path.join(out, "gpu-check.json"), "w") as f:
        json.dump(result, f, indent=2)


def summarize_augment(augment):
    checks, bench = augment["checks"], augment["bench"]
    if checks.get("checks") is not None:
        cs = checks["checks"]
        print(f"augmentBatch on CUDA vs the CPU op: {sum(1 for c in cs if c['ok'])}/{len(cs)} checks pass")
        for c in cs:
            print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['name']}: {c['detail'][:400]}")
    else:
        print(f"augmentation checks: no result ({checks.get('missing')})")
    if bench.get("rows") is None:
        print(f"augmentation throughput: no result ({bench.get('missing')})")
        return
    print(f"GPU augmentation, SSL two-view pipeline, source images/s (device copy bandwidth {bench.get('copy_gbps') or 0:.0f} GB/s):")
    for r in bench["rows"]:
        if r.get("error"):
            print(f"  {r['name']}: ERROR {r['error'][:200]}")
            continue
        print(f"  {r['name']}, batch {r['batch']}: op {r['op_images_per_s']:.0f} ({r['op_ms']:.2f} ms, {100 * r['op_of_copy']:.0f}% of copy "
              f"bandwidth); loader path {r['loader_images_per_s']:.0f} ({r['loader_ms']:.2f} ms); CPU pool x{r['cpu_threads']} "
              f"{r['cpu_images_per_s']:.0f}; loader path / CPU {r['cpu_ms'] / r['loader_ms']:.1f}x")


def summarize_fq(fq):
    ours, torch = fq["ours"], fq["torch"]
    if not ours.get("rows"):
        print(f"fake-quant benchmark: no result ({ours.get('missing')})")
        return []
    by_key = {r.get("key"): r for r in torch.get("rows", [])}
    print(f"fake quant, ms per call (ours / PyTorch {torch.get('torch', '?')}), GB/s and share of each side's copy bandwidth "
          f"(ours {ours.get('copy_gbps') or 0:.0f}, PyTorch {torch.get('copy_gbps') or 0:.0f} GB/s):")
    rows = []
    for r in ours["rows"]:
        t = by_key.get(r.get("key"), {})
        row = {"name": r["name"], "ours_ms": r.get("ms"), "torch_ms": t.get("ms"), "ours_of_copy": r.get("ofCopy"),
               "torch_of_copy": t.get("ofCopy"), "ratio": (r["ms"] / t["ms"]) if r.get("ms") and t.get("ms") else None}
        rows.append(row)
        cell = lambda ms, share: "-" if not ms else f"{ms:.4f} ms ({100 * (share or 0):.0f}%)"
        print(f"  {r['name'][:84]:84} {cell(r.get('ms'), r.get('ofCopy')):>18} / {cell(t.get('ms'), t.get('ofCopy')):>18}"
              + (f"  {row['ratio']:.2f}x" if row["ratio"] else "") + (f"  ERROR {r['error'][:100]}" if r.get("error") else ""))
    return rows


def summarize_steps(step):
    ours, torch = step["ours"], step["torch"]
    if not ours.get("rows"):
        print(f"training step benchmark: no result ({ours.get('missing')})")
        return []
    by_method = {r.get("method"): r for r in torch.get("rows", [])}
    print(f"training step, CIFAR ResNet-18, ours / PyTorch {torch.get('torch', '?')} (same GPU, TF32 off):")
    rows = []
    for r in ours["rows"]:
        t = by_method.get(r.get("method"), {})
        row = {"method": r.get("method"), "batch": r.get("batch"), "ours_ms": r.get("step_ms"), "torch_ms": t.get("step_ms"),
               "ours_peak_bytes": r.get("peak_bytes"), "torch_peak_bytes": t.get("peak_bytes"),
               "ratio": (r["step_ms"] / t["step_ms"]) if r.get("step_ms") and t.get("step_ms") else None,
               "ours_phases_ms": r.get("phases_ms"), "torch_phases_ms": t.get("phases_ms")}
        rows.append(row)
        if r.get("error"):
            print(f"  {r.get('method')}: ours ERROR {r['error'][:200]}")
            continue
        mib = lambda b: f"{b / 2**20:.0f} MiB" if b else "-"
        ph = lambda p: "/".join(f"{p[k]:.0f}" for k in ("forward", "backward", "sgd")) if p else "-"
        print(f"  {r['method']:14} batch {r['batch']}/view: {r['step_ms']:.1f} / {t.get('step_ms') or float('nan'):.1f} ms per step"
              + (f" ({row['ratio']:.2f}x)" if row["ratio"] else "")
              + f"; fwd/bwd/sgd {ph(r.get('phases_ms'))} / {ph(t.get('phases_ms'))} ms; peak {mib(r.get('peak_bytes'))} / "
              f"{mib(t.get('peak_bytes'))}; loss {r.get('loss')} / {t.get('loss')}" + (f"  torch ERROR {t['error'][:120]}" if t.get("error") else ""))
    return rows


def summarize_nccl(nccl):
    ours, torch = nccl["ours"], nccl["torch"]
    if ours.get("checks") is None:
        print(f"NCCL process group: no result ({ours.get('missing')})")
        return []
    checks = ours["checks"]
    print(f"NCCL process group (lib/dist, one rank): {sum(1 for c in checks if c['ok'])}/{len(checks)} checks pass")
    for c in checks:
        print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['name']}: {c['detail'][:200]}")
    by_bytes = {r["bytes"]: r for r in torch.get("rows", [])}
    rows = []
    if ours.get("bandwidth"):
        print(f"  all-reduce ms per call, ours / PyTorch {torch.get('torch', '?')} (NCCL {torch.get('nccl', '?')}); "
              "one rank, so bus bandwidth is 0 by definition and algbw is the local cost:")
        for r in ours["bandwidth"]:
            t = by_bytes.get(r["bytes"], {})
            rows.append({"bytes": r["bytes"], "ours_ms": r.get("ms"), "torch_ms": t.get("ms"),
                         "ours_algbw_gbps": r.get("algbw_gbps"), "torch_algbw_gbps": t.get("algbw_gbps")})
            o = f"{r['ms']:.4f}" if isinstance(r.get("ms"), float) else str(r.get("error", "-"))[:60]
            p = f"{t['ms']:.4f}" if isinstance(t.get("ms"), float) else "-"
            print(f"    {r['bytes']:>9} B  {o} / {p} ms")
    return rows


if __name__ == "__main__":
    main()
