#!/usr/bin/env bash
# The production binaries (tillstream-customers, -orders, -suppressions,
# -decode) link the core library only: no simulator,
# generator, dead-letter-tool or Avro-encoder symbol in them, and each
# records only the shared libraries it calls (--as-needed).
set -euo pipefail
bin=$TS_BIN_DIR
tools_re=' [TtDdBb] (ts_sim_|ts_gen_|ts_dlqtool_|ts_avro_enc|ts_avro_encode)'
fail=0
for b in customers orders suppressions decode; do
  n=$(nm "$bin/tillstream-$b" | grep -cE "$tools_re" || true)
  [ "$n" = 0 ] || { echo "FAIL: tillstream-$b carries $n dev-tool symbols:" >&2;
                    nm "$bin/tillstream-$b" | grep -E "$tools_re" | head >&2; fail=1; }
done
# positive controls: the tools do carry them, so the pattern matches something
# (grep -c, not -q: with pipefail an early-exiting grep -q makes nm die of SIGPIPE)
nm "$bin/tillstream-klaviyo-sim" | grep -cE ' T ts_sim_' >/dev/null || { echo "FAIL: control: no ts_sim_ in the simulator" >&2; fail=1; }
nm "$bin/tillstream-gen" | grep -cE ' T ts_avro_enc' >/dev/null || { echo "FAIL: control: no encoder in the generator" >&2; fail=1; }
needed() { readelf -d "$1" | awk '/NEEDED/{gsub(/[][]/,"",$5); print $5}' | tr '\n' ' '; }
dec=$(needed "$bin/tillstream-decode")
case "$dec" in *librdkafka*|*microhttpd*) echo "FAIL: tillstream-decode needs $dec" >&2; fail=1 ;; esac
for b in customers orders suppressions decode; do echo "tillstream-$b: $(needed "$bin/tillstream-$b")"; done
[ $fail = 0 ] && echo "production binaries: no dev-tool symbols"
exit $fail
