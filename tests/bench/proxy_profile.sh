#!/usr/bin/env bash
# Cost per proxied request of sluice-dp, measured in ways a busy machine doesn't skew:
#   callgrind  user-space instructions per request (valgrind --tool=callgrind, counted only while
#              wrk runs: --instr-atstart=no + callgrind_control -i on/off)
#   strace     system calls per request, by name (strace -c -f)
# One worker, one route to an nginx upstream (64-byte body), wrk -c50 keepalive. Requests are
# counted from the status listener. Not a test: no gates.
#
#   tests/bench/proxy_profile.sh callgrind|strace [SECONDS]      (BIN=build/sluice-dp)
#   KEEP=FILE keeps the callgrind output (callgrind_annotate --inclusive=yes FILE, kcachegrind)
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=${1:-callgrind}
SECS=${2:-5}
BIN=${BIN:-build/sluice-dp}
PY=/usr/bin/python3
W=$(mktemp -d /tmp/sluice-profile.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] && [ -f "$W/cg.out" ] && cp "$W/cg.out" "$KEEP"
  rm -rf "$W"
}
trap cleanup EXIT
fp() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(fp); P=$(fp); ST=$(fp)
mkdir -p "$W/up/logs" "$W/dp"
cat > "$W/up/nginx.conf" <<CONF
worker_processes 1;
error_log $W/up/logs/error.log warn;
pid $W/up/nginx.pid;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP; location / { return 200 "$(head -c 64 /dev/zero | tr '\0' x)"; } } }
CONF
nginx -p "$W/up" -c "$W/up/nginx.conf" -g 'daemon off;' & PIDS+=($!)
$PY - "$W/dp" "$UP" <<'PYEOF'
import sys
sys.path.insert(0, "tests/integration")
import dp_harness as h
svc = h.service("bench", "127.0.0.1", int(sys.argv[2]))
h.write_snapshot(sys.argv[1], h.config([svc], [h.route("bench", svc, paths=["/"])]))
PYEOF
WRAP=()
[ "$MODE" = callgrind ] && WRAP=(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$W/cg.out")
env -i PATH="$PATH" SLUICE_PROXY_LISTEN="127.0.0.1:$P" SLUICE_STATUS_LISTEN="127.0.0.1:$ST" \
  SLUICE_WORKER_THREADS=1 SLUICE_PREFIX="$W/dp" SLUICE_LOG_LEVEL=warn \
  "${WRAP[@]}" "$BIN" serve 2>"$W/dp/dp.log" & PIDS+=($!)
DP=$!
for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$P/" && break; sleep 0.1; done
wrk -t1 -c50 -d1s "http://127.0.0.1:$P/" >/dev/null # upstream pool filled, buffers allocated
handled() { curl -s "http://127.0.0.1:$ST/status" | $PY -c 'import json,sys; print(json.load(sys.stdin)["server"]["connections_handled"])'; }
if [ "$MODE" = callgrind ]; then
  callgrind_control -i on "$DP" >/dev/null
  R0=$(handled)
  wrk -t1 -c50 -d"${SECS}s" "http://127.0.0.1:$P/" >/dev/null
  R1=$(handled)
  callgrind_control -i off "$DP" >/dev/null
  kill -TERM "$DP"; wait "$DP" || true
  IR=$(callgrind_annotate "$W/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
  N=$((R1 - R0 - 1))
  echo "requests $N  instructions $IR  per request $((IR / N))"
  callgrind_annotate "$W/cg.out" 2>/dev/null | sed -n '/^Ir/,$p' | head -25
else
  R0=$(handled)
  strace -c -f -p "$DP" -o "$W/strace.txt" & SP=$!
  sleep 0.5
  wrk -t1 -c50 -d"${SECS}s" "http://127.0.0.1:$P/" >/dev/null
  kill -INT "$SP"; wait "$SP" || true
  R1=$(handled)
  N=$((R1 - R0 - 1))
  echo "requests $N"
  awk -v n="$N" 'NF >= 5 && $4 ~ /^[0-9]+$/ {printf "%-14s %6.2f per request\n", $NF, $4 / n}' "$W/strace.txt"
fi
