# Shared by bench/run.sh and bench/scale.sh; sourced with PORT set. Works
# from the repository's root in a temporary directory removed on exit,
# with a CLI profile of its own there.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${BIN:-$PWD/target/release/nephele}"
URL="http://127.0.0.1:$PORT"
PID=""
WORK="$(mktemp -d)"
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
export NEPHELE_CONFIG_DIR="$WORK/cli"

# serve DATA [ARGS...]: starts a server with --sim-latency 0 on DATA (PID)
# and returns once it answers.
serve() {
    local data="$1"
    shift
    NEPHELE_LOG=warn "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$data" \
        --setup-token bench-setup-token --sim-latency 0 "$@" >>"$WORK/server.log" 2>&1 &
    PID=$!
    until curl -sf "$URL/healthz" >/dev/null 2>&1; do :; done
}

# Sets the running server up and signs the CLI in as its admin.
set_up() {
    echo bench-password-1 | "$BIN" setup --url "$URL" --token bench-setup-token --organization Bench \
        --login admin --email admin@bench.test --password-stdin -q >/dev/null 2>&1
}

stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }
