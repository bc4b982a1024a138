#!/usr/bin/env bash
# Lints the committed OpenAPI document with @redocly/cli (its recommended
# rules), pinned, from the npm registry with the machine's Node.js.
#
# Usage: bash .ci/redocly.sh
set -euo pipefail

REDOCLY_VERSION="2.77.0"
DOC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/openapi/nephele.json"
command -v npx >/dev/null 2>&1 || { echo "redocly.sh: error: npx (Node.js) is required" >&2; exit 1; }
export NO_UPDATE_NOTIFIER=1 REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
npx --yes "@redocly/cli@$REDOCLY_VERSION" lint "$DOC" --format=summary
