#!/usr/bin/env bash
# Installs what a fresh Debian machine with the Rust toolchain lacks: the Debian build
# packages (FFmpeg dev libs, clang, pkg-config), the onnx Python package models/fetch.py
# needs to derive LEADER-fused.onnx, and with --test the Python packages the test suite
# uses (moto S3 server; schemathesis in .cache/schemathesis-venv). Idempotent: skips what
# is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
DEB_PKGS=(pkg-config clang libclang-dev ffmpeg libavcodec-dev libavformat-dev libavutil-dev
  libswscale-dev libavfilter-dev libavdevice-dev libswresample-dev openssl)
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
# models/derive_leader.py (run by models/fetch.py) rewrites LEADER.onnx with the onnx
# package; pinned because models/manifest.toml pins the derived file's sha256
python3 -c 'import importlib.metadata as m; assert m.version("onnx") == "1.23.2"' 2>/dev/null \
  || python3 -m pip install -q 'onnx==1.23.2'
if [ "${1:-}" = "--test" ]; then
  python3 -c 'import moto, importlib.metadata as m; assert m.version("moto") == "5.2.5"' 2>/dev/null \
    || python3 -m pip install -q 'moto[server]==5.2.5'
  # schemathesis (API fuzzing against the served OpenAPI document) in its own venv, so its
  # dependencies cannot clash with moto's
  st=.cache/schemathesis-venv
  "$st/bin/schemathesis" --version 2>/dev/null | grep -q 'version 4.32.5' \
    || { python3 -m venv "$st" && "$st/bin/python" -m pip install -q 'schemathesis==4.32.5'; }
fi
