#!/usr/bin/env bash
# scripts/fuzz.sh — runs every fuzz target in the tree for FUZZTIME each
# (default 10s). Targets are found, not listed: every func Fuzz* in a
# _test.go file, in every package that has one. (make test already runs
# each target's seed corpus as a plain test.)
# Usage: bash scripts/fuzz.sh   (make fuzz runs it; FUZZTIME=1m make fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-10s}"
go="${GO:-go}"
mapfile -t dirs < <(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | xargs -r -n1 dirname | sort -u)
if [[ ${#dirs[@]} -eq 0 ]]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi
n=0
for dir in "${dirs[@]}"; do
  # go test -list names the targets the package really has (build tags
  # and all), not what grep saw.
  mapfile -t targets < <("$go" test -list '^Fuzz' "$dir" | grep -E '^Fuzz')
  for target in "${targets[@]}"; do
    echo "fuzz: $dir $target ($fuzztime)" >&2
    "$go" test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$dir"
    n=$((n + 1))
  done
done
echo "fuzz: $n targets passed" >&2
