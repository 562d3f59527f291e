#!/usr/bin/env bash
# No Docker engine runs here: the compose file is validated by Debian's
# docker-compose (`config`), the Dockerfile by hadolint (from PyPI), and the
# Dockerfile's build stage must run the same cmake steps as scripts/setup.sh.
set -euo pipefail
cd "$TS_SOURCE_DIR"
venv=${TS_CACHE:-$HOME/.cache/tillstream}/venv
command -v docker-compose >/dev/null || { echo "docker-compose missing (scripts/setup.sh installs it)" >&2; exit 1; }
docker-compose -f compose/compose.yaml config >"$(mktemp)"
docker-compose -f compose/compose.yaml config --services | sort >/tmp/ts-services.$$
diff <(printf '%s\n' customers generator kafka klaviyo-sim orders schema-registry) /tmp/ts-services.$$
rm -f /tmp/ts-services.$$
python3 -c 'import json; c=json.load(open("compose/config.json")); assert c["klaviyo"]["base_url"] == "http://klaviyo-sim:8080"'
"$venv/bin/hadolint" --config .hadolint.yaml Dockerfile
grep -q '^FROM .* AS build$' Dockerfile && grep -q -- '-slim$' Dockerfile && grep -q '^USER 10001$' Dockerfile
grep -q 'cmake -S . -B build -G Ninja' Dockerfile && grep -q 'cmake -S "$here" -B "$build" -G Ninja' scripts/setup.sh
grep -q 'cmake --build build' Dockerfile && grep -q 'cmake --build "$build"' scripts/setup.sh
# libphonenumber: built against in the build stage (as setup.sh installs it), shipped at run time
grep -q 'libphonenumber-dev libprotobuf-dev' Dockerfile && grep -q 'libphonenumber-dev libprotobuf-dev' scripts/setup.sh
grep -q 'libphonenumber8' Dockerfile
echo "compose and Dockerfile: valid"
