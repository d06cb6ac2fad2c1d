#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time, starting from its seed corpus. New inputs go
# to a temporary directory (the committed corpus is never written); a crash leaves its input
# in the build directory's fuzz-artifacts/ and fails the run.
# Usage: fuzz_run.sh TARGET_EXE CORPUS_DIR SECONDS [DICT]
set -euo pipefail
exe=$1 corpus=$2 secs=$3 dict=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
art="$(dirname "$exe")/fuzz-artifacts/$(basename "$exe")"
mkdir -p "$art"
args=(-max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$art/" -rss_limit_mb=2048)
[ -n "$dict" ] && [ -f "$dict" ] && args+=(-dict="$dict")
echo "TAP version 13"
echo "1..1"
if "$exe" "${args[@]}" "$work" "$corpus" 2>"$work.log"; then
  grep -E 'stat::number_of_executed_units' "$work.log" | sed 's/^/# /' || true
  echo "ok 1 - fuzzed $(basename "$exe") for ${secs}s"
  rm -f "$work.log"
else
  tail -n 60 "$work.log" >&2
  rm -f "$work.log"
  echo "not ok 1 - $(basename "$exe") found a failure (input in $art)"
  exit 1
fi
