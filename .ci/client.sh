#!/usr/bin/env bash
# Generates a Python client from the committed OpenAPI document with
# openapi-python-client (pinned) and uses it against a live server: it
# lists organizations, creates an instance with only a name and an image,
# waits for its task, uploads a notary file (raw and multipart) and
# verifies it. The generated client lives in a temporary directory; only
# this script and .ci/client_check.py are committed.
#
# Usage: bash .ci/client.sh /path/to/nephele-binary
set -euo pipefail

OPENAPI_PYTHON_CLIENT_VERSION="0.29.1"
ADMIN_LOGIN="admin"
ADMIN_PASSWORD="correct-horse-1"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf 'client.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $# -eq 1 ]] || die "usage: bash .ci/client.sh /path/to/nephele-binary"
BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
[[ -x "$BIN" ]] || die "not an executable file: $BIN"
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
PY="${PYTHON:-python3}"
# shellcheck source=.ci/pip-tool.sh
source "$HERE/pip-tool.sh"
# shellcheck source=.ci/serve.sh
source "$HERE/serve.sh"
# Its own dependencies (httpx, attrs, python-dateutil) are the client's.
pip_tool openapi-python-client "$OPENAPI_PYTHON_CLIENT_VERSION"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/nephele-client.XXXXXX")"
cleanup() {
    stop_nephele
    rm -rf "$WORK"
}
trap cleanup EXIT

"$PY" -m openapi_python_client generate --path "$HERE/../openapi/nephele.json" --meta none \
    --output-path "$WORK/nephele_client" >"$WORK/generate.log" 2>&1 \
    || { cat "$WORK/generate.log" >&2; die "openapi-python-client could not generate a client"; }
grep -i "warning" "$WORK/generate.log" >&2 && die "openapi-python-client warned about the document"
log "generated a client with openapi-python-client $OPENAPI_PYTHON_CLIENT_VERSION"

serve_nephele "$BIN" "$WORK" --sim-latency 0 --notary-batch-interval 1s
set_up_nephele "$ADMIN_LOGIN" "$ADMIN_PASSWORD"
PYTHONPATH="$WORK" "$PY" "$HERE/client_check.py" "$URL" "$ADMIN_LOGIN" "$ADMIN_PASSWORD" \
    || { tail -n 40 "$WORK/server.log" >&2; die "the generated client failed"; }
