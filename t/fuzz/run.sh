#!/bin/bash
# Runs every fuzz target in BUILD/t/fuzz for FUZZ_SECONDS over a copy of its
# seed corpus (t/fixtures/<topic>); any crash fails the run.
set -euo pipefail
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
secs=${FUZZ_SECONDS:-60}
src=$(cd "$(dirname "$0")/../.." && pwd)
status=0
shopt -s nullglob
targets=("$build"/t/fuzz/*_fuzz)
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets in $build/t/fuzz"; exit 1; }
for bin in "${targets[@]}"; do
  name=$(basename "$bin" _fuzz)
  work=$(mktemp -d)
  corpus="$work/corpus"
  mkdir -p "$corpus"
  if [ -d "$src/t/fixtures/$name" ]; then cp -r "$src/t/fixtures/$name/." "$corpus/"; fi
  echo "fuzz: $name for ${secs}s"
  if ! (cd "$work" && "$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$corpus" >"$work/log" 2>&1); then
    echo "fuzz: $name FAILED"; tail -n 60 "$work/log"; status=1
  else
    grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "$work/log" | tail -n 2 || true
  fi
  rm -rf "$work"
done
exit $status
