"""bench/lib/membound.py - the memory bound of a tillstream-orders process
(docs/consumers.md, "What sets the memory bound"), computed from a config.

bound(cfg, n_accounts, partitions, customers) -> {term: bytes, ..., "total": bytes}

The per-item sizes are measured (docs/benchmarks.md, backfill RSS): they
depend on the records (here gen_volume.py's ~750-byte JSON orders of 4.2
events), so the bound is a formula in config values times record sizes,
not a constant."""

# measured sizes (bytes), for gen_volume.py's orders
BASE = 48 << 20        # code, 3 librdkafka handles and their threads, curl, admin, glibc arenas
CUSTOMER = 113         # customer table, per customer (docs/customer-table.md)
PART = 1100            # one queued part in a lane: its share of the record's engine copy
                       # (events JSON + profile + items), measured with max_queued_events 20,000 / 10,000
RECORD = 1600          # one record in flight: librdkafka's message and the fetch buffer it pins,
                       # the offset tracker's entry
REQUEST = 2 << 20      # per account: the request body being built and the one on the wire


def bound(cfg, n_accounts, partitions, customers):
    k = cfg.get("kafka", {})
    kl = cfg.get("klaviyo", {})
    co = cfg.get("consumer", {})
    max_q = int(kl.get("max_queued_events", 20000))
    max_in = int(co.get("max_inflight_records", 50000))
    qkb = int(k.get("queued.max.messages.kbytes", 65536))
    fmax = int(k.get("fetch.message.max.bytes", k.get("max.partition.fetch.bytes", 1 << 20)))
    out = {
        "base": BASE,
        "table": customers * CUSTOMER,
        "lanes": n_accounts * (max_q * PART + REQUEST),
        "in flight": max_in * RECORD,
        "fetch queue": qkb * 1024 + partitions * fmax,
    }
    out["total"] = sum(out.values())
    return out
