# Sourced by the CI scripts that test a live server. Needs a `die` function.
#
# serve_nephele BIN DIR [ARGS...]: starts BIN serving on a free port of
#   127.0.0.1 with its data in DIR (and ARGS), logging to DIR/server.log;
#   sets SERVER_PID and URL once it listens. stop_nephele stops it.
# set_up_nephele LOGIN PASSWORD: the first-run setup (organization "Acme").

SETUP_TOKEN="ci-setup-token-0123456789"
SERVER_PID=""

serve_nephele() {
    local bin="$1" dir="$2"
    shift 2
    # Only the arguments configure the server.
    unset NEPHELE_CONFIG NEPHELE_DEMO NEPHELE_PUBLIC_URL NEPHELE_TLS_CERT NEPHELE_TLS_KEY \
        NEPHELE_DATABASE_URL NEPHELE_LISTEN NEPHELE_DATA_DIR NEPHELE_SETUP_TOKEN
    mkdir -p "$dir/data"
    (cd "$dir" && exec "$bin" serve --listen 127.0.0.1:0 --data-dir "$dir/data" \
        --setup-token "$SETUP_TOKEN" "$@") </dev/null >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    URL=""
    for _ in $(seq 1 300); do # 30 s
        URL="$(sed 's/\x1b\[[0-9;]*m//g' "$dir/server.log" | grep -o 'listening on http://[0-9.:]*' \
            | head -n 1 | sed 's/^listening on //' || true)"
        [[ -n "$URL" ]] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 40 "$dir/server.log" >&2; die "the server exited before listening"; }
        sleep 0.1
    done
    die "the server did not log 'listening on http://...' within 30 s"
}

stop_nephele() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

set_up_nephele() {
    local body status
    body="$(printf '{"setupToken":"%s","organization":{"name":"Acme"},"admin":{"login":"%s","email":"admin@acme.test","password":"%s"}}' \
        "$SETUP_TOKEN" "$1" "$2")"
    status="$(curl -sS --max-time 30 -o /dev/null -w '%{http_code}' -X POST "$URL/occm/setup/init" \
        -H 'content-type: application/json' -d "$body")" || die "POST /occm/setup/init failed"
    [[ "$status" == "201" ]] || die "POST /occm/setup/init answered $status"
}
