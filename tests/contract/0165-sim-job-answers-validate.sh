#!/usr/bin/env bash
# The simulator's answers about Bulk Profile Import jobs validate against
# the response schemas of Klaviyo's official OpenAPI files (independent
# validator, Python jsonschema): the 202 of the import, the job while it is
# pending and once complete, every page of its import-errors and of its
# profiles, and a 404 (ClientError). A broken answer must fail (negative
# control).
. "$TS_SOURCE_DIR/tests/lib.sh"
py=${TS_CACHE:-$HOME/.cache/tillstream}/venv/bin/python
start_sim --job-delay-ms 3000   # long enough to see it pending on a loaded machine
base="http://127.0.0.1:$sim_port"
H=(-H "Authorization: Klaviyo-API-Key pk_it_a" -H "revision: 2026-07-15")
body=$(python3 - <<'PY'
import json
ps = []
for i in range(25):
    a = {"external_id": f"C{i}", "email": f"c{i}@example.com"}
    if i == 4: a["email"] = "nobody"
    if i == 11: a = {"external_id": "C11", "phone_number": "0412 345 678"}
    if i == 23: a["email"] = "@example.com"
    ps.append({"type": "profile", "attributes": a})
print(json.dumps({"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": ps}}}}))
PY
)
mkdir "$work/r"
code=$(curl -sS -o "$work/r/post.json" -w '%{http_code}' "${H[@]}" -H "Content-Type: application/vnd.api+json" \
  --data-binary "$body" "$base/api/profile-bulk-import-jobs")
[ "$code" = 202 ] || { echo "import answered $code" >&2; cat "$work/r/post.json" >&2; exit 1; }
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"]["id"])' "$work/r/post.json")
job="$base/api/profile-bulk-import-jobs/$id"
curl -sS -f "${H[@]}" "$job" >"$work/r/job-pending.json"
grep -q '"status":"queued"\|"status":"processing"' "$work/r/job-pending.json"
done_=""
for _ in $(seq 1 300); do
  curl -sS -f "${H[@]}" "$job/" >"$work/r/job-complete.json"
  grep -q '"status":"complete"' "$work/r/job-complete.json" && { done_=1; break; }
  sleep 0.1
done
[ -n "$done_" ] || { echo "the job never completed" >&2; exit 1; }
# follow links.next through every page
pages() { # pages URL PREFIX -> files PREFIX-N.json, prints the number of items
  local url=$1 n=0 total=0
  while [ -n "$url" ]; do
    n=$((n + 1))
    curl -sS -f "${H[@]}" "$url" >"$work/r/$2-$n.json"
    total=$((total + $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["data"]))' "$work/r/$2-$n.json")))
    url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("links", {}).get("next", ""))' "$work/r/$2-$n.json")
  done
  echo "$total"
}
[ "$(pages "$job/import-errors?page%5Bsize%5D=2" errors)" = 3 ]
[ -s "$work/r/errors-2.json" ]
[ "$(pages "$job/profiles?page%5Bsize%5D=10" profiles)" = 22 ]
[ -s "$work/r/profiles-3.json" ]
code=$(curl -sS -o "$work/r/notfound.json" -w '%{http_code}' "${H[@]}" "$base/api/profile-bulk-import-jobs/sim-job-999")
[ "$code" = 404 ]

v() { "$py" "$src/tests/contract/validate.py" "$@"; }
v --response 202 --operation bulk_import_profiles "$work/r/post.json"
v --response 200 --operation get_bulk_import_profiles_job "$work/r/job-pending.json" "$work/r/job-complete.json"
v --response 200 --operation get_errors_for_bulk_import_profiles_job "$work/r"/errors-*.json
v --response 200 --operation get_profiles_for_bulk_import_profiles_job "$work/r"/profiles-*.json
v --response 4XX --operation get_bulk_import_profiles_job "$work/r/notfound.json"

# negative controls: a job without its status, an import error without its detail
python3 - "$work/r" <<'PY'
import json, sys
d = sys.argv[1]
j = json.load(open(f"{d}/job-complete.json")); del j["data"]["attributes"]["status"]
json.dump(j, open(f"{d}/bad-job.json", "w"))
e = json.load(open(f"{d}/errors-1.json")); del e["data"][0]["attributes"]["detail"]
json.dump(e, open(f"{d}/bad-errors.json", "w"))
PY
if v --response 200 --operation get_bulk_import_profiles_job "$work/r/bad-job.json" 2>/dev/null; then
  echo "the validator accepted a job without status" >&2; exit 1; fi
if v --response 200 --operation get_errors_for_bulk_import_profiles_job "$work/r/bad-errors.json" 2>/dev/null; then
  echo "the validator accepted an import error without detail" >&2; exit 1; fi
echo "contract: $(ls "$work/r" | grep -vc '^bad') simulator job answers valid"
