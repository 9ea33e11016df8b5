#!/usr/bin/env bash
# Redraws the simulator's pictures in docs/img/ (used by docs/scheduling.md) from the sample
# trace and cluster: each is one chart of `sluice simulate --report`'s report.html, with the
# policies it compares, given a white background for viewers with a dark theme.
# usage: scripts/doc-pictures.sh [path/to/sluice]   (default: target/release/sluice)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
sluice="${1:-target/release/sluice}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# picture FILE "CHART TITLE" POLICY...
picture() {
  local out="$1" title="$2"
  shift 2
  local args=()
  for p in "$@"; do args+=(--policy "$p"); done
  rm -rf "$work/report"
  "$sluice" simulate --trace examples/sim/trace.csv --cluster examples/sim/cluster.toml \
    "${args[@]}" --report "$work/report" > /dev/null
  python3 - "$work/report/report.html" "$title" "docs/img/$out" <<'PY'
import re, sys
html, title, out = sys.argv[1], sys.argv[2], sys.argv[3]
charts = re.findall(r'<svg\b.*?</svg>', open(html).read(), re.S)
found = [c for c in charts if re.search(r'<title>([^<]*)</title>', c).group(1) == title]
if len(found) != 1:
    sys.exit(f"{html}: {len(found)} charts titled {title!r}")
svg = re.sub(r'(<svg\b[^>]*>)', r'\1<rect width="100%" height="100%" fill="white"/>', found[0], count=1)
open(out, 'w').write(svg + "\n")
PY
  echo "docs/img/$out: $title ($*)"
}

picture sim-waiting-strict-best-effort-backfill.svg "Jobs waiting" strict best-effort backfill
picture sim-wait-p95-by-namespace.svg "Wait p95 by namespace" strict best-effort backfill
picture sim-wait-p95-by-level-aging.svg "Wait p95 by level" strict strict+aging backfill backfill+aging
picture sim-held-no-admission.svg "Held by pods (doing work or half-started)" no-admission strict backfill
picture sim-utilisation-no-admission.svg "Utilisation (doing work)" no-admission strict backfill
