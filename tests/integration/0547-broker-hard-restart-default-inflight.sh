#!/usr/bin/env bash
# ctest: cost 80 (seconds, about: long tests start first)
# 0545's hard broker restart (SIGKILL, 40 s down, restart on the data dir)
# with the default consumer.max_inflight_records (50,000) instead of 100:
# only the lanes (Klaviyo stalled) pause the partitions when the assignment
# is lost; the consumer must resume by itself and finish, nothing lost.
TS_MAX_INFLIGHT_RECORDS=default exec bash "$TS_SOURCE_DIR/tests/integration/0545-broker-hard-restart.sh"
