#!/usr/bin/env python3
"""Validate request bodies against Klaviyo's official OpenAPI schemas.

An independent check: it uses the `jsonschema` package (PyPI), not any of
tillstream's code. The operation's requestBody schema is taken from the
official file (../shared/klaviyo-openapi/<operation>.json), its
#/components/schemas references are resolved, and OpenAPI's
`nullable: true` is converted to a JSON-Schema null type.

usage: validate.py --operation bulk_create_events FILE [FILE...]
       validate.py --auto FILE...   (operation from the file name prefix)
       validate.py --response 200 --operation get_bulk_import_profiles_job FILE...
                                    (a response body: that status's schema, else
                                    its class's, e.g. 4XX)
Exit 0 when every body validates; 1 and the failing path otherwise.
"""
import argparse
import copy
import json
import os
import sys

import jsonschema

OPERATIONS = ["bulk_create_events", "bulk_import_profiles", "bulk_subscribe_profiles",
              "bulk_unsubscribe_profiles", "create_event", "create_or_update_profile",
              "get_bulk_import_profiles_job", "get_errors_for_bulk_import_profiles_job",
              "get_profiles_for_bulk_import_profiles_job", "request_profile_deletion",
              "bulk_suppress_profiles", "get_profiles", "get_metrics", "get_events"]


def spec_dir():
    d = os.environ.get("TS_KLAVIYO_OPENAPI")
    if d:
        return d
    src = os.environ.get("TS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    return os.path.join(src, "..", "shared", "klaviyo-openapi")


def convert(node):
    """OpenAPI 3.0 -> JSON Schema: nullable, and drop OpenAPI-only keys."""
    if isinstance(node, dict):
        out = {k: convert(v) for k, v in node.items() if k not in ("example", "nullable")}
        if node.get("nullable"):
            if "$ref" in out or "oneOf" in out or "allOf" in out or "anyOf" in out:
                out = {"anyOf": [{"type": "null"}, out]}
            elif "type" in out:
                t = out["type"]
                out["type"] = [t, "null"] if isinstance(t, str) else list(t) + ["null"]
                if "enum" in out:
                    out["enum"] = list(out["enum"]) + [None]
        return out
    if isinstance(node, list):
        return [convert(x) for x in node]
    return node


def load_spec(operation):
    with open(os.path.join(spec_dir(), operation + ".json")) as f:
        return json.load(f)


def operation_of(spec):
    """The one operation of an official file: (path, method, operation object)."""
    (path, methods), = spec["paths"].items()
    method = next(m for m in ("post", "get", "patch", "delete") if m in methods)
    return path, method, methods[method]


def schema_for(operation, response=None):
    spec = load_spec(operation)
    path, method, op = operation_of(spec)
    if response:
        responses = op["responses"]
        entry = responses.get(str(response)) or responses.get(str(response)[0] + "XX")
        if "$ref" in entry:  # #/components/responses/<name>
            entry = spec["components"]["responses"][entry["$ref"].rsplit("/", 1)[1]]
        body = entry["content"]
    else:
        body = op["requestBody"]["content"]
    media = body.get("application/vnd.api+json") or next(iter(body.values()))
    schema = convert(copy.deepcopy(media["schema"]))
    schema["components"] = {"schemas": convert(spec["components"]["schemas"])}
    return schema


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--operation", choices=OPERATIONS)
    ap.add_argument("--auto", action="store_true")
    ap.add_argument("--response", help="validate response bodies of this status (e.g. 200)")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    cache = {}
    failures = 0
    for path in args.files:
        op = args.operation
        if args.auto:
            op = next((o for o in OPERATIONS if os.path.basename(path).startswith(o + "-")
                       or os.path.basename(path) == o + ".json"), None)
            if not op:
                print(f"{path}: cannot tell the operation from the file name", file=sys.stderr)
                failures += 1
                continue
        if op not in cache:
            s = schema_for(op, args.response)
            cache[op] = jsonschema.Draft202012Validator(s)
        with open(path) as f:
            body = json.load(f)
        errors = sorted(cache[op].iter_errors(body), key=lambda e: list(e.path))
        for e in errors[:5]:
            print(f"{path}: {op}: /{'/'.join(map(str, e.path))}: {e.message}", file=sys.stderr)
        failures += bool(errors)
    print(f"validated {len(args.files)} bodies, {failures} invalid", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
