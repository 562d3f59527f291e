#!/usr/bin/env bash
# A fresh machine of this kind gets every Debian package the build and the
# tests touch from scripts/setup.sh (or has it in its base image): the
# check CI cannot make, since CI runs where packages were installed by hand.
# Control (same run, closures computed once): the check with
# libclang-rt-14-dev taken out of setup.sh
# must fail (the fuzz targets and ASan link against it).
set -euo pipefail
src=$TS_SOURCE_DIR
[ -r "${TS_BASE_PACKAGES:-$src/../shared/tools/base-packages.txt}" ] || { echo "no base package list: skip"; exit 77; }
out=$(bash "$src/scripts/check-fresh-machine.sh" --control-drop libclang-rt-14-dev "$TS_BIN_DIR") ||
  { echo "$out" | grep -v '^not from' >&2; exit 1; }
echo "$out" | grep '^check-fresh-machine:'
