#!/usr/bin/env bash
# Runs schemathesis against a freshly started, freshly set-up Nephele server.
#
# Usage: bash .ci/schemathesis.sh /path/to/nephele-binary
#
# Environment knobs (all optional):
#   PYTHON               Python interpreter to use            (default: python3)
#   ST_MAX_EXAMPLES      test cases per API operation         (default: 50)
#   ST_CHECKS            checks to run                        (default: all)
#   ST_SEED              hypothesis seed; "random" for none   (default: 1)
#   ST_WORKERS           schemathesis workers                 (default: 1)
#   ST_TIMEOUT           hard wall-clock limit for the run, s (default: 900)
#   ST_EXTRA_ARGS        extra arguments appended to `st run` (word-split)
#   ST_DATABASE_URL      run the server on this database instead of SQLite
#   ST_REPORT_DIR        write JUnit and NDJSON reports into this directory
#   ST_KEEP_LOGS=1       keep the temp dir (server log, data dir) on exit
#
# Exits non-zero if the server cannot be started or set up, or if schemathesis
# reports any failure or error.
set -euo pipefail

SCHEMATHESIS_VERSION="4.32.5"
ADMIN_LOGIN="admin"
ADMIN_PASSWORD="correct-horse-1"
CHECKS="${ST_CHECKS:-all}"

