#!/usr/bin/env bash
# The region's peak against the real server: N synthetic face distractors plus one real
# enrolled person in a fresh data dir, `epatrol serve` on 127.0.0.1, then
# `epatrol bench load` with C simultaneous connections, every request an identification
# of a real photo; prints the JSON summary and checks every answer was audited.
# Usage: scripts/load-test.sh [--gallery 100000] [--requests 3000] [--concurrency 3000]
#        [--bin target/release/epatrol] [--json benches/results/load.json]
set -euo pipefail
cd "$(dirname "$0")/.."
GALLERY=100000 REQUESTS=3000 CONCURRENCY=3000 BIN=target/release/epatrol JSON=""
while [ $# -gt 0 ]; do
  case "$1" in
    --gallery) GALLERY=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --concurrency) CONCURRENCY=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --json) JSON=$2; shift 2 ;;
    -h|--help) sed -n 2,8p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
ORL=../shared/datasets/faces/orl
[ -x "$BIN" ] || { echo "no $BIN: cargo build --release -p epatrol-api" >&2; exit 2; }
[ -d "$ORL" ] || { echo "no $ORL (../shared beside the repo)" >&2; exit 2; }
# one socket per simultaneous request, on both ends
ulimit -n "$(ulimit -Hn)" || true
DATA=$(mktemp -d)
trap 'kill "${SERVER:-0}" 2>/dev/null || true; rm -rf "$DATA"' EXIT
echo "load-test: data dir $DATA, gallery $GALLERY, $REQUESTS requests, $CONCURRENCY at once" >&2
"$BIN" --data "$DATA" bench gallery --faces "$GALLERY" >&2
"$BIN" --data "$DATA" enroll --id LOAD-1 --surname Load --given-name Test --flag wanted \
  --face "$ORL/s1/1.pgm" --face "$ORL/s1/2.pgm" >/dev/null
echo "load-password-1" | "$BIN" --data "$DATA" user add --login load1 --role patrol --password-stdin >/dev/null
"$BIN" --data "$DATA" serve --bind 127.0.0.1:0 --rate-per-sec 1000000 --rate-burst 1000000 2>"$DATA/serve.log" &
SERVER=$!
for _ in $(seq 1 600); do
  URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$DATA/serve.log" | head -1)
  [ -n "$URL" ] && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$DATA/serve.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$URL" ] || { echo "server did not start" >&2; exit 1; }
OUT=$(EPATROL_PASSWORD=load-password-1 "$BIN" bench load --url "$URL" --login load1 \
  --face "$ORL/s1/7.pgm" --requests "$REQUESTS" --concurrency "$CONCURRENCY" ${JSON:+--json "$JSON"})
echo "$OUT"
curl -s "$URL/v1/metrics" | grep -E '^epatrol_(identifications|http_requests)_total' >&2 || true
kill -TERM "$SERVER"; wait "$SERVER" || true
python3 - "$DATA/catalog.sqlite" "$REQUESTS" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = db.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'identify'").fetchone()[0]
e = db.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'identification.registered'").fetchone()[0]
print(f"load-test: {n} identify audit rows, {e} events for {sys.argv[2]} requests", file=sys.stderr)
sys.exit(0 if n == e == int(sys.argv[2]) else 1)
PY
