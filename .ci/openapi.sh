#!/usr/bin/env bash
# Validates the committed OpenAPI document (which a test keeps equal to the
# served one) with openapi-spec-validator, pinned.
#
# Usage: bash .ci/openapi.sh
set -euo pipefail

VALIDATOR_VERSION="0.7.1"
PY="${PYTHON:-python3}"
DOC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/openapi/nephele.json"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1

log() { printf 'openapi.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

installed() {
    "$1" -c 'import importlib.metadata as m, sys; sys.stdout.write(m.version("openapi-spec-validator"))' 2>/dev/null || true
}
if [[ "$(installed "$PY")" != "$VALIDATOR_VERSION" ]]; then
    if ! "$PY" -m pip install --quiet "openapi-spec-validator==$VALIDATOR_VERSION"; then
        VENV="${XDG_CACHE_HOME:-$HOME/.cache}/nephele-ci/openapi-spec-validator-$VALIDATOR_VERSION"
        [[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV" || die "cannot create a virtualenv"
        "$VENV/bin/python" -m pip install --quiet "openapi-spec-validator==$VALIDATOR_VERSION" \
            || die "cannot install openapi-spec-validator==$VALIDATOR_VERSION"
        PY="$VENV/bin/python"
    fi
fi
"$PY" -m openapi_spec_validator "$DOC" || die "the OpenAPI document is not valid"
log "openapi-spec-validator $VALIDATOR_VERSION: $DOC is valid"
