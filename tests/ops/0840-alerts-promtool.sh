#!/usr/bin/env bash
# The chart's alerts fire when it matters (issue 18, item 2): the rendered
# PrometheusRule passes `promtool check rules`, every rule carries a
# `severity` label and `summary` / `runbook_url` annotations whose anchor is a
# heading of docs/runbook.md, and `promtool test rules` runs the unit tests in
# tests/ops/alerts/ (30 minutes of 401s, a throttled account, dead letters by
# reason, lag growing vs catching up, a pod down, the whole release gone,
# a customer table not restored, a pod not ready, a suppressions poller that
# stopped succeeding, a pod above 90 % of its memory limit, a Klaviyo revision
# near its retirement).
set -euo pipefail
export PATH="${TS_CACHE:-$HOME/.cache/tillstream}/bin:$PATH"
command -v helm >/dev/null || { echo "helm missing (scripts/helm.sh installs it)" >&2; exit 1; }
command -v promtool >/dev/null || { echo "promtool missing (scripts/setup.sh installs prometheus)" >&2; exit 1; }
py=${TS_CACHE:-$HOME/.cache/tillstream}/venv/bin/python
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
helm template rel "$TS_SOURCE_DIR/helm/tillstream" -f "$TS_SOURCE_DIR/tests/ops/values/multi-account.yaml" \
  >"$dir/manifests.yaml"
"$py" - "$dir" "$TS_SOURCE_DIR/docs/runbook.md" <<'PY'
import re, sys, yaml
d, runbook = sys.argv[1], sys.argv[2]
pr, = [x for x in yaml.safe_load_all(open(f"{d}/manifests.yaml")) if x and x["kind"] == "PrometheusRule"]
anchors = {re.sub(r"[^a-z0-9 -]", "", l[3:].strip().lower()).replace(" ", "-")
           for l in open(runbook) if l.startswith("## ")}
rules = [r for g in pr["spec"]["groups"] for r in g["rules"]]
want = {"TillstreamAccountStuck", "TillstreamKlaviyoAuthFailures", "TillstreamThrottled", "TillstreamDeadLetters",
        "TillstreamConsumerLag", "TillstreamTargetDown", "TillstreamAbsent", "TillstreamCustomerTableNotRestored",
        "TillstreamNotReady", "TillstreamSuppressionsStale", "TillstreamMemoryNearLimit",
        "TillstreamKlaviyoRevisionAging"}
assert {r["alert"] for r in rules} == want, {r["alert"] for r in rules} ^ want
for r in rules:
    assert r["labels"]["severity"] in ("critical", "warning"), r
    assert r["annotations"]["summary"], r
    url = r["annotations"]["runbook_url"]
    base, anchor = url.split("#")
    assert base == "https://docs.example.com/tillstream/runbook.md" and anchor == r["alert"].lower(), url
    assert anchor in anchors, f"docs/runbook.md has no section for {r['alert']}"
yaml.safe_dump({"groups": pr["spec"]["groups"]}, open(f"{d}/rules.yaml", "w"))
PY
promtool check rules "$dir/rules.yaml"
cp "$TS_SOURCE_DIR/tests/ops/alerts/tillstream.test.yaml" "$dir/"
promtool test rules "$dir/tillstream.test.yaml"
echo "alerts: every rule with severity, summary and runbook_url; promtool unit tests pass"
