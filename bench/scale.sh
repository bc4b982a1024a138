#!/usr/bin/env bash
# How the cost grows: instance reads and lists as the database grows from
# 1,000 instances in 10 tenants to 1,000,000 in 10,000 (SQLite).
#
#   bash bench/scale.sh [seconds]
#
# For each size it starts a release server on a fresh data dir, sets it up
# with `nephele setup`, seeds the tenants and instances straight into the
# SQLite file below the root organization, then runs `nephele bench
# list-instances` (16 connections) and `get-instance` (32 connections,
# bearer) on the root's own 100 instances for the given seconds (default
# 10, after 2 s of warm-up). Prints a Markdown table.
# Needs python3 and `cargo build --release --bin nephele`.
set -euo pipefail
SECONDS_="${1:-10}"
PORT="${PORT:-18192}"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

echo "| instances | tenants | list 100: throughput /s | p50 ms | p99 ms | GET one: throughput /s | p50 ms | p99 ms | server RSS max MiB |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for size in "1000 10" "100000 1000" "1000000 10000"; do
    read -r instances tenants <<<"$size"
    DATA="$WORK/data-$instances"
    mkdir -p "$DATA"
    rm -rf "$NEPHELE_CONFIG_DIR"
    serve "$DATA"
    set_up
    root=$("$BIN" whoami -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["organizationId"])')
    python3 - "$DATA/nephele.db" "$root" "$instances" "$tenants" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=60)
root, instances, tenants = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
db.execute("""WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
  INSERT INTO organizations (id, parent_id, name, created_at, updated_at, version)
  SELECT printf('00000000-0000-7000-8000-%012d', i), ?, 'org-' || i, 0, 0, 1 FROM n""", (tenants, root))
db.execute("""WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
  INSERT INTO instances (id, organization_id, name, state, cpu, memory_mib, disk_gib, image,
                         datacenter_id, created_at, updated_at, version)
  SELECT printf('00000001-0000-7000-8000-%012d', i), printf('00000000-0000-7000-8000-%012d', i % ?),
         'vm-' || i, CASE i % 3 WHEN 0 THEN 'Stopped' ELSE 'Running' END, 1, 128, 10, 'debian-12',
         '00000000-0000-7000-8000-000000000100', 0, 0, 1 FROM n""", (instances, tenants))
db.commit()
PY
    run() {
        "$BIN" bench "$@" --duration "${SECONDS_}s" --warmup 2s --seed-data 100 --server-pid "$PID" -o json 2>/dev/null || true
    }
    list=$(run list-instances --connections 16)
    get=$(run get-instance --connections 32)
    python3 - "$instances" "$tenants" "$list" "$get" <<'PY'
import json, sys
instances, tenants = int(sys.argv[1]), int(sys.argv[2])
def cols(raw):
    try:
        r = json.loads(raw)
    except ValueError:
        return ["failed", "", ""], 0
    return [f"{r['throughput']:,.0f}", f"{r['latencyMs']['p50']:.2f}", f"{r['latencyMs']['p99']:.2f}"], (r.get("server") or {}).get("rssMibMax", 0)
l, rss1 = cols(sys.argv[3])
g, rss2 = cols(sys.argv[4])
print(f"| {instances:,} | {tenants:,} | " + " | ".join(l + g) + f" | {max(rss1, rss2):.1f} |")
PY
    stop
done
