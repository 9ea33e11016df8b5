#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, and every test (unit, property,
# store conformance on SQLite and PostgreSQL, API, local backend, end-to-end with real Spark).
# Installs what the tests need: pyspark into ./.venv, Java and PostgreSQL if missing (Debian).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need_apt=()
command -v javac >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql)
# Prometheus and promtool for the metrics end-to-end test.
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
# Headless Chromium and chromedriver for the web UI's browser tests (crates/sluice-cli/tests/e2e_ui*.rs).
{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || need_apt+=(chromium chromium-driver)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

# PostgreSQL for the store conformance suite (127.0.0.1:5432, database test, trust auth).
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "== starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi
psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1 \
  || psql -h 127.0.0.1 -U postgres -c 'create database test' >/dev/null

echo "== pyspark: $(scripts/ensure-pyspark.sh)"
echo "== dbt: $(scripts/ensure-dbt.sh)"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The client-only CLI (no sluice-server, axum or sqlx: crates/sluice-cli/tests/client_only.rs)
# must compile too; about half a minute the first time, seconds once cached.
echo "== cargo clippy -p sluice --no-default-features (client only)"
cargo clippy -p sluice --no-default-features --all-targets --locked -- -D warnings
echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
