#!/usr/bin/env bash
# The Avro schemas in schemas/ are valid Avro (parsed by Avro-C, the library
# the decoders use) and name exactly the fields the JSON decoders accept:
# every schema field appears in a sample record or the decoder, and every
# field of the samples is in the schema (one contract, two encodings).
set -euo pipefail
"$TS_BIN_DIR/test_schemas" >/dev/null
python3 - "$TS_SOURCE_DIR" <<'PY'
import json, re, sys
src = sys.argv[1]
def fields(schema, prefix=""):
    out = set()
    for f in schema["fields"]:
        name = prefix + f["name"]
        out.add(name)
        types = f["type"] if isinstance(f["type"], list) else [f["type"]]
        for t in types:
            if isinstance(t, dict) and t.get("type") == "record":
                out |= fields(t, name + ".")
            if isinstance(t, dict) and t.get("type") == "array" and isinstance(t["items"], dict):
                out |= fields(t["items"], name + "[].")
    return out
def keys(obj, prefix=""):
    out = set()
    for k, v in obj.items():
        out.add(prefix + k)
        if isinstance(v, dict): out |= keys(v, prefix + k + ".")
        if isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v: out |= keys(item, prefix + k + "[].")
    return out
decoder = open(src + "/src/pipeline/decode_json.c").read()
for name in ("customer", "order"):
    schema = json.load(open(f"{src}/schemas/{name}.avsc"))
    f = fields(schema)
    seen = set()
    for line in open(f"{src}/samples/{name}s.jsonl"):
        seen |= keys(json.loads(line))
    extra = seen - f
    assert not extra, f"{name}: sample fields not in the schema: {extra}"
    for path in f:
        leaf = path.split(".")[-1].replace("[]", "")
        # a key of the decoder's key sets, X(<prefix>, <key>), or a literal
        known = re.search(r"X\([A-Z], " + re.escape(leaf) + r"\)", decoder) or f'"{leaf}"' in decoder
        assert known, f"{name}: schema field {path} unknown to the JSON decoder"
print("schemas: fields match the JSON contract")
PY
