#!/usr/bin/env bash
# Every request body the delivery engine actually sent during its tests
# (as received and accepted by the simulator) validates against Klaviyo's
# official OpenAPI schemas, checked by an independent validator.
set -euo pipefail
py=${TS_CACHE:-$HOME/.cache/tillstream}/venv/bin/python
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
TS_BODY_DUMP_DIR=$dir "$TS_BIN_DIR/test_engine" >/dev/null 2>&1
for op in bulk_create_events bulk_import_profiles bulk_subscribe_profiles bulk_unsubscribe_profiles; do
  n=$(ls "$dir" | grep -c "^$op-" || true)
  [ "$n" -ge 1 ] || { echo "the engine sent no $op body" >&2; exit 1; }
done
"$py" "$TS_SOURCE_DIR/tests/contract/validate.py" --auto "$dir"/*.json
echo "contract: $(ls "$dir" | wc -l) engine bodies valid"
