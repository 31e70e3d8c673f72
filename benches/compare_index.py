#!/usr/bin/env python3
"""Side-by-side table of faiss_*.json and epatrol_*.json written by run_index_bench.sh.

Usage: compare_index.py OUT_DIR  (prints markdown)."""
import glob
import json
import os
import sys

COLS = [("build s", "build_s", "{:.1f}"), ("B/vec", "bytes_per_vector", "{:.0f}"),
        ("scanned B/vec", "scanned_bytes_per_vector", "{:.0f}"), ("p50 ms", "lat_p50_ms", "{:.3f}"),
        ("p99 ms", "lat_p99_ms", "{:.3f}"), ("QPS 1t", "qps_batch_1t", "{:.0f}"),
        ("QPS 2t", "qps_batch_2t", "{:.0f}"), ("R@1", "recall@1", "{:.4f}"),
        ("R@1 mated", "recall@1_mated", "{:.4f}"), ("R@10", "recall@10", "{:.4f}"),
        ("rank-1", "rank1_mated", "{:.4f}"), ("FNIR@FPIR=.01", "fnir_at_fpir", "{:.4f}"),
        ("load 1m", "loadavg_1m", "{:.1f}")]

# faiss_anchor.py does not report scanned bytes; for its flat/SQ indexes it equals B/vec.
FAISS_SCANNED = {"Flat": 1.0, "SQfp16": 1.0, "SQ8": 1.0}


def fmt(r, key, f):
    v = r.get(key)
    if v is None and key == "scanned_bytes_per_vector" and r["index"] in FAISS_SCANNED:
        v = r.get("bytes_per_vector")
    return "" if v is None else f.format(v)


def main(out):
    lines = []
    sets = sorted({os.path.basename(p)[len("faiss_"):-5] for p in glob.glob(os.path.join(out, "faiss_*.json"))})
    for s in sets:
        rows = []
        head = None
        for eng in ("faiss", "epatrol"):
            p = os.path.join(out, f"{eng}_{s}.json")
            if not os.path.exists(p):
                continue
            j = json.load(open(p))
            head = j["dataset"]
            for r in j["results"]:
                rows.append((eng, r))
        if head is None:
            continue
        lines.append(f"### N={head['N']:,} d={head['dim']} Q={head['queries']} ({head['mated']} mated), k={head['k']}\n")
        lines.append("| engine | index | params | " + " | ".join(c[0] for c in COLS) + " |")
        lines.append("|---|---|---|" + "---:|" * len(COLS))
        for eng, r in rows:
            lines.append(f"| {eng} | {r['index']} | {r['params']} | " + " | ".join(fmt(r, k, f) for _, k, f in COLS) + " |")
        by = {(e, r["index"]): r for e, r in rows}
        ff, ef, e8 = by.get(("faiss", "Flat")), by.get(("epatrol", "epatrol-Flat")), by.get(("epatrol", "epatrol-SQ8+rerank"))
        sq8 = by.get(("faiss", "SQ8"))
        if ff and e8:
            lines.append("")
            lines.append(f"- epatrol int8+rerank vs FAISS IndexFlatIP: batch QPS 1t {e8['qps_batch_1t'] / ff['qps_batch_1t']:.2f}x, "
                         f"2t {e8['qps_batch_2t'] / ff['qps_batch_2t']:.2f}x, p50 latency {ff['lat_p50_ms'] / e8['lat_p50_ms']:.2f}x faster")
        if sq8 and e8:
            lines.append(f"- epatrol int8+rerank vs FAISS SQ8: p50 latency {sq8['lat_p50_ms'] / e8['lat_p50_ms']:.2f}x faster, "
                         f"batch QPS 1t {e8['qps_batch_1t'] / sq8['qps_batch_1t']:.1f}x")
        if ff and ef:
            lines.append(f"- epatrol exact Flat vs FAISS Flat: batch QPS 1t {ef['qps_batch_1t'] / ff['qps_batch_1t']:.2f}x, "
                         f"p50 {ff['lat_p50_ms'] / ef['lat_p50_ms']:.2f}x")
        lines.append("")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
