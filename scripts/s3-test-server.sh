#!/usr/bin/env bash
# Starts a moto S3 server on 127.0.0.1 on a free port, for the vault's S3 tests.
#
# Sourced (CI, scripts/test.sh):
#   source scripts/s3-test-server.sh
#   -> exports EPATROL_TEST_S3_URL=http://127.0.0.1:PORT and stops moto when the shell exits.
#   Without moto: fails (return 1) under CI=true; elsewhere warns and returns 0, and the
#   tests then try to start moto themselves (and skip the S3 leg if they cannot).
# Executed (the tests themselves, when EPATROL_TEST_S3_URL is unset):
#   scripts/s3-test-server.sh [--watch-pid PID]
#   -> prints the URL once moto answers; with --watch-pid, stops moto when PID exits.
# Needs `moto_server` (pip install 'moto[server]==5.2.5').

_epatrol_s3_start() {
    local watch_pid="$1"
    if ! command -v moto_server >/dev/null 2>&1; then
        echo "s3-test-server: moto_server not found (pip install 'moto[server]==5.2.5')" >&2
        return 3
    fi
    local port log moto
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    log="${TMPDIR:-/tmp}/moto-${port}.log"
    # setsid: the server survives the caller's $(...) pipe closing; stopped explicitly below
    setsid nohup moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 </dev/null &
    moto=$!
    local i
    for i in $(seq 1 300); do
        if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $port)))" 2>/dev/null; then
            break
        fi
        if ! kill -0 "$moto" 2>/dev/null; then
            echo "s3-test-server: moto_server exited; see $log" >&2
            return 4
        fi
        sleep 0.1
    done
    _EPATROL_MOTO_PID=$moto
    _EPATROL_MOTO_URL="http://127.0.0.1:${port}"
    if [[ -n "$watch_pid" ]]; then
        # a detached watcher stops moto when the owner process is gone
        (
            exec >/dev/null 2>&1 </dev/null
            while kill -0 "$watch_pid" 2>/dev/null && kill -0 "$moto" 2>/dev/null; do sleep 1; done
            kill "$moto" 2>/dev/null || true
        ) &
        disown
    fi
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # sourced
    if _epatrol_s3_start ""; then
        export EPATROL_TEST_S3_URL="$_EPATROL_MOTO_URL"
        trap 'kill "$_EPATROL_MOTO_PID" 2>/dev/null || true' EXIT
        echo "s3-test-server: moto at $EPATROL_TEST_S3_URL (pid $_EPATROL_MOTO_PID)" >&2
    elif [[ "${CI:-}" == "true" ]]; then
        echo "s3-test-server: CI needs moto for the S3 conformance tests" >&2
        return 1
    else
        echo "s3-test-server: continuing without a shared moto server" >&2
    fi
else
    set -euo pipefail
    watch=""
    if [[ "${1:-}" == "--watch-pid" ]]; then
        watch="${2:?--watch-pid needs a pid}"
    fi
    _epatrol_s3_start "$watch" || exit $?
    echo "$_EPATROL_MOTO_URL"
fi
