#!/usr/bin/env bash
# Validates the committed OpenAPI document (which a test keeps equal to the
# served one) with openapi-spec-validator, pinned.
#
# Usage: bash .ci/openapi.sh
set -euo pipefail

VALIDATOR_VERSION="0.7.1"
PY="${PYTHON:-python3}"
DOC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/openapi/nephele.json"
log() { printf 'openapi.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=.ci/pip-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/pip-tool.sh"
pip_tool openapi-spec-validator "$VALIDATOR_VERSION"
"$PY" -m openapi_spec_validator "$DOC" || die "the OpenAPI document is not valid"
log "openapi-spec-validator $VALIDATOR_VERSION: $DOC is valid"
