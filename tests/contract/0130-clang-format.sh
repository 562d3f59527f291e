#!/usr/bin/env bash
# Every C and C++ file follows the committed .clang-format (clang-format from Debian).
set -euo pipefail
cd "$TS_SOURCE_DIR"
command -v clang-format >/dev/null || { echo "clang-format missing (scripts/setup.sh installs it)" >&2; exit 1; }
files=$(find src include tools tests bench -name '*.[ch]' -o -name '*.cc' | sort)
clang-format --dry-run --Werror $files
echo "format: $(echo "$files" | wc -l) files clean"
