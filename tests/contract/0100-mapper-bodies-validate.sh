#!/usr/bin/env bash
# Every request body the mapper + envelopes produce from the bundled
# samples validates against Klaviyo's official OpenAPI schemas, checked by
# an independent validator (Python jsonschema). A deliberately broken body
# must fail, which proves the validator is really checking.
set -euo pipefail
py=${TS_CACHE:-$HOME/.cache/tillstream}/venv/bin/python
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
TS_BODY_DUMP_DIR=$dir "$TS_BIN_DIR/test_kbody" >/dev/null
# at least: one events body per sendable sample order (+1 holding them all),
# one body for each profile/consent operation
for want in bulk_create_events:41 bulk_import_profiles:1 bulk_subscribe_profiles:1 \
            bulk_unsubscribe_profiles:1; do
  op=${want%%:*} min=${want##*:}
  n=$(ls "$dir" | grep -c "^$op-" || true)
  [ "$n" -ge "$min" ] || { echo "only $n $op bodies were produced, want >= $min" >&2; exit 1; }
done
"$py" "$TS_SOURCE_DIR/tests/contract/validate.py" --auto "$dir"/*.json

# negative control: a body missing its JSON:API "type" must be rejected
f=$(ls "$dir"/bulk_create_events-*.json | head -n 1)
"$py" - "$f" "$dir/bad" <<'PY'
import json, os, sys
body = json.load(open(sys.argv[1]))
os.makedirs(sys.argv[2])
del body["data"]["type"]
json.dump(body, open(sys.argv[2] + "/bulk_create_events-bad1.json", "w"))
body = json.load(open(sys.argv[1]))
ev = body["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"]["events"]["data"][0]
ev["attributes"]["value"] = "335.99"  # a string where Klaviyo wants a number
json.dump(body, open(sys.argv[2] + "/bulk_create_events-bad2.json", "w"))
PY
for bad in "$dir"/bad/*.json; do
  if "$py" "$TS_SOURCE_DIR/tests/contract/validate.py" --auto "$bad" 2>/dev/null; then
    echo "validator accepted a broken body: $bad" >&2; exit 1
  fi
done
echo "contract: mapper bodies valid; broken bodies rejected"
