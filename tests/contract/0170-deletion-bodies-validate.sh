#!/usr/bin/env bash
# Every Request Profile Deletion and bulk suppress body the engine sent for
# customers.on_delete during its tests (as accepted by the simulator)
# validates against Klaviyo's official OpenAPI schemas (independent
# validator); a broken one must fail (negative control).
set -euo pipefail
py=${TS_CACHE:-$HOME/.cache/tillstream}/venv/bin/python
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
TS_BODY_DUMP_DIR=$dir "$TS_BIN_DIR/test_deletes" >/dev/null 2>&1
for op in request_profile_deletion bulk_suppress_profiles; do
  n=$(ls "$dir" | grep -c "^$op-" || true)
  [ "$n" -ge 1 ] || { echo "the engine sent no $op body" >&2; exit 1; }
done
"$py" "$TS_SOURCE_DIR/tests/contract/validate.py" --auto "$dir"/*.json
f=$(ls "$dir"/request_profile_deletion-*.json | head -n 1)
mkdir "$dir/bad"
"$py" - "$f" "$dir/bad/request_profile_deletion-bad.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1])); b["data"]["type"] = "profile-deletion-job"
json.dump(b, open(sys.argv[2], "w"))
PY
if "$py" "$TS_SOURCE_DIR/tests/contract/validate.py" --auto "$dir/bad"/*.json 2>/dev/null; then
  echo "the validator accepted a deletion body of the wrong type" >&2; exit 1; fi
echo "contract: $(ls "$dir" | grep -c json) deletion/suppress bodies valid"
