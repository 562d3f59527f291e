#!/usr/bin/env python3
"""tests/integration/egress.py DIR UPSTREAM_PORT CERT KEY

An egress path like a corporate network's, on loopback, for integration tests:
- a TLS front (CERT/KEY) standing in for https://a.klaviyo.com: it decrypts
  and relays the bytes to the simulator at UPSTREAM_PORT (plain HTTP);
- an HTTP forward proxy that only tunnels (CONNECT host:port), as egress
  proxies do for https. For every tunnel it appends one line to DIR/proxy.log:
      CONNECT <host:port> <bytes client->server> <bytes server->client> <cleartext>
  where <cleartext> is 1 when the tunnelled client bytes contain
  "Klaviyo-API-Key" in the clear (they must not: TLS runs inside the tunnel).
  Any other method is answered 405 and logged as "REFUSED <method> <target>".
Writes DIR/tls.port and DIR/proxy.port once listening. Exits on SIGTERM."""
import os, select, signal, socket, ssl, sys, threading

d, up_port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
log = open(os.path.join(d, "proxy.log"), "a", buffering=1)
lock = threading.Lock()


def relay(a, b, seen=None):
    """Copies both ways until either side closes; returns (a->b, b->a) byte counts."""
    n = [0, 0]
    socks = [a, b]
    while True:
        r, _, _ = select.select(socks, [], [], 120)
        if not r:
            break
        for s in r:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                return n
            (b if s is a else a).sendall(data)
            n[0 if s is a else 1] += len(data)
            if seen is not None and s is a:
                seen.append(data[-4096:])


def tls_conn(raw, ctx):
    try:
        c = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        raw.close()
        return
    u = socket.create_connection(("127.0.0.1", up_port))
    try:
        relay(c, u)
    finally:
        c.close()
        u.close()


def proxy_conn(c):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = c.recv(4096)
        if not chunk:
            c.close()
            return
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    method, target = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2]
    if method != "CONNECT":
        with lock:
            log.write(f"REFUSED {method} {target}\n")
        c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        c.close()
        return
    host, port = target.rsplit(":", 1)
    try:
        u = socket.create_connection((host, int(port)))
    except OSError:
        c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        c.close()
        return
    c.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
    seen = [rest]
    if rest:
        u.sendall(rest)
    try:
        up, down = relay(c, u, seen)
    finally:
        c.close()
        u.close()
    clear = int(any(b"Klaviyo-API-Key" in s for s in seen))
    with lock:
        log.write(f"CONNECT {target} {up + len(rest)} {down} {clear}\n")


def serve(sock, handler, *args):
    while True:
        c, _ = sock.accept()
        threading.Thread(target=handler, args=(c, *args), daemon=True).start()


def listen(name):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
tls_sock, proxy_sock = listen("tls"), listen("proxy")
threading.Thread(target=serve, args=(tls_sock, tls_conn, ctx), daemon=True).start()
threading.Thread(target=serve, args=(proxy_sock, proxy_conn), daemon=True).start()
for name, s in (("tls", tls_sock), ("proxy", proxy_sock)):
    tmp = os.path.join(d, f"{name}.port.tmp")
    open(tmp, "w").write(str(s.getsockname()[1]))
    os.rename(tmp, os.path.join(d, f"{name}.port"))
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
signal.pause()
