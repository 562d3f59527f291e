#!/usr/bin/env bash
# docs/config-reference.md is what `--help-config` prints from the config
# parser's tables (config.c, ts_config_reference): both binaries print the
# same page, and the committed page is that output, so a key added to a
# table without regenerating the page fails here. Regenerate with
#   build/tillstream-orders --help-config > docs/config-reference.md
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/ts-cfgref.XXXXXX")
trap 'rm -rf "$work"' EXIT
for b in tillstream-orders tillstream-customers; do
  "$TS_BIN_DIR/$b" --help-config >"$work/$b.md"
  if ! diff -u "$TS_SOURCE_DIR/docs/config-reference.md" "$work/$b.md"; then
    echo "docs/config-reference.md differs from $b --help-config (regenerate it)" >&2
    exit 1
  fi
done
# every section of the file has rows, and --help points at the flag
rows=$(grep -c '^| `' "$work/tillstream-orders.md")
for s in kafka topics klaviyo accounts routing consumer registry admin log customers; do
  grep -q "^| \`$s[.\[]" "$work/tillstream-orders.md" || { echo "no row for section $s" >&2; exit 1; }
done
"$TS_BIN_DIR/tillstream-orders" --help | grep -q -- '--help-config' || { echo "--help does not list --help-config" >&2; exit 1; }
echo "config reference: $rows keys, current"
