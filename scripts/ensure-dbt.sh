#!/usr/bin/env bash
# Installs dbt-core and the dbt-duckdb adapter into a local venv on first use (the dbt job kind's
# tests and examples/dbt run against it). Prints the path of its `dbt` executable. Idempotent;
# safe to run concurrently (flock).
set -euo pipefail
DBT_CORE_SPEC="${SLUICE_DBT_CORE_SPEC:-dbt-core==1.10.15}"
DBT_DUCKDB_VERSION="${SLUICE_DBT_DUCKDB_VERSION:-1.10.0}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SLUICE_DBT_VENV:-$root/.venv-dbt}"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [ ! -x "$venv/bin/dbt" ] || ! "$venv/bin/python" -c "import dbt.adapters.duckdb" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --disable-pip-version-check -q \
    "$DBT_CORE_SPEC" "dbt-duckdb==$DBT_DUCKDB_VERSION" >&2
fi
echo "$venv/bin/dbt"
