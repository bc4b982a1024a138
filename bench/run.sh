#!/usr/bin/env bash
# The performance table of docs/performance.md, in one command:
#
#   bash bench/run.sh [seconds] [backends]
#
# For each backend ("sqlite", "postgres" or both, the default) it starts a
# release server with --sim-latency 0 on a fresh data dir (PostgreSQL: a
# fresh database on $NEPHELE_BENCH_PG, default
# postgres://postgres@127.0.0.1:5432), sets it up with `nephele setup`,
# measures idle RSS and the time from start to first answer on the existing
# data dir, then runs every `nephele bench` scenario for the given seconds
# (default 10, after 2 s of warm-up) with the load generator on the same
# machine over loopback. It prints one Markdown table per backend.
# Needs curl, python3 (and psql for PostgreSQL) and
# `cargo build --release --bin nephele`.
set -euo pipefail
SECONDS_="${1:-10}"
BACKENDS="${2:-sqlite postgres}"
PORT="${PORT:-18190}"
PG="${NEPHELE_BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Starts the server; sets START_MS to the milliseconds until /healthz answered.
start() {
    local t0 t1
    t0=$(date +%s%N)
    serve "$DATA" "${DB_ARGS[@]}"
    t1=$(date +%s%N)
    START_MS=$(( (t1 - t0) / 1000000 ))
}
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; }

# name | connections | nephele bench arguments
SCENARIOS=(
    "client-credentials tokens|32|token-client-credentials"
    "password tokens|8|token-password"
    "refresh tokens|8|token-refresh"
    "GET instance, bearer|32|get-instance --auth bearer"
    "GET instance, bearer, XML|32|get-instance --auth bearer --xml"
    "GET instance, API key|32|get-instance --auth api-key"
    "GET instance, Basic|32|get-instance --auth basic"
    "list 100 instances|16|list-instances"
    "create instance → SUCCESS|32|create-instance"
    "mixed|32|mixed"
)

for backend in $BACKENDS; do
    DATA="$WORK/data-$backend"
    mkdir -p "$DATA"
    DB_ARGS=()
    if [ "$backend" = postgres ]; then
        db="nephele_bench_$$"
        psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -qc "CREATE DATABASE $db" >/dev/null
        DB_ARGS=(--database-url "$PG/$db")
    fi
    rm -rf "$NEPHELE_CONFIG_DIR"
    start
    set_up
    stop
    start   # on the existing data dir: the start time that counts
    first_ms=$START_MS
    sleep 2
    idle=$(rss_mib)
    echo "== $backend: start to first answer ${first_ms} ms, idle RSS ${idle} MiB, ${SECONDS_} s per scenario" >&2
    rows=()
    for entry in "${SCENARIOS[@]}"; do
        IFS='|' read -r name conns args <<<"$entry"
        # shellcheck disable=SC2086
        json=$("$BIN" bench $args --duration "${SECONDS_}s" --warmup 2s --connections "$conns" \
            --seed-data 1000 --server-pid "$PID" -o json 2>/dev/null || true)
        rows+=("$name|$conns|$json")
        echo "   $name done" >&2
    done
    python3 - "$backend" "$first_ms" "$idle" "${rows[@]}" <<'PY'
import json, sys
backend, first_ms, idle = sys.argv[1:4]
print(f"\n### {backend}: start to first answer {first_ms} ms, idle RSS {idle} MiB\n")
print("| scenario | connections | throughput /s | p50 ms | p99 ms | p99.9 ms | errors | server RSS max MiB | server CPU cores |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for row in sys.argv[4:]:
    name, conns, raw = row.split("|", 2)
    try:
        r = json.loads(raw)
    except ValueError:
        print(f"| {name} | {conns} | failed | | | | | | |")
        continue
    l, s = r["latencyMs"], r.get("server") or {}
    print(f"| {name} | {conns} | {r['throughput']:,.0f} | {l['p50']:.2f} | {l['p99']:.2f} | {l['p999']:.2f} "
          f"| {r['errors']} | {s.get('rssMibMax', 0):.1f} | {s.get('cpuCores', 0):.2f} |")
PY
    stop
    if [ "$backend" = postgres ]; then
        psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    fi
done
