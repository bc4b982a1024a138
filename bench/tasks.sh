#!/usr/bin/env bash
# End-to-end task throughput: create instance (202) → task SUCCESS, with
# the simulated hypervisor at --sim-latency 0.
#
#   bash bench/tasks.sh [seconds] [connections]
#
# Starts a release server on a fresh SQLite data dir (or on
# NEPHELE_DATABASE_URL, e.g. a fresh PostgreSQL database), sets it up, makes
# an API key, runs wrk against POST /api/v2/instances for the given time,
# then waits until every accepted task has finished and prints the
# completed tasks per second from the first request to the last completion.
# Needs wrk, curl, python3 and `cargo build --release --bin nephele`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_="${1:-10}"
CONNS="${2:-32}"
BIN="${BIN:-target/release/nephele}"
PORT="${PORT:-18182}"
URL="http://127.0.0.1:$PORT"
WORK="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
DB_ARGS=()
if [ -n "${NEPHELE_DATABASE_URL:-}" ]; then DB_ARGS=(--database-url "$NEPHELE_DATABASE_URL"); fi

NEPHELE_LOG="${NEPHELE_LOG:-warn}" "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK" \
    --setup-token bench-setup-token --sim-latency 0 "${DB_ARGS[@]}" >"$WORK/log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
curl -sf -XPOST "$URL/occm/setup/init" -H 'content-type: application/json' \
    -d '{"setupToken":"bench-setup-token","organization":{"name":"Bench"},"admin":{"login":"admin","email":"admin@bench.test","password":"bench-password-1"}}' >/dev/null
KEY="$(curl -sf -u admin:bench-password-1 -XPOST "$URL/api/v2/api-keys" -H 'content-type: application/json' \
    -d '{"name":"bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["secret"])')"
export NEPHELE_API_KEY="$KEY"

finished() {
    curl -sf "$URL/metrics" | awk '/^nephele_tasks_finished_total/ {s += $2} END {print s + 0}'
}
echo "== create instance → SUCCESS: $CONNS connections, ${SECONDS_}s, server pid $PID (${NEPHELE_DATABASE_URL:-sqlite})"
START=$(date +%s.%N)
wrk -t 1 -c "$CONNS" -d "${SECONDS_}s" --latency -s bench/wrk/create.lua "$URL/api/v2/instances" | tee "$WORK/wrk"
ACCEPTED="$(curl -sf -H "MC-Api-Key: $KEY" "$URL/api/v2/organizations" >/dev/null; \
    curl -sf "$URL/metrics" | awk '/^nephele_http_requests_total\{method="POST",route="\/api\/v2\/instances",status="202"\}/ {print $2}')"
while [ "$(finished)" -lt "${ACCEPTED%.*}" ]; do sleep 0.05; done
END=$(date +%s.%N)
python3 - "$START" "$END" "$ACCEPTED" "$(finished)" <<'PY'
import sys
start, end, accepted, done = map(float, sys.argv[1:])
print(f"   accepted {accepted:.0f}, finished {done:.0f} in {end - start:.2f}s: {done / (end - start):.0f} tasks/s end to end")
PY
echo "   RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$PID/status), peak $(awk '/VmHWM/ {print $2, $3}' /proc/$PID/status)"
