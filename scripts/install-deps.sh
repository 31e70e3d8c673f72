#!/usr/bin/env bash
# Installs what a fresh Debian machine with the Rust toolchain lacks: the Debian build
# packages (FFmpeg dev libs, clang, pkg-config), and with --test the Python packages the
# test suite uses (moto S3 server). Idempotent: skips what is already there.
set -euo pipefail
DEB_PKGS=(pkg-config clang libclang-dev ffmpeg libavcodec-dev libavformat-dev libavutil-dev
  libswscale-dev libavfilter-dev libavdevice-dev libswresample-dev)
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
if [ "${1:-}" = "--test" ]; then
  python3 -c 'import moto, importlib.metadata as m; assert m.version("moto") == "5.2.5"' 2>/dev/null \
    || python3 -m pip install -q 'moto[server]==5.2.5'
fi
