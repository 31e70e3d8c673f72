#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, fetches models, starts a real S3
# server (moto) on 127.0.0.1 for the vault's S3 tests, checks formatting and lints
# (`cargo fmt --check`, `cargo clippy --all-targets -D warnings`), then
# `cargo test --workspace`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check   # cheapest check first
bash scripts/install-deps.sh --test
python3 models/fetch.py
if [ -f scripts/s3-test-server.sh ] && [ -z "${EPATROL_TEST_S3_URL:-}" ]; then
  # shellcheck source=/dev/null
  source scripts/s3-test-server.sh   # exports EPATROL_TEST_S3_URL, stops the server on exit
fi
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace --no-fail-fast "$@"
