#!/usr/bin/env python3
"""bench/lib/drycount.py DRY_RUN_OUTPUT -> {"account": events, ...} (JSON)
Events per account in a tillstream dry run (records neither dead-lettered nor
skipped), without parsing every event: each event has one unique_id."""
import json, re, sys
ACC = re.compile(r'^\{"input":\d+,"account":"((?:[^"\\]|\\.)*)"')
out = {}
for ln in open(sys.argv[1]):
    m = ACC.match(ln)
    if not m or '"dead_letter":null' not in ln or '"skipped":null' not in ln:
        continue
    out[m.group(1)] = out.get(m.group(1), 0) + ln.count('"unique_id":')
print(json.dumps(out))
