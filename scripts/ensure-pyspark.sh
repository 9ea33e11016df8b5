#!/usr/bin/env bash
# Installs pyspark (which carries spark-submit and spark-class) into a local venv on first use.
# Prints the venv's bin directory. Idempotent; safe to run concurrently (flock).
set -euo pipefail
PYSPARK_VERSION="${SLUICE_PYSPARK_VERSION:-4.0.1}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SLUICE_VENV:-$root/.venv}"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [ ! -x "$venv/bin/spark-submit" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --disable-pip-version-check -q "pyspark==$PYSPARK_VERSION" >&2
fi
echo "$venv/bin"
