#!/usr/bin/env bash
# Issue 12's function-size limit: `lizard -L 100 -C 25 src tools` (PyPI
# lizard, installed into the test venv by scripts/setup.sh) lists no
# function longer than 100 lines or with a cyclomatic complexity above 25.
# docs/architecture.md ("Function size") names the splits; a function that
# grows past a limit fails here with lizard's line for it.
set -euo pipefail
lz=${TS_CACHE:-$HOME/.cache/tillstream}/venv/bin/lizard
[ -x "$lz" ] || { echo "lizard not installed ($lz): run scripts/setup.sh" >&2; exit 1; }
cd "$TS_SOURCE_DIR"
out=$("$lz" -L 100 -C 25 -w src tools 2>&1) || true
if [ -n "$out" ]; then
  echo "$out" >&2
  echo "functions over lizard -L 100 -C 25 (split them; docs/architecture.md)" >&2
  exit 1
fi
n=$("$lz" src tools 2>/dev/null | awk 'f {print $5; exit} /^Total nloc/ {getline; f = 1}' || true)
echo "function size: no function over 100 lines or complexity 25 (${n:-?} functions)"
