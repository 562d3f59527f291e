#!/usr/bin/env python3
"""A small schema registry speaking the subset of the Confluent Schema
Registry REST API that tillstream and its tests use (Python standard
library only). It stands in for a real registry because none installs
from this machine's package registries (see docs/registry.md).

  schema_registry.py --port P --state FILE [--user U --password-env VAR]

Endpoints: POST /subjects/{s}/versions, GET /schemas/ids/{id},
GET /subjects, GET /subjects/{s}/versions, GET /subjects/{s}/versions/{v|latest},
GET /schemas/ids/{id}/versions... not all; unknown paths answer 404 with a
Confluent error body. Ids are global and stable: the same schema text
(canonical JSON) gets the same id under any subject, as in Confluent's.
State survives restarts (FILE), so a stop/start is an outage, not a reset.
"""
import argparse, base64, json, os, re, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"schemas": [], "subjects": {}}  # schemas[id-1] = text; subjects[s] = [id, ...]


def canon(text):
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


def save(path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, path)


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("registry: " + (fmt % args) + "\n")

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorised(self):
        if not self.server.auth:
            return True
        h = self.headers.get("Authorization", "")
        if h.startswith("Basic ") and base64.b64decode(h[6:]).decode() == self.server.auth:
            return True
        self.reply(401, {"error_code": 401, "message": "Unauthorized"})
        return False

    def do_GET(self):
        if not self.authorised():
            return
        p = self.path.split("?")[0].rstrip("/")
        with lock:
            m = re.fullmatch(r"/schemas/ids/(-?\d+)", p)
            if m:
                i = int(m.group(1))
                if 1 <= i <= len(state["schemas"]):
                    return self.reply(200, {"schema": state["schemas"][i - 1]})
                return self.reply(404, {"error_code": 40403, "message": f"Schema {i} not found"})
            if p == "/subjects":
                return self.reply(200, sorted(state["subjects"]))
            m = re.fullmatch(r"/subjects/([^/]+)/versions", p)
            if m and m.group(1) in state["subjects"]:
                return self.reply(200, list(range(1, len(state["subjects"][m.group(1)]) + 1)))
            m = re.fullmatch(r"/subjects/([^/]+)/versions/(latest|\d+)", p)
            if m and m.group(1) in state["subjects"]:
                ids = state["subjects"][m.group(1)]
                v = len(ids) if m.group(2) == "latest" else int(m.group(2))
                if 1 <= v <= len(ids):
                    return self.reply(200, {"subject": m.group(1), "version": v, "id": ids[v - 1],
                                            "schema": state["schemas"][ids[v - 1] - 1]})
            return self.reply(404, {"error_code": 40401, "message": "Not found"})

    def do_POST(self):
        if not self.authorised():
            return
        p = self.path.split("?")[0].rstrip("/")
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        m = re.fullmatch(r"/subjects/([^/]+)/versions", p)
        if not m:
            return self.reply(404, {"error_code": 40401, "message": "Not found"})
        try:
            text = json.loads(body)["schema"]
            c = canon(text)
        except Exception as e:  # noqa: BLE001 - any bad body is a 422
            return self.reply(422, {"error_code": 42201, "message": f"Invalid schema: {e}"})
        with lock:
            canons = [canon(s) for s in state["schemas"]]
            if c in canons:
                i = canons.index(c) + 1
            else:
                state["schemas"].append(text)
                i = len(state["schemas"])
            ids = state["subjects"].setdefault(m.group(1), [])
            if i not in ids:
                ids.append(i)
            save(self.server.state_path)
        return self.reply(200, {"id": i})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--user")
    ap.add_argument("--password-env")
    a = ap.parse_args()
    global state
    if os.path.exists(a.state):
        with open(a.state) as f:
            state = json.load(f)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), H)
    srv.state_path = a.state
    srv.auth = f"{a.user}:{os.environ.get(a.password_env, '')}" if a.user else None
    srv.serve_forever()


if __name__ == "__main__":
    main()