log() { printf 'schemathesis.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $# -eq 1 ]] || die "usage: bash .ci/schemathesis.sh /path/to/nephele-binary"
BIN="$1"
[[ -f "$BIN" && -x "$BIN" ]] || die "not an executable file: $BIN"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

PY="${PYTHON:-python3}"
MAX_EXAMPLES="${ST_MAX_EXAMPLES:-50}"
SEED="${ST_SEED:-1}"
WORKERS="${ST_WORKERS:-1}"
ST_TIMEOUT="${ST_TIMEOUT:-900}"

# Everything we talk to is on loopback: never go through a proxy.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"
unset HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy all_proxy
export NO_COLOR=1
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1

for tool in curl base64 timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required but not installed"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/nephele-st.XXXXXX")"
SERVER_LOG="$WORK/server.log"
# shellcheck source=.ci/serve.sh
source "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_nephele
    if [[ "${ST_KEEP_LOGS:-0}" == "1" ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_server_log() {
    if [[ -s "$SERVER_LOG" ]]; then
        log "last lines of the server log:"
        tail -n 40 "$SERVER_LOG" | sed 's/\x1b\[[0-9;]*m//g' >&2
    fi
}

# --- schemathesis ----------------------------------------------------------
st_installed_version() {
    "$1" -c 'import schemathesis, sys; sys.stdout.write(schemathesis.__version__)' 2>/dev/null || true
}

if [[ "$(st_installed_version "$PY")" != "$SCHEMATHESIS_VERSION" ]]; then
    command -v "$PY" >/dev/null 2>&1 || die "no Python interpreter '$PY' found"
    log "installing schemathesis==$SCHEMATHESIS_VERSION with pip"
    if ! "$PY" -m pip install --quiet "schemathesis==$SCHEMATHESIS_VERSION"; then
        # E.g. a Debian system Python (externally managed): use a private venv.
        VENV="${XDG_CACHE_HOME:-$HOME/.cache}/nephele-ci/schemathesis-$SCHEMATHESIS_VERSION"
        log "pip install into $PY failed; trying a virtualenv at $VENV"
        if [[ ! -x "$VENV/bin/python" ]]; then
            "$PY" -m venv "$VENV" || die "cannot create a virtualenv (is python3-venv installed?)"
        fi
        "$VENV/bin/python" -m pip install --quiet "schemathesis==$SCHEMATHESIS_VERSION" \
            || die "cannot install schemathesis==$SCHEMATHESIS_VERSION from PyPI"
        PY="$VENV/bin/python"
    fi
    [[ "$(st_installed_version "$PY")" == "$SCHEMATHESIS_VERSION" ]] \
        || die "schemathesis==$SCHEMATHESIS_VERSION is not importable after installing it"
fi
# Invoke the CLI through the interpreter, so PATH / pyenv shims do not matter.
st() { "$PY" -c 'import sys; sys.argv[0] = "st"; from schemathesis.cli import schemathesis; sys.exit(schemathesis())' "$@"; }
log "using $(st --version) ($PY)"

# --- server ----------------------------------------------------------------
server_args=()
if [[ -n "${ST_DATABASE_URL:-}" ]]; then
    server_args+=(--database-url "$ST_DATABASE_URL")
fi
serve_nephele "$BIN" "$WORK" "${server_args[@]}"
log "server is listening on $URL (pid $SERVER_PID)"
set_up_nephele "$ADMIN_LOGIN" "$ADMIN_PASSWORD"
log "setup done (201)"

status="$(curl -sS --max-time 30 -o "$WORK/openapi.json" -w '%{http_code}' "$URL/api/openapi.json")" \
    || { show_server_log; die "GET /api/openapi.json failed"; }
[[ "$status" == "200" ]] || { cat "$WORK/openapi.json" >&2 || true; die "GET /api/openapi.json answered $status"; }

# One value of a JSON file.
field() { # FILE KEY... (a number indexes a list)
    "$PY" -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$@"
}

# The run authenticates with an API key: schemathesis's probes with wrong
# passwords lock 127.0.0.1 out of password sign-in (429), and an API key is
# not a password that can be guessed, so the lockout does not apply to it.
BASIC="$(printf '%s:%s' "$ADMIN_LOGIN" "$ADMIN_PASSWORD" | base64 | tr -d '\n')"
status="$(curl -sS --max-time 30 -o "$WORK/api-key.json" -w '%{http_code}' \
    -X POST "$URL/api/v2/api-keys" -H "Authorization: Basic $BASIC" \
    -H 'content-type: application/json' -d '{"name":"schemathesis"}')" \
    || { show_server_log; die "POST /api/v2/api-keys failed"; }
[[ "$status" == "201" ]] || { cat "$WORK/api-key.json" >&2 || true; die "POST /api/v2/api-keys answered $status"; }
AUTH="$(field "$WORK/api-key.json" data secret)"
[[ -n "$AUTH" ]] || die "the new API key has no secret"

# What the hooks put where a request names something that must exist.
get_json() { # PATH FILE
    local status
    status="$(curl -sS --max-time 30 -o "$2" -w '%{http_code}' -H "MC-Api-Key: $AUTH" "$URL$1")" \
        || die "GET $1 failed"
    [[ "$status" == "200" ]] || { cat "$2" >&2 || true; die "GET $1 answered $status"; }
}
get_json /api/v2/me "$WORK/me.json"
get_json /api/v2/images "$WORK/images.json"
export NEPHELE_ST_ADMIN_ID="$(field "$WORK/me.json" data principal id)"
export NEPHELE_ST_DATACENTER="$(field "$WORK/me.json" data principal datacenterId)"
export NEPHELE_ST_IMAGE="$(field "$WORK/images.json" data 0 name)"
export NEPHELE_ST_ADMIN_PASSWORD="$ADMIN_PASSWORD"
export NEPHELE_ST_API_KEY_ID="$(field "$WORK/api-key.json" data id)"

# A web app that signs people in, so that the authorization endpoint's
# valid cases name a client and a redirect URI that exist.
export NEPHELE_ST_REDIRECT_URI="https://rp.example/callback"
status="$(curl -sS --max-time 30 -o "$WORK/client.json" -w '%{http_code}' \
    -X POST "$URL/api/2/clients" -H "MC-Api-Key: $AUTH" -H 'content-type: application/json' \
    -d '{"token_endpoint_auth_method":"none","data":{"client_name":"schemathesis-rp","redirect_uris":["'"$NEPHELE_ST_REDIRECT_URI"'"],"first_party":true}}')" \
    || die "POST /api/2/clients failed"
[[ "$status" == "201" ]] || { cat "$WORK/client.json" >&2 || true; die "POST /api/2/clients answered $status"; }
export NEPHELE_ST_CLIENT_ID="$(field "$WORK/client.json" client_id)"
export SCHEMATHESIS_HOOKS=schemathesis_hooks
export PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)${PYTHONPATH:+:$PYTHONPATH}"

# --- schemathesis run -------------------------------------------------------
st_args=(
    run "$URL/api/openapi.json"
    --checks "$CHECKS"
    --header "MC-Api-Key: $AUTH"
    # Its own credentials, not generated ones (which would replace them).
    --generation-with-security-parameters false
    --max-examples "$MAX_EXAMPLES"
    --workers "$WORKERS"
    --request-timeout 30
    --generation-database none
    --output-truncate false
    --no-color
)
if [[ -n "${ST_REPORT_DIR:-}" ]]; then
    mkdir -p "$ST_REPORT_DIR"
    st_args+=(--report "junit,ndjson" --report-dir "$(cd "$ST_REPORT_DIR" && pwd)")
fi
if [[ "$SEED" != "random" ]]; then
    st_args+=(--seed "$SEED")
fi
if [[ -n "${ST_EXTRA_ARGS:-}" ]]; then
    # shellcheck disable=SC2206 # word splitting is intended
    st_args+=($ST_EXTRA_ARGS)
fi

log "running: st ${st_args[*]//$AUTH/***}"
start=$SECONDS
set +e
(cd "$WORK" && timeout --signal=TERM --kill-after=30 "$ST_TIMEOUT" \
    "$PY" -c 'import sys; sys.argv[0] = "st"; from schemathesis.cli import schemathesis; sys.exit(schemathesis())' \
    "${st_args[@]}") </dev/null
st_rc=$?
set -e
elapsed=$((SECONDS - start))

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    show_server_log
    log "the server died during the run"
    [[ $st_rc -ne 0 ]] || st_rc=1
fi

if [[ $st_rc -eq 124 || $st_rc -eq 137 ]]; then
    die "schemathesis did not finish within ${ST_TIMEOUT} s"
elif [[ $st_rc -ne 0 ]]; then
    show_server_log
    die "schemathesis reported failures (exit $st_rc, ${elapsed} s)"
fi
log "schemathesis passed in ${elapsed} s"
