#!/usr/bin/env bash
# Run every benchmark (full sizes; --quick for smaller ones) and keep the output under
# bench/results/<UTC time>.txt. Each prints its ratios against a baseline measured in the same
# run, so numbers from a noisy machine still compare like with like. Results: docs/benchmarks.md.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
quick=()
[ "${1:-}" = --quick ] && quick=(--quick)
mkdir -p bench/results
out=bench/results/$(date -u +%Y%m%dT%H%M%SZ).txt
run_all() {
  local status=0
  echo "# $(date -u) on $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  for bench in bench_runner bench_git_store bench_reconcile bench_bot; do
    echo; echo "## $bench"
    args=()
    [ "$bench" != bench_runner ] && args=("${quick[@]}")
    .venv/bin/python -m "bench.$bench" "${args[@]}" || status=1
  done
  return $status
}
run_all 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
echo "results: $out"
exit "$rc"
