#!/usr/bin/env bash
# clang-format over every C file of ours (the committed .clang-format). --check only reports.
set -euo pipefail
cd "$(dirname "$0")/.."
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.c' '*.h')
else
  mapfile -t files < <(find common proto edge connector tests -name '*.[ch]' -not -path '*/corpus/*')
fi
[ ${#files[@]} -gt 0 ] || exit 0
if [ "${1:-}" = --check ]; then
  clang-format --dry-run --Werror "${files[@]}"
  echo "format check: ${#files[@]} files formatted as .clang-format says"
else
  clang-format -i "${files[@]}"
fi
