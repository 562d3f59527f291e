"""bench/lib/membound.py - the memory bounds of a tillstream-orders process
(docs/consumers.md, "What sets the memory bound") and of a
tillstream-customers process ("Consent state"), computed from a config. The
Helm chart computes the same (tests/ops/0812 compares the two).

bound(cfg, n_accounts, partitions, customers) -> {term: bytes, ..., "total": bytes}
customers_bound(cfg, customers) -> the same for tillstream-customers:
RSS <= C_BASE + C_CUSTOMER x customers + PART x consumer.max_inflight_records

RSS <= BASE + CUSTOMER x customers + SLOW x accounts
       + PART x min(accounts x (klaviyo.max_queued_events + PARTS_PER_RECORD),
                    PARTS_PER_RECORD x consumer.max_inflight_records)

The sizes are measured (docs/benchmarks.md, backfill RSS, 2026-12-02): a
throttled 8-account backfill's peak RSS against the parts queued at that
moment, with max_queued_events 20,000 and 10,000, is a line of slope 1,510
bytes per queued part and intercept 185 MiB (a 50,000-customer table
included). They depend on the records (gen_volume.py's ~750-byte JSON orders
of 4.2 events of ~600 bytes): PART scales with the event JSON's size. The
constants below round both up (BASE 260 MiB, PART 1,600 bytes): peaks of
the same config spread 392-440 MiB over 5 runs with full lanes on
2026-12-02 morning and 425-489 MiB (VmHWM) over 5 runs that afternoon; the
489 MiB run peaked with only 29,748 parts queued (glibc keeping freed
pages), so the base was raised from 220 to 260 MiB to cover that spread.
SLOW: the request bodies a lane may hold on the wire above the 4 of BASE
while Klaviyo answers slowly (up to 16 per endpoint in flight, rate x
latency; docs/delivery.md): 12 more of ~0.7 MB, rounded up; measured
2026-12-07, a backfill at 5 s answers peaked 55 MiB above one at 2 s
(7 per lane), 72 MiB above one at no latency, for 8 accounts."""

BASE = 260 << 20       # process, 3 librdkafka handles (fetch queues, broker threads' glibc arenas),
                       # curl and the request bodies on the wire (8 lanes x 4 x ~0.7 MB), admin
CUSTOMER = 113         # customer table, per customer (docs/customer-table.md)
PART = 1600            # one queued part (an event, a profile, a consent change) and its share of
                       # the record: the engine's copy of the mapped JSON and librdkafka's message
SLOW = 10 << 20        # per account: 12 more bodies in flight while Klaviyo is slow
PARTS_PER_RECORD = 5   # an order: 4.2 events (Placed Order + its Ordered Product lines) + profile


def bound(cfg, n_accounts, partitions, customers):
    del partitions  # the fetch queue is in BASE: 16 vs 64 MiB queued.max.messages.kbytes moved the peak < 5 MiB
    kl = cfg.get("klaviyo", {})
    co = cfg.get("consumer", {})
    max_q = int(kl.get("max_queued_events", 20000))
    max_in = int(co.get("max_inflight_records", 50000))
    parts = min(n_accounts * (max_q + PARTS_PER_RECORD), PARTS_PER_RECORD * max_in)
    out = {"base": BASE, "table": customers * CUSTOMER, "slow-Klaviyo bodies": n_accounts * SLOW,
           "queued parts": parts * PART}
    out["total"] = sum(out.values())
    return out


C_BASE = 160 << 20     # tillstream-customers: the process and its five librdkafka handles
                       # (docs/benchmarks.md, tillstream-customers memory: 218 MiB for a replay of 1 M)
C_CUSTOMER = 130       # a consent-table entry per (account, customer) (~120 B measured)


def customers_bound(cfg, customers):
    max_in = int(cfg.get("consumer", {}).get("max_inflight_records", 50000))
    out = {"base": C_BASE, "table": customers * C_CUSTOMER, "records in flight": max_in * PART}
    out["total"] = sum(out.values())
    return out
