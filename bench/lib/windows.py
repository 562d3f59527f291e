"""Behaviour over time for the long live runs (bench/live_latency.sh
--windows S): one row per window of S seconds, so drift shows (latency that
creeps up, a window where requests stop, RSS that keeps growing)."""
import sys


def read_rss(path):
    """[(t_ms, rss_kib)] from common.sh's rss_sampler (one sample a second)."""
    out = []
    for ln in open(path):
        p = ln.split()
        if len(p) == 2:
            out.append((int(p[0]), int(p[1])))
    return out


def _pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def rows(samples, reqs, rss, t0_ms, window_s, last_s):
    """samples: [(produce_ms, latency_ms)]; reqs: timeline.read_requests();
    rss: read_rss(). One dict per window [k*S, (k+1)*S) seconds after t0:
    events produced in it and their p50/p99/max produce -> 202 latency,
    requests received and 429s in it, the highest RSS sampled in it."""
    n = last_s // window_s + 1
    lat = [[] for _ in range(n)]
    for tp, l in samples:
        k = (tp - t0_ms) // 1000 // window_s
        if 0 <= k < n:
            lat[k].append(l)
    req = [0] * n
    r429 = [0] * n
    for tr, _td, _a, st, _ev in reqs:
        k = (tr - t0_ms) // 1000 // window_s
        if 0 <= k < n:
            req[k] += 1
            r429[k] += st == 429
    mem = [0] * n
    for t, kib in rss:
        k = (t - t0_ms) // 1000 // window_s
        if 0 <= k < n:
            mem[k] = max(mem[k], kib)
    return [{"from": k * window_s, "events": len(lat[k]), "p50": _pct(lat[k], .5),
             "p99": _pct(lat[k], .99), "max": max(lat[k]) if lat[k] else float("nan"),
             "requests": req[k], "r429": r429[k], "rss_mib": mem[k] / 1024} for k in range(n)]


def print_windows(rws, window_s, out=None):
    out = out or sys.stdout
    full = [r for r in rws if r["events"]]
    if len(full) >= 3:
        # the first window holds the start (table restore, first fetches);
        # drift is the later windows against the second one
        base, end = full[1], full[-1]
        worst = max(full[1:], key=lambda r: r["p99"])
        print(f"over time, windows of {window_s} s: p99 per window {min(r['p99'] for r in full) / 1000:.3f}"
              f"-{worst['p99'] / 1000:.3f} s (worst from t = {worst['from']} s); peak RSS "
              f"{base['rss_mib']:.1f} MiB in window 2, {end['rss_mib']:.1f} MiB in the last "
              f"({end['rss_mib'] - base['rss_mib']:+.1f} MiB over {end['from'] - base['from']} s)", file=out)
    print(f"| t (s) | events produced | p50 s | p99 s | max s | requests | 429s | peak RSS MiB |", file=out)
    print("|---:|---:|---:|---:|---:|---:|---:|---:|", file=out)
    for r in rws:
        print(f"| {r['from']}-{r['from'] + window_s} | {r['events']:,} | {r['p50'] / 1000:.3f} | "
              f"{r['p99'] / 1000:.3f} | {r['max'] / 1000:.3f} | {r['requests']:,} | {r['r429']} | "
              f"{r['rss_mib']:.1f} |", file=out)
