#!/usr/bin/env bash
# Installs what a fresh Debian machine with the Rust toolchain lacks: the Debian build
# packages (FFmpeg dev libs, clang, pkg-config), the onnx Python package models/fetch.py
# needs to derive LEADER-fused.onnx and the LEADER trunks, and with --test the Python packages the test suite
# uses (moto S3 server; schemathesis in .cache/schemathesis-venv); with --faiss what the
# optional `faiss` cargo feature's static faiss build needs (docs/index.md). Idempotent:
# skips what is already there. Flags combine: install-deps.sh --test --faiss.
set -euo pipefail
cd "$(dirname "$0")/.."
TEST=0 FAISS=0
for arg in "$@"; do
  case "$arg" in
    --test) TEST=1 ;;
    --faiss) FAISS=1 ;;
    *) echo "usage: $0 [--test] [--faiss]" >&2; exit 2 ;;
  esac
done
DEB_PKGS=(pkg-config clang libclang-dev ffmpeg libavcodec-dev libavformat-dev libavutil-dev
  libswscale-dev libavfilter-dev libavdevice-dev libswresample-dev openssl)
# faiss-sys `static` runs faiss's CMake build (cmake >= 3.24, g++ with OpenMP = libgomp,
# part of gcc) and links -lblas -llapack. OpenBLAS's OpenMP variant, because it sizes its
# thread pool from omp_set_num_threads like faiss does; the pthread variant ignores it and
# runs every GEMM on all cores (wrong 1-thread figures, oversubscription beside OpenMP).
((FAISS)) && DEB_PKGS+=(cmake g++ libopenblas-openmp-dev)
missing=()
for p in "${DEB_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# models/derive_leader.py and leader_trunk.py (run by models/fetch.py) rewrite LEADER.onnx with the onnx
# package; pinned because models/manifest.toml pins the derived file's sha256
python3 -c 'import importlib.metadata as m; assert m.version("onnx") == "1.23.2"' 2>/dev/null \
  || python3 -m pip install -q 'onnx==1.23.2'
if ((FAISS)); then
  # When the pthread variant is installed too it wins the libblas/liblapack alternatives
  # (priority 100 against 95); point them at the OpenMP build.
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  multiarch=$(gcc -print-multiarch)
  for lib in libblas.so.3 liblapack.so.3 libblas.so liblapack.so; do
    target=/usr/lib/$multiarch/openblas-openmp/$lib
    alt=$lib-$multiarch
    if [ -e "$target" ] && [ "$(update-alternatives --query "$alt" | sed -n 's/^Value: //p')" != "$target" ]; then
      $SUDO update-alternatives --set "$alt" "$target"
    fi
  done
fi
if ((TEST)); then
  python3 -c 'import moto, importlib.metadata as m; assert m.version("moto") == "5.2.5"' 2>/dev/null \
    || python3 -m pip install -q 'moto[server]==5.2.5'
  # schemathesis (API fuzzing against the served OpenAPI document) in its own venv, so its
  # dependencies cannot clash with moto's
  st=.cache/schemathesis-venv
  "$st/bin/schemathesis" --version 2>/dev/null | grep -q 'version 4.32.5' \
    || { python3 -m venv "$st" && "$st/bin/python" -m pip install -q 'schemathesis==4.32.5'; }
fi
