#!/usr/bin/env bash
# Checks /metrics with the Prometheus project's own parsers: the classic
# text format (0.0.4, the default) and OpenMetrics 1.0 (when asked for),
# from a freshly started and set-up server that has served a few requests.
# promtool is not in this machine kind's base image; the Python client's
# parsers (pinned) read both formats strictly enough to catch a malformed
# family, a counter without _total, a missing # EOF or a duplicate.
#
# Usage: bash .ci/metrics.sh /path/to/nephele-binary
set -euo pipefail

PROMETHEUS_CLIENT_VERSION="0.21.1"
PY="${PYTHON:-python3}"

log() { printf 'metrics.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $# -eq 1 ]] || die "usage: bash .ci/metrics.sh /path/to/nephele-binary"
BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
[[ -x "$BIN" ]] || die "not an executable file: $BIN"
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
# shellcheck source=.ci/pip-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/pip-tool.sh"
pip_tool prometheus-client "$PROMETHEUS_CLIENT_VERSION"

# shellcheck source=.ci/serve.sh
source "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/nephele-metrics.XXXXXX")"
cleanup() {
    stop_nephele
    rm -rf "$WORK"
}
trap cleanup EXIT

serve_nephele "$BIN" "$WORK" --sim-latency 0
set_up_nephele admin correct-horse-1
curl -s -o /dev/null -u admin:correct-horse-1 "$URL/api/v2/me"
curl -s -o /dev/null -u admin:wrong-password "$URL/api/v2/me"
curl -s -o /dev/null -u admin:correct-horse-1 -H 'content-type: application/json' \
    "$URL/api/v2/instances" -d '{"name":"m1","image":"debian-12"}'
curl -sf -o "$WORK/classic.txt" -D "$WORK/classic.headers" "$URL/metrics" || die "GET /metrics failed"
curl -sf -o "$WORK/open.txt" -D "$WORK/open.headers" \
    -H 'accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' \
    "$URL/metrics" || die "GET /metrics (OpenMetrics) failed"

"$PY" - "$WORK" <<'PYEOF'
import pathlib, sys
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

work = pathlib.Path(sys.argv[1])
def content_type(name):
    for line in (work / name).read_text().splitlines():
        if line.lower().startswith("content-type:"):
            return line.split(":", 1)[1].strip()
    return ""

assert content_type("classic.headers").startswith("text/plain; version=0.0.4"), content_type("classic.headers")
assert content_type("open.headers").startswith("application/openmetrics-text; version=1.0.0"), content_type("open.headers")
classic = {f.name: f for f in text_string_to_metric_families((work / "classic.txt").read_text())}
opened = {f.name: f for f in openmetrics_families((work / "open.txt").read_text())}
# An info family is a gauge named ..._info in the classic text.
for families, label, build in ((classic, "text 0.0.4", "nephele_build_info"),
                               (opened, "OpenMetrics", "nephele_build")):
    for name, family in families.items():
        assert family.documentation, f"{label}: {name} has no HELP"
    for wanted in ("process_cpu_seconds", "process_resident_memory_bytes", "process_open_fds",
                   "process_max_fds", "process_start_time_seconds", build,
                   "nephele_db_connections", "nephele_login_locks", "nephele_http_requests",
                   "nephele_http_request_duration_seconds"):
        assert wanted in families, f"{label}: no {wanted} among {sorted(families)}"
print(f"metrics.sh: text 0.0.4: {len(classic)} families, "
      f"{sum(len(f.samples) for f in classic.values())} samples; "
      f"OpenMetrics: {len(opened)} families, {sum(len(f.samples) for f in opened.values())} samples; both parsed")
PYEOF
