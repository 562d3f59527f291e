"""simreq.py - one HTTP request to the Klaviyo simulator, for the contract
scripts that record its answers (0175, 0178). Imported from their inline
Python (sys.path gets tests/contract)."""
import json
import urllib.error
import urllib.request


def request(base, method, url, body=None, headers=None):
    """(status, body bytes) of METHOD url (a path is under base); an HTTP
    error's status and body are an answer like any other."""
    r = urllib.request.Request(url if url.startswith("http") else base + url, method=method,
                               data=json.dumps(body).encode() if body is not None else None,
                               headers=headers or {})
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
