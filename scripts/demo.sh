#!/usr/bin/env bash
# Runs sluice's main job on this machine: the server with its embedded SQLite store and the
# local backend, and a real Spark job (PySpark's Pi example) submitted, followed and shown.
# Installs pyspark into ./.venv on first use; builds sluice with cargo.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv_bin="$(scripts/ensure-pyspark.sh)"
echo "== pyspark: $venv_bin"
cargo build --quiet -p sluice
sluice="$root/target/debug/sluice"

port="${SLUICE_DEMO_PORT:-7467}"
data="${SLUICE_DEMO_DATA:-$root/.sluice/demo}"
mkdir -p "$data"
export SLUICE_SERVER="http://127.0.0.1:$port"
# The server's data directory, for the server and for the CLI, which reads the admin token the
# server writes there on its first start ($SLUICE_DATA_DIR/admin.token).
export SLUICE_DATA_DIR="$data"

echo "== starting: sluice server --listen 127.0.0.1:$port (data in $data)"
SLUICE_BACKEND__SPARK_HOME="$("$venv_bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')" \
  "$sluice" server --config examples/sluice.toml --listen "127.0.0.1:$port" >"$data/server.log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  "$sluice" queues >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$data/server.log"; exit 1; }
  sleep 0.1
done

echo "== sluice submit examples/pi.yaml --wait"
id="$("$sluice" submit examples/pi.yaml)"
echo "$id"
"$sluice" describe "$id"
echo "== following the job"
"$sluice" logs "$id" -f | grep -E "Pi is roughly|ERROR" || true
"$sluice" describe "$id"
echo "== history"
"$sluice" get
state="$("$sluice" get "$id" -o json | "$venv_bin/python" -c 'import json,sys; print(json.load(sys.stdin)["state"])')"
echo "== job $id: $state"
[ "$state" = succeeded ]
if [ "${SLUICE_DEMO_KEEP:-0}" = 1 ]; then
  echo "== the server keeps running: web UI at http://127.0.0.1:$port/ ; metrics at /metrics (ctrl-c stops it)"
  wait "$server_pid"
else
  echo "== done (SLUICE_DEMO_KEEP=1 keeps the server running, with its web UI at http://127.0.0.1:$port/)"
fi
