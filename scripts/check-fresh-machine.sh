#!/usr/bin/env bash
# scripts/check-fresh-machine.sh [--control-drop PKG] [BUILD_DIR] - would the README's commands
# work on a fresh machine of this kind? Lists every Debian package that the
# build and the tests touch (the shared libraries our binaries load, the
# commands our scripts and tests run) and fails when one of them is neither
# in the machine's base image (../shared/tools/base-packages.txt, when
# present) nor brought by scripts/setup.sh (its packages and their Depends,
# not Recommends: setup.sh installs with --no-install-recommends).
# Tools outside Debian's packages (Go in /usr/local, pyenv's Python) are
# part of the base image of this machine kind and are listed, not judged.
# --control-drop PKG: also judge a setup.sh without PKG, which must fail
# (the test's proof that the check can fail); the closures are computed
# once for both judgements.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
drop=""
if [ "${1:-}" = --control-drop ]; then drop=$2; shift 2; fi
build=${1:-$here/build}
base_list=${TS_BASE_PACKAGES:-$here/../shared/tools/base-packages.txt}
[ -r "$base_list" ] || { echo "check-fresh-machine: no base package list ($base_list): skipped" >&2; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# what setup.sh asks for, with its Depends closure
setup=${TS_SETUP_SCRIPT:-$here/scripts/setup.sh}
pkgs=$(sed -n '/^pkgs=(/,/)/p; /pkgs+=(/p' "$setup" | tr -d '()' | sed 's/pkgs+\?=//; s/\[.*\]//; s/||//' |
       grep -oE '[a-z0-9][a-z0-9+.-]+' | grep -vE '^(pkgs|TS_SETUP_MINIMAL)$' | sort -u)
closure() {
  [ $# -gt 0 ] || return 0
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances "$@" 2>/dev/null | grep -v '^ ' | sed 's/:.*//;s/[<>]//g'
}
# shellcheck disable=SC2086
closure $(echo "$pkgs" | grep -vx "${drop:-^$}") | sort -u >"$tmp/rest"
sort -u "$base_list" "$tmp/rest" >"$tmp/have_ctl"
if [ -n "$drop" ]; then
  echo "$pkgs" | grep -qx "$drop" || { echo "check-fresh-machine: $drop is not in setup.sh" >&2; exit 1; }
  closure "$drop" | sort -u >"$tmp/dropped"
fi
sort -u "$tmp/have_ctl" ${drop:+"$tmp/dropped"} >"$tmp/have"

# what we touch: the headers every compile read (ninja's deps), the
# fuzzer's runtime, the shared libraries of our binaries, the commands of
# our scripts and tests
{
  for d in "$build" "$build-asan" "${build%/*}/build-fuzz"; do
    [ -f "$d/build.ninja" ] && ninja -C "$d" -t deps 2>/dev/null | awk -v h="$here/" '/^    \// && index($1, h) != 1 {print $1}' || true
  done | sort -u
  if command -v clang >/dev/null; then
    rt=$(clang -print-resource-dir)/lib/linux
    echo "$rt/libclang_rt.fuzzer-x86_64.a"; echo "$rt/libclang_rt.asan-x86_64.a"
  fi
  for b in "$build"/tillstream-* "$build"/test_*; do
    [ -x "$b" ] && ldd "$b" 2>/dev/null | awk '/=>/ {print $3}'
  done
  words=$(cat "$here"/scripts/*.sh "$here"/tests/*/*.sh "$here"/tests/lib.sh 2>/dev/null |
          grep -oE '(^|[;&|(`$ ])[a-z][a-z0-9_.+-]{1,30}' | sed 's/^.//' | sort -u)
  for w in $words; do
    p=$(command -v "$w" 2>/dev/null) || continue
    case $p in /*) readlink -f "$p" ;; esac
  done
} | sort -u >"$tmp/files"
# each file's package, resolved once for both judgements: dpkg's own file
# lists read in one pass (a `dpkg -S` per file took minutes); merged /usr:
# dpkg may know the file under /lib or /usr/lib, /bin or /usr/bin
while read -r f; do
  case $f in "$here"/*|"$build"/*|"${TS_CACHE:-$HOME/.cache/tillstream}"/*) continue ;; esac
  alt=$f; case $f in /usr/lib/*|/usr/bin/*|/usr/sbin/*) alt=${f#/usr} ;; /lib/*|/bin/*|/sbin/*) alt=/usr$f ;; esac
  if [ -e "$f" ]; then printf '%s\t%s\n' "$f" "$alt"; else printf '%s\t-\n' "$f"; fi
done <"$tmp/files" >"$tmp/wanted"
awk -F'\t' 'FNR == NR { want[$1] = 1; if ($2 != "-") want[$2] = 1; next }
             ($0 in want) && !($0 in owner) { f = FILENAME; sub(/.*\//, "", f); sub(/\.list$/, "", f); sub(/:.*/, "", f); owner[$0] = f }
             END { while ((getline ln < ARGV[1]) > 0) { split(ln, a, "\t")
                     print a[1] "\t" (a[2] == "-" ? "-" : (a[1] in owner ? owner[a[1]] : (a[2] in owner ? owner[a[2]] : ""))) } }' \
  "$tmp/wanted" /var/lib/dpkg/info/*.list >"$tmp/owners"
judge() { # have-list -> prints findings, returns 1 when a package is missing
  local have=$1 fail=0 f pkg
  while IFS=$'\t' read -r f pkg; do
    if [ "$pkg" = - ]; then echo "MISSING: $f (not on this machine)"; fail=1; continue; fi
    if [ -z "$pkg" ]; then
      echo "not from a Debian package (base image of this kind): $f"
      continue
    fi
    grep -qx "$pkg" "$have" || { echo "MISSING from setup.sh: $pkg (for $f)"; fail=1; }
  done <"$tmp/owners"
  return $fail
}
fail=0
judge "$tmp/have" || fail=1
[ $fail = 0 ] && echo "check-fresh-machine: every package the build and tests touch is in the base image or setup.sh"
if [ -n "$drop" ]; then
  if judge "$tmp/have_ctl" >/dev/null; then
    echo "check-fresh-machine: control FAILED: a setup.sh without $drop passed"; fail=1
  else
    echo "check-fresh-machine: control: a setup.sh without $drop is caught"
  fi
fi
exit $fail
