#!/usr/bin/env bash
# A fresh machine of this kind gets every Debian package the build and the
# tests touch from scripts/setup.sh (or has it in its base image): the
# check CI cannot make, since CI runs where packages were installed by hand.
# Control: the same check with libclang-rt-14-dev taken out of setup.sh
# must fail (the fuzz targets and ASan link against it).
set -euo pipefail
src=$TS_SOURCE_DIR
[ -r "${TS_BASE_PACKAGES:-$src/../shared/tools/base-packages.txt}" ] || { echo "no base package list: skip"; exit 77; }
out=$(bash "$src/scripts/check-fresh-machine.sh" "$TS_BIN_DIR") || { echo "$out" | grep -v '^not from' >&2; exit 1; }
echo "$out" | tail -n 1
ctl=$(mktemp); trap 'rm -f "$ctl"' EXIT
sed 's/ libclang-rt-14-dev//' "$src/scripts/setup.sh" >"$ctl"
if TS_SETUP_SCRIPT=$ctl bash "$src/scripts/check-fresh-machine.sh" "$TS_BIN_DIR" >/dev/null; then
  echo "FAIL: control: a setup.sh without libclang-rt-14-dev passed" >&2; exit 1
fi
echo "control: a setup.sh without libclang-rt-14-dev is caught"
