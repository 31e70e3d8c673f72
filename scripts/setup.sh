#!/usr/bin/env bash
# One command from a fresh checkout to a working E-patrol: install system packages, fetch
# and checksum the models and ONNX Runtime, build, then run the main job on embedded
# defaults (data dir ./data, SQLite catalog, local vault): a real face identification
# demo and a real footage ingest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
python3 models/fetch.py
cargo build --release --bin epatrol
BIN=target/release/epatrol
DATA=${EPATROL_DATA:-./data}
$BIN models
$BIN --data "$DATA" demo
# a real footage ingest: streamed into the local vault, hashed, probed with ffmpeg,
# custody-logged; a second run finds the same content already there
$BIN --data "$DATA" ingest ../shared/datasets/video/a_h264_aac_720p30_20s.mp4 \
  --officer demo-officer --device demo-cam-1
$BIN --data "$DATA" verify
echo "done: data in $DATA; try \`$BIN --help\`"
