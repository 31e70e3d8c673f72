#!/usr/bin/env bash
# Side-by-side gallery-search benchmark: shared/bench/faiss_anchor.py and
# `epatrol bench index` on the same .npy sets, one after the other, in one run.
#
#   benches/run_index_bench.sh [DATA_ROOT] [OUT_DIR]
#
# DATA_ROOT (default /work/data-bench) holds bio_<N>_<d>/ made by gen_vectors.py (this
# script generates any that are missing); OUT_DIR (default benches/results/index-<date>)
# gets faiss_*.json/md, epatrol_*.json/md, *.log and compare.md. Needs a venv with
# shared/bench/requirements.txt at $BENCH_VENV (default /tmp/benchvenv) and a release build
# of `epatrol` at $EPATROL (default target/release/epatrol). SETS, FAISS_INDEXES,
# EPATROL_INDEXES and NPROBE override the sets, index lists and IVF sweep.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
shared="${SHARED_BENCH:-$root/../shared/bench}"
data="${1:-/work/data-bench}"
out="${2:-$here/results/index-$(date +%Y%m%d-%H%M)}"
venv="${BENCH_VENV:-/tmp/benchvenv}"
epatrol="${EPATROL:-${CARGO_TARGET_DIR:-$root/target}/release/epatrol}"
sets="${SETS:-100k_512 100k_128 1M_512 1M_128}"
nprobe="${NPROBE:-16,64,256,1024}"
faiss_idx="${FAISS_INDEXES:-Flat,SQfp16,SQ8,IVFFlat}"
epatrol_idx="${EPATROL_INDEXES:-flat,int8,f16,ivf-int8}"
mkdir -p "$out" "$data"
py="$venv/bin/python"
[ -x "$py" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q -r "$shared/requirements.txt"; }
[ -x "$epatrol" ] || { echo "build epatrol first: cargo build --release -p epatrol-api" >&2; exit 1; }

for s in $sets; do
  n="${s%_*}"; d="${s#*_}"
  case "$n" in 100k) nn=100000;; 1M) nn=1000000;; *) nn="$n";; esac
  dir="$data/bio_$s"
  [ -f "$dir/gallery.npy" ] || "$py" "$shared/gen_vectors.py" --n "$nn" --dim "$d" --queries 1000 --seed 42 --out "$dir"
  echo "== $s: faiss (load $(cut -d' ' -f1-3 /proc/loadavg))"
  "$py" "$shared/faiss_anchor.py" --data "$dir" --json "$out/faiss_$s.json" --md "$out/faiss_$s.md" \
      --indexes "$faiss_idx" --lat-budget 6 --nprobe-list "$nprobe" 2> "$out/faiss_$s.log" >/dev/null
  echo "== $s: epatrol (load $(cut -d' ' -f1-3 /proc/loadavg))"
  "$epatrol" bench index --vectors "$dir" --index "$epatrol_idx" --json "$out/epatrol_$s.json" \
      --md "$out/epatrol_$s.md" --lat-budget 6 --nprobe-list "$nprobe" 2> "$out/epatrol_$s.log" >/dev/null
done
"$py" "$here/compare_index.py" "$out" > "$out/compare.md"
cat "$out/compare.md"
