#!/usr/bin/env bash
# Token-endpoint load over loopback with wrk (until `nephele bench` exists).
#
#   bash bench/tokens.sh [client_credentials|refresh_token|password] [seconds] [connections]
#
# Starts a release server on a fresh SQLite data dir (or NEPHELE_DATABASE_URL),
# sets it up, makes an API client, runs wrk against POST /api/2/idp/token,
# and prints wrk's figures and the server's RSS. Needs wrk, curl, python3,
# and `cargo build --release --bin nephele` done.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GRANT="${1:-client_credentials}"
SECONDS_="${2:-10}"
CONNS="${3:-64}"
THREADS="${THREADS:-1}"
BIN="${BIN:-target/release/nephele}"
PORT="${PORT:-18181}"
URL="http://127.0.0.1:$PORT"
WORK="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

NEPHELE_LOG="${NEPHELE_LOG:-info,sqlx=warn}" "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK" \
    --setup-token bench-setup-token >"$WORK/log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
curl -sf -XPOST "$URL/occm/setup/init" -H 'content-type: application/json' \
    -d '{"setupToken":"bench-setup-token","organization":{"name":"Bench"},"admin":{"login":"admin","email":"admin@bench.test","password":"bench-password-1"}}' >/dev/null
CLIENT="$(curl -sf -u admin:bench-password-1 -XPOST "$URL/api/2/clients" -H 'content-type: application/json' \
    -d '{"type":"api_client","token_endpoint_auth_method":"client_secret_basic","data":{"client_name":"bench"}}')"
BASIC="$(python3 -c 'import base64,json,sys; c=json.loads(sys.argv[1]); print(base64.b64encode((c["client_id"]+":"+c["client_secret"]).encode()).decode())' "$CLIENT")"
export NEPHELE_CLIENT_BASIC="$BASIC"

case "$GRANT" in
    client_credentials)
        export NEPHELE_FORM="grant_type=client_credentials"
        ;;
    password)
        export NEPHELE_FORM="grant_type=password&username=admin&password=bench-password-1"
        ;;
    refresh_token)
        # One refresh-token family per connection: each thread runs one
        # connection, spending its token and keeping the next.
        THREADS="$CONNS"
        TOKENS=""
        for _ in $(seq 1 "$CONNS"); do
            T="$(curl -sf -u "$(echo "$BASIC" | base64 -d)" -XPOST "$URL/api/2/idp/token" \
                -d 'grant_type=password&username=admin&password=bench-password-1&scope=offline_access' \
                | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')"
            TOKENS="$TOKENS $T"
        done
        export NEPHELE_REFRESH_TOKENS="$TOKENS"
        ;;
    *) echo "unknown grant $GRANT" >&2; exit 2 ;;
esac

echo "== $GRANT: $CONNS connections, $THREADS wrk threads, ${SECONDS_}s, server pid $PID"
echo "   idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$PID/status)"
wrk -t "$THREADS" -c "$CONNS" -d "${SECONDS_}s" --latency -s bench/wrk/token.lua "$URL/api/2/idp/token"
echo "   RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$PID/status), peak $(awk '/VmHWM/ {print $2, $3}' /proc/$PID/status)"
