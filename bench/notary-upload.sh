#!/usr/bin/env bash
# Uploads a file of SIZE (default 1G, made on the fly from /dev/urandom,
# never on disk on the client's side) to the notary and reports the
# server's RSS before and at its peak during the upload, and the rate.
# Memory stays flat: the server streams the body to disk as it hashes it.
#
# Usage: bash bench/notary-upload.sh [SIZE]      (e.g. 1G, 4G, 100M)
set -euo pipefail
SIZE="${1:-1G}"
PORT="${PORT:-18090}"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

serve "$WORK/data"
set_up
rss() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
before=$(rss)
peak=$before
(
    head -c "$SIZE" /dev/urandom |
        curl -sf -u admin:bench-password-1 -X POST -T - \
            -H 'content-type: application/octet-stream' \
            "$URL/api/notary/v2/stored-files?name=big.bin" >"$WORK/answer.json"
) &
upload=$!
started=$(date +%s.%N)
while kill -0 "$upload" 2>/dev/null; do
    now=$(rss)
    [ "$now" -gt "$peak" ] && peak=$now
    sleep 0.2
done
wait "$upload"
ended=$(date +%s.%N)
bytes=$(python3 -c "import json; print(json.load(open('$WORK/answer.json'))['data']['sizeBytes'])")
python3 - "$before" "$peak" "$bytes" "$started" "$ended" <<'PY'
import sys
before, peak, size, t0, t1 = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
print(f"uploaded {size} bytes in {t1 - t0:.1f} s ({size / (t1 - t0) / 2**20:.0f} MiB/s)")
print(f"server RSS: {before / 1024:.1f} MiB before, {peak / 1024:.1f} MiB at peak (+{(peak - before) / 1024:.1f} MiB)")
PY
