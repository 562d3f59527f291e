#!/usr/bin/env python3
"""bench/lib/recproxy.py UPSTREAM_PORT PORT_FILE LOG [--ids IDS_LOG]

A recording HTTP/1.1 proxy between a client under benchmark and the Klaviyo
simulator (loopback only). For every API request it writes one line to LOG:
    t_recv_ms t_done_ms account status n_events
(wall-clock milliseconds when the request was fully received and when the
simulator's answer came back; the account is the API key without its "pk_"
prefix, as the bench scripts name keys; n_events counts "unique_id" members).
With --ids, for every 202 it also writes "t_done_ms account unique_id" lines
to IDS_LOG (the produce -> 202 latency join). Requests under /__sim/ are
forwarded without a record. Exits on SIGTERM."""
import http.client, re, signal, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

up_port, port_file, log_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ids_path = sys.argv[sys.argv.index("--ids") + 1] if "--ids" in sys.argv else None
log = open(log_path, "w", buffering=1)  # line-buffered: scripts poll it
ids = open(ids_path, "w", buffering=1 << 20) if ids_path else None
lock = threading.Lock()
UID = re.compile(rb'"unique_id"\s*:\s*"((?:[^"\\]|\\.)*)"')
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _up(self):
        if getattr(self, "conn", None) is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", up_port, timeout=120)
        return self.conn

    def _do(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        t_recv = time.time()
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        for attempt in (0, 1):
            try:
                c = self._up()
                c.request(self.command, self.path, body=body, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt:  # the simulator dropped the connection: do the same
                    self.close_connection = True
                    return
        t_done = time.time()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if self.path.startswith("/__sim/"):
            return
        auth = self.headers.get("Authorization", "")
        key = auth.rsplit(" ", 1)[-1]
        acct = key[3:] if key.startswith("pk_") else key or "-"
        found = UID.findall(body) if (ids is not None and r.status == 202) else None
        nev = len(found) if found is not None else body.count(b'"unique_id"')
        with lock:
            log.write("%d %d %s %d %d\n" % (t_recv * 1000, t_done * 1000, acct, r.status, nev))
            if found:
                td = int(t_done * 1000)
                ids.write("".join("%d %s %s\n" % (td, acct, u.decode()) for u in found))

    do_POST = do_GET = do_PUT = do_DELETE = _do


class S(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


srv = S(("127.0.0.1", 0), H)
open(port_file + ".tmp", "w").write("%d\n" % srv.server_address[1])
import os
os.rename(port_file + ".tmp", port_file)


def stop(*_):
    threading.Thread(target=srv.shutdown).start()


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
srv.serve_forever(poll_interval=0.2)
with lock:
    log.flush()
    if ids:
        ids.flush()
