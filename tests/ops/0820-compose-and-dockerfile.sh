#!/usr/bin/env bash
# No Docker engine runs here: the compose file is validated by Debian's
# docker-compose (`config`) and its healthchecks, dependencies and Kafka
# listeners asserted, the Dockerfile by hadolint (from PyPI), and the
# Dockerfile's build stage must run the same cmake steps as scripts/setup.sh.
set -euo pipefail
cd "$TS_SOURCE_DIR"
venv=${TS_CACHE:-$HOME/.cache/tillstream}/venv
work_c=$(mktemp -d); trap 'rm -rf "$work_c"' EXIT
command -v docker-compose >/dev/null || { echo "docker-compose missing (scripts/setup.sh installs it)" >&2; exit 1; }
docker-compose -f compose/compose.yaml config >"$(mktemp)"
docker-compose -f compose/compose.yaml config --services | sort >/tmp/ts-services.$$
diff <(printf '%s\n' customers generator kafka klaviyo-sim orders schema-registry suppressions) /tmp/ts-services.$$
rm -f /tmp/ts-services.$$
python3 -c 'import json; c=json.load(open("compose/config.json")); assert c["klaviyo"]["base_url"] == "http://klaviyo-sim:8080"'
# healthchecks, depends_on service_healthy, a host listener for Kafka, no
# `version:` key, no sleeps (issue 18, item 7)
docker-compose -f compose/compose.yaml config >"$work_c/compose.yaml"
"$venv/bin/python" - compose/compose.yaml "$work_c/compose.yaml" "$work_c/checks.sh" <<'PY'
import re, sys, yaml
raw, norm = yaml.safe_load(open(sys.argv[1])), yaml.safe_load(open(sys.argv[2]))
assert "version" not in raw, "obsolete `version:` key"
svcs = norm["services"]
for name, s in svcs.items():
    hc = s.get("healthcheck", {})
    if name == "generator":   # a one-shot job: nothing depends on it
        assert hc.get("test") == ["NONE"], hc
    else:
        assert hc.get("test") and hc["test"][0] == "CMD", (name, hc)
        assert hc.get("interval") and hc.get("retries"), (name, hc)
    for dep, cond in (s.get("depends_on") or {}).items():
        assert cond == {"condition": "service_healthy"}, (name, dep, cond)
    assert "sleep" not in " ".join(map(str, (s.get("command") or []) + (s.get("entrypoint") or []))), name
    for p in s.get("ports", []):   # published on the host's loopback only
        assert str(p).startswith("127.0.0.1:"), (name, p)
assert set(svcs["orders"]["depends_on"]) == {"kafka", "schema-registry", "klaviyo-sim"}
assert svcs["suppressions"]["entrypoint"] == ["/usr/local/bin/tillstream-suppressions"]
assert set(svcs["suppressions"]["depends_on"]) == {"kafka", "schema-registry", "klaviyo-sim"}
assert set(svcs["generator"]["depends_on"]) == {"kafka", "schema-registry"}
env = svcs["kafka"]["environment"]
adv = dict(re.match(r"(\w+)://(.+)", x).groups() for x in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
assert adv["PLAINTEXT"] == "kafka:9092", adv                       # what the containers use
host, port = adv["HOST"].rsplit(":", 1)
assert host == "localhost", adv                                    # what the host uses
assert f"127.0.0.1:{port}:{port}/tcp" in svcs["kafka"]["ports"], svcs["kafka"]["ports"]
assert f"HOST://:{port}" in env["KAFKA_LISTENERS"] and "HOST:PLAINTEXT" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
assert not [p for p in svcs["kafka"]["ports"] if ":9092:" in p], "9092 published but advertised as kafka:9092"
# the tillstream-image healthchecks, to run against local binaries below
with open(sys.argv[3], "w") as f:
    f.write(f"sim_check={svcs['klaviyo-sim']['healthcheck']['test'][3]!r}\n")
    f.write(f"ready_check={svcs['orders']['healthcheck']['test'][3]!r}\n")
PY
# the simulator's healthcheck command (bash /dev/tcp: the image has no curl)
# passes against a running simulator and fails against a closed port / a 404
. "$work_c/checks.sh"
KLAVIYO_KEY_BRAND_A=pk_c "$TS_BIN_DIR/tillstream-klaviyo-sim" --port-file "$work_c/sim.port" \
    --account brand-a=KLAVIYO_KEY_BRAND_A >/dev/null 2>&1 & sim=$!
for _ in $(seq 100); do [ -s "$work_c/sim.port" ] && break; sleep 0.05; done
sp=$(cat "$work_c/sim.port")
bash -c "${sim_check//\/8080//$sp}" || { echo "the simulator's compose healthcheck fails on a live simulator" >&2; exit 1; }
if bash -c "${ready_check//\/9464//$sp}"; then echo "the /readyz healthcheck passed on a 404" >&2; exit 1; fi
kill "$sim"; wait "$sim" 2>/dev/null || true
if bash -c "${sim_check//\/8080//$sp}" 2>/dev/null; then echo "the healthcheck passed on a closed port" >&2; exit 1; fi
"$venv/bin/hadolint" --config .hadolint.yaml Dockerfile
grep -q '^FROM .* AS build$' Dockerfile && grep -q -- '-slim$' Dockerfile && grep -q '^USER 10001$' Dockerfile
grep -q 'cmake -S . -B build -G Ninja' Dockerfile && grep -q 'cmake -S "$here" -B "$build" -G Ninja' scripts/setup.sh
grep -q 'cmake --build build' Dockerfile && grep -q 'cmake --build "$build"' scripts/setup.sh
# libphonenumber: built against in the build stage (as setup.sh installs it), shipped at run time
grep -q 'libphonenumber-dev libprotobuf-dev' Dockerfile && grep -q 'libphonenumber-dev libprotobuf-dev' scripts/setup.sh
grep -q 'libphonenumber8' Dockerfile
echo "compose and Dockerfile: valid"
