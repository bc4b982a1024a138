#!/usr/bin/env bash
# List latency at scale: 10,000 organizations below the root holding
# 1,000,000 instances (seeded straight into SQLite), then wrk on
# GET /api/v2/instances?org_id=…&limit=100 (pages of 100 in one tenant)
# and on the root's own list.
#
#   bash bench/list.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_="${1:-10}"
CONNS="${2:-16}"
BIN="${BIN:-target/release/nephele}"
PORT="${PORT:-18184}"
URL="http://127.0.0.1:$PORT"
WORK="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
NEPHELE_LOG=warn "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK" \
    --setup-token bench-setup-token --sim-latency 0 >"$WORK/log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
ROOT="$(curl -sf -XPOST "$URL/occm/setup/init" -H 'content-type: application/json' \
    -d '{"setupToken":"bench-setup-token","organization":{"name":"Bench"},"admin":{"login":"admin","email":"admin@bench.test","password":"bench-password-1"}}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["organization"]["id"])')"
KEY="$(curl -sf -u admin:bench-password-1 -XPOST "$URL/api/v2/api-keys" -H 'content-type: application/json' \
    -d '{"name":"bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["secret"])')"
python3 - "$WORK/nephele.db" "$ROOT" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=60)
root = sys.argv[2]
t = time.time()
db.execute("""WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9999)
  INSERT INTO organizations (id, parent_id, name, created_at, updated_at, version)
  SELECT printf('00000000-0000-7000-8000-%012d', i), ?, 'org-' || i, 0, 0, 1 FROM n""", (root,))
db.execute("""WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999999)
  INSERT INTO instances (id, organization_id, name, state, cpu, memory_mib, disk_gib, image,
                         datacenter_id, created_at, updated_at, version)
  SELECT printf('00000001-0000-7000-8000-%012d', i), printf('00000000-0000-7000-8000-%012d', i % 10000),
         'vm-' || i, CASE i % 3 WHEN 0 THEN 'Stopped' ELSE 'Running' END, 1, 128, 10, 'debian-12',
         '00000000-0000-7000-8000-000000000100', 0, 0, 1 FROM n""")
db.commit()
print(f"   seeded 10,000 organizations and 1,000,000 instances in {time.time() - t:.0f}s")
PY
cat > "$WORK/list.lua" <<LUA
local n = 0
request = function()
    n = n + 1
    local org = string.format("00000000-0000-7000-8000-%012d", n % 10000)
    return wrk.format("GET", "/api/v2/instances?org_id=" .. org .. "&limit=100", { ["MC-Api-Key"] = "$KEY" })
end
LUA
echo "== GET /api/v2/instances?org_id=…&limit=100 over 10,000 tenants, 1M instances: $CONNS connections, ${SECONDS_}s"
wrk -t 1 -c "$CONNS" -d "${SECONDS_}s" --latency -s "$WORK/list.lua" "$URL" | sed -n '1,20p'
echo "== the same, filtered ?state=Running"
sed -i 's/&limit=100"/\&limit=100\&state=Running"/' "$WORK/list.lua"
wrk -t 1 -c "$CONNS" -d "${SECONDS_}s" --latency -s "$WORK/list.lua" "$URL" | sed -n '5,12p'
echo "   RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$PID/status)"
