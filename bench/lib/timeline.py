"""Shared analysis of the recording proxy's logs (bench/lib/recproxy.py):
per-account, per-second request timelines relative to a t0 (ms)."""
import collections


def read_requests(path):
    """[(t_recv_ms, t_done_ms, account, status, n_events)]"""
    out = []
    for ln in open(path):
        p = ln.split()
        if len(p) == 5:
            out.append((int(p[0]), int(p[1]), p[2], int(p[3]), int(p[4])))
    return out


def per_second(reqs, t0_ms, accounts):
    """{account: {second: [requests, accepted events, 429s]}} by receive time."""
    tl = {a: collections.defaultdict(lambda: [0, 0, 0]) for a in accounts}
    for tr, td, a, st, n in reqs:
        if a not in tl:
            continue
        c = tl[a][(tr - t0_ms) // 1000]
        c[0] += 1
        if st == 202:
            c[1] += n
        elif st == 429:
            c[2] += 1
    return tl


def print_timeline(tl, accounts, first, last, step=1, out=None):
    """One row per `step` seconds: requests/events (429s) per account."""
    import sys
    out = out or sys.stdout
    print("| t (s) | " + " | ".join(f"{a} req/ev (429)" for a in accounts) + " |", file=out)
    print("|---:|" + "---:|" * len(accounts), file=out)
    for s in range(first, last + 1, step):
        cells = []
        for a in accounts:
            r = e = t = 0
            for x in range(s, s + step):
                c = tl[a].get(x)
                if c:
                    r, e, t = r + c[0], e + c[1], t + c[2]
            cells.append(f"{r}/{e}" + (f" ({t})" if t else ""))
        print(f"| {s} | " + " | ".join(cells) + " |", file=out)
