#!/usr/bin/env bash
# Side-by-side proxy benchmark: sluice-dp, nginx (proxy_pass + upstream keepalive) and HAProxy
# (nbthread 1, http-reuse always), one worker each, in front of the same nginx upstream, driven
# by wrk (keepalive, 50 connections). Rounds are interleaved so drift hits every proxy alike;
# prints the median requests/s and p99 of each and the ratios to nginx. Not a test: no gates.
#
#   tests/bench/proxy_vs_nginx_haproxy.sh [ROUNDS] [SECONDS]     (defaults 5 rounds, 10 s)
#   BIN=build/sluice-dp CONNS=50 BODY=64 tests/bench/proxy_vs_nginx_haproxy.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-5}
SECS=${2:-10}
CONNS=${CONNS:-50}
BODY=${BODY:-64}
BIN=${BIN:-build/sluice-dp}
PY=/usr/bin/python3
for t in wrk nginx haproxy "$BIN"; do
  command -v "$t" >/dev/null || [ -x "$t" ] || { echo "missing: $t (make deps; make)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/sluice-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(free_port); P_SLUICE=$(free_port); P_NGINX=$(free_port); P_HAPROXY=$(free_port); P_STATUS=$(free_port)

# --- the upstream: nginx with two workers, a fixed small body. reuseport: the kernel spreads
# new connections over both workers; without it one worker tends to take most of a burst of
# reconnects (a proxy re-opening its pool after a round), and the round measures that worker.
mkdir -p "$WORK/up/logs"
BODYTEXT=$(head -c "$BODY" /dev/zero | tr '\0' 'x')
cat > "$WORK/up/nginx.conf" <<CONF
worker_processes 2;
error_log $WORK/up/logs/error.log warn;
pid $WORK/up/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP reuseport; location / { return 200 "$BODYTEXT"; } }
}
CONF
nginx -p "$WORK/up" -c "$WORK/up/nginx.conf" -g 'daemon off;' & PIDS+=($!)

# --- nginx as the proxy
mkdir -p "$WORK/ngx/logs"
cat > "$WORK/ngx/nginx.conf" <<CONF
worker_processes 1;
error_log $WORK/ngx/logs/error.log warn;
pid $WORK/ngx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream up { server 127.0.0.1:$UP; keepalive 128; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$P_NGINX;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
nginx -p "$WORK/ngx" -c "$WORK/ngx/nginx.conf" -g 'daemon off;' & PIDS+=($!)

# --- HAProxy
cat > "$WORK/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:$P_HAPROXY
  default_backend be
backend be
  server s1 127.0.0.1:$UP
CONF
haproxy -f "$WORK/haproxy.cfg" -db & PIDS+=($!)

# --- sluice-dp with a one-route snapshot
mkdir -p "$WORK/dp"
$PY - "$WORK/dp" "$UP" <<'PYEOF'
import sys
sys.path.insert(0, "tests/integration")
import dp_harness as h
prefix, up = sys.argv[1], int(sys.argv[2])
svc = h.service("bench", "127.0.0.1", up)
h.write_snapshot(prefix, h.config([svc], [h.route("bench", svc, paths=["/"])]))
PYEOF
env -i PATH="$PATH" SLUICE_PROXY_LISTEN="127.0.0.1:$P_SLUICE" SLUICE_STATUS_LISTEN="127.0.0.1:$P_STATUS" \
  SLUICE_WORKER_THREADS=1 SLUICE_PREFIX="$WORK/dp" SLUICE_LOG_LEVEL=warn \
  "$BIN" serve 2>"$WORK/dp/dp.log" & PIDS+=($!)

for p in $UP $P_SLUICE $P_NGINX $P_HAPROXY; do
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$p/" && break; sleep 0.05; done
done
for name in sluice:$P_SLUICE nginx:$P_NGINX haproxy:$P_HAPROXY; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${name#*:}/")
  [ "$code" = 200 ] || { echo "${name%%:*} does not answer 200 (got $code)" >&2; exit 1; }
done

# wrk's p99 in microseconds
to_us() { $PY -c "import sys,re; v=sys.argv[1]; m=re.match(r'([\d.]+)(us|ms|s)',v); print(float(m.group(1))*{'us':1,'ms':1e3,'s':1e6}[m.group(2)])" "$1"; }

declare -A RPS P99
echo "rounds=$ROUNDS seconds=$SECS connections=$CONNS body=${BODY}B cores=$(nproc)"
for r in $(seq "$ROUNDS"); do
  for name in sluice:$P_SLUICE nginx:$P_NGINX haproxy:$P_HAPROXY; do
    n=${name%%:*}; port=${name#*:}
    out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "http://127.0.0.1:$port/")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(to_us "$(awk '$1=="99%" {print $2}' <<<"$out")")
    errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
    RPS[$n]+="$rps "; P99[$n]+="$p99 "
    printf 'round %d %-8s %10s req/s  p99 %8.0f us %s\n' "$r" "$n" "$rps" "$p99" "$errs"
  done
done

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
echo
printf '%-8s %12s %12s %12s %12s\n' proxy 'req/s' 'p99 us' 'rps/nginx' 'p99/nginx'
NR=$(median "${RPS[nginx]}"); NP=$(median "${P99[nginx]}")
for n in sluice nginx haproxy; do
  R=$(median "${RPS[$n]}"); P=$(median "${P99[$n]}")
  printf '%-8s %12.0f %12.0f %12.2f %12.2f\n' "$n" "$R" "$P" "$(echo "$R / $NR" | bc -l)" "$(echo "$P / $NP" | bc -l)"
done
