#!/usr/bin/env bash
# `make run`: the whole gateway on one machine, on a private PostgreSQL kept under the data
# folder (no system service). The database is created on the first run and reused after.
# Ctrl-C stops the data plane, the control plane and PostgreSQL, in that order.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
data=${SLUICE_RUN_DATA:-$top/sluice-data}
bin=${SLUICE_RUN_BIN:-$top/build}
# Not settings: sluice-cp and sluice-dp refuse unknown SLUICE_* names.
unset SLUICE_RUN_DATA SLUICE_RUN_BIN
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
pgdata=$data/postgres
pgsock=$data/pg-socket

mkdir -p "$data"
chmod 755 "$data"

# PostgreSQL refuses to run as root: as root, the cluster belongs to the 'postgres' system
# user (created by Debian's postgresql package), so nothing it writes is owned by root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ ! -f "$pgdata/PG_VERSION" ]; then
  echo "creating a private PostgreSQL cluster in $pgdata"
  mkdir -p "$pgdata" "$pgsock"
  [ "$(id -u)" = 0 ] && chown postgres "$pgdata" "$pgsock"
  chmod 700 "$pgdata" "$pgsock"
  as_pg "$pgbin/initdb" -D "$pgdata" -U sluice -A trust -E UTF8 >"$data/initdb.log"
fi
mkdir -p "$pgsock"
[ "$(id -u)" = 0 ] && chown postgres "$pgsock"

touch "$data/postgres.log"
[ "$(id -u)" = 0 ] && chown postgres "$data/postgres.log"

# Unix socket only: no TCP port to collide with a PostgreSQL already on this machine.
as_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$data/postgres.log" -w \
  -o "-c listen_addresses='' -k $pgsock -p 5432" start >/dev/null
stop_pg() { as_pg "$pgbin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true; }

export SLUICE_PG_HOST=$pgsock SLUICE_PG_PORT=5432 SLUICE_PG_USER=sluice SLUICE_PG_DATABASE=sluice
"$pgbin/psql" -h "$pgsock" -U sluice -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='sluice'" |
  grep -q 1 || "$pgbin/createdb" -h "$pgsock" -U sluice -O sluice sluice

"$bin/sluice-cp" migrations bootstrap
"$bin/sluice-cp" migrations up

if [ ! -f "$data/cluster/cluster.crt" ]; then
  "$bin/sluice-cp" certs generate --out "$data/cluster"
fi
export SLUICE_CLUSTER_CERT=$data/cluster/cluster.crt SLUICE_CLUSTER_CERT_KEY=$data/cluster/cluster.key

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  stop_pg
  echo "stopped"
}
trap cleanup INT TERM EXIT

SLUICE_PREFIX=$data/cp "$bin/sluice-cp" serve &
pids+=($!)
for _ in $(seq 1 100); do
  "$bin/sluice-cp" health >/dev/null 2>&1 && break
  sleep 0.1
done

SLUICE_PREFIX=$data/dp "$bin/sluice-dp" serve &
pids+=($!)
# "Sluice is running" only once the proxy has its first configuration from the control plane.
for _ in $(seq 1 100); do
  "$bin/sluice-dp" health >/dev/null 2>&1 && break
  sleep 0.1
done

cat <<MSG

Sluice is running.
  Admin API   http://localhost:8001    (try: curl -s localhost:8001/ | head -c 300)
  Proxy       http://localhost:8000    https://localhost:8443
  Status      http://localhost:8100/status

Try the tutorial:
  curl -i -X POST --url http://localhost:8001/services/ --data "name=httpbin-service" --data "url=http://httpbin.org"
  curl -i -X POST --url http://localhost:8001/services/httpbin-service/routes --data "paths[]=/httpbin" --data "name=httpbin-route"
  curl -i http://localhost:8000/httpbin/get

Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" || true
