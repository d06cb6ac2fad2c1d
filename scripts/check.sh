#!/usr/bin/env bash
# `make check`: installs what is missing, checks formatting, then builds and runs every test
# suite three ways: gcc (debugoptimized), gcc with ASan+UBSan, and clang with libFuzzer (corpus
# replay plus a short fuzzing run per target); a fourth build, gcc release (-O3), only compiles.
# The last line is `N passed, N failed`, counted over every test case run; the exit status is
# non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh check || { echo "0 passed, 1 failed"; exit 1; }

jobs=${PTC_JOBS:-2}
results=()
logs=()

step() { printf '\n==== %s\n' "$*"; }

if step "format check" && scripts/format.sh --check; then
  results+=(format-check=ok)
else
  results+=(format-check=fail)
fi

# build NAME SUITES [meson setup options...]
build_and_test() {
  local dir=$1 suites=$2
  shift 2
  step "$dir: setup and build"
  local setup=(meson setup "$dir" "$@")
  [ -d "$dir" ] && setup=(meson setup --reconfigure "$dir" "$@")
  if ! "${setup[@]}" >"$dir.setup.log" 2>&1; then
    cat "$dir.setup.log"
    results+=("build:$dir=fail")
    return
  fi
  rm -f "$dir.setup.log"
  if ! ninja -C "$dir" -j "$jobs"; then
    results+=("build:$dir=fail")
    return
  fi
  results+=("build:$dir=ok")
  [ -n "$suites" ] || return 0
  step "$dir: tests ($suites)"
  local args=()
  for s in $suites; do args+=(--suite "$s"); done
  rm -f "$dir/meson-logs/testlog.json"
  meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes "$jobs" "${args[@]}"
  logs+=("$dir/meson-logs/testlog.json")
}

build_and_test build "unit fuzz integration" -Dbuildtype=debugoptimized
build_and_test build-asan "unit fuzz integration" -Db_sanitize=address,undefined \
  -Dbuildtype=debug
CC=clang build_and_test build-fuzz "fuzz fuzz-run" -Dfuzz=true -Dbuildtype=debugoptimized
# -O3 sees warnings (format-truncation, for one) that the other builds do not; the benchmarks
# use this build, so it must compile with warnings as errors too. No suite runs here.
build_and_test build-release "" -Dbuildtype=release

step "summary"
python3 scripts/count_tests.py "${results[@]}" "${logs[@]}"
