#!/usr/bin/env bash
# The chart takes what every chart takes (issue 18, item 5): each value of
# tests/ops/values/conventions.yaml shows in the rendered manifests; every
# value set renders to manifests that pass `kubernetes-validate --strict`;
# the schema is closed (a misspelt key fails `helm template`); cross-field
# checks fail `helm template`; `helm lint --strict` passes on the default
# values; least-privilege secrets; the backfill Job is named per window; the
# values table in docs/helm.md lists every value of values.yaml with its default.
set -euo pipefail
export PATH="${TS_CACHE:-$HOME/.cache/tillstream}/bin:$PATH"
command -v helm >/dev/null || { echo "helm missing (scripts/helm.sh installs it)" >&2; exit 1; }
venv=${TS_CACHE:-$HOME/.cache/tillstream}/venv
[ -x "$venv/bin/kubernetes-validate" ] || { echo "kubernetes-validate missing (scripts/setup.sh installs it)" >&2; exit 1; }
chart=$TS_SOURCE_DIR/helm/tillstream vals=$TS_SOURCE_DIR/tests/ops/values
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT

# Default values: lint --strict passes (the missing account is an INFO line,
# as helm lint shows every `fail`), but template/install fail naming `accounts`.
helm lint --strict "$chart" >"$dir/lint-default.log" 2>&1 || { cat "$dir/lint-default.log" >&2; exit 1; }
grep -q 'accounts: at least one Klaviyo account is required' "$dir/lint-default.log"
if helm template rel "$chart" >/dev/null 2>"$dir/default.err"; then echo "default values rendered without an account" >&2; exit 1; fi
grep -q 'accounts: at least one Klaviyo account is required' "$dir/default.err"

expect_fail() {   # expect_fail PATTERN HELM-ARGS...: helm template fails with PATTERN on stderr
  local pat=$1; shift
  if helm template rel "$chart" "$@" >/dev/null 2>"$dir/err"; then echo "accepted: $*" >&2; exit 1; fi
  grep -q -- "$pat" "$dir/err" || { echo "expected '$pat' for $*, got:" >&2; cat "$dir/err" >&2; exit 1; }
}
min=(-f "$vals/minimal.yaml")
# closed schema: a misspelt key anywhere fails instead of a crash-looping pod
expect_fail 'klaviyo: Additional property lingerms is not allowed' "${min[@]}" --set klaviyo.lingerms=5
expect_fail 'Additional property nodeselector is not allowed' "${min[@]}" --set nodeselector.a=b
expect_fail 'consumer: Additional property shutdown_grace is not allowed' "${min[@]}" --set consumer.shutdown_grace=1
expect_fail 'serviceMonitor: Additional property label is not allowed' "${min[@]}" --set serviceMonitor.label.release=x
expect_fail 'routing: Additional property default_outlet is not allowed' "${min[@]}" --set routing.default_outlet=1
expect_fail 'image.digest: Does not match pattern' "${min[@]}" --set image.digest=latest
expect_fail 'apiKeys.mount: apiKeys.mount must be one of the following: "env", "file"' "${min[@]}" --set apiKeys.mount=files
# cross-field checks fail helm template, not the pod
expect_fail 'accounts\[1\].outlets: outlet 102 is already served by account brand-a' -f "$vals/bad-outlet-two-accounts.yaml"
expect_fail 'apiKeys.create=false needs apiKeys.existingSecret' -f "$vals/bad-no-secret.yaml"
expect_fail 'registry.caSecret are set but registry.url is null' -f "$vals/bad-registry-no-url.yaml"
expect_fail 'routing.default_online_outlet: outlet 999 is served by no account' "${min[@]}" --set-string routing.default_online_outlet=999
expect_fail 'routing.only_accounts: brand-z is not in accounts' "${min[@]}" --set 'routing.only_accounts={brand-z}'

# every value set renders to manifests kubernetes-validate --strict accepts
# (custom resources - ServiceMonitor, PrometheusRule, ScaledObject - have no
# schema there; their shape is asserted below)
for v in minimal multi-account existing-secret backfill raw-avro registry conventions; do
  helm lint --strict "$chart" -f "$vals/$v.yaml" >/dev/null
  helm template rel "$chart" -f "$vals/$v.yaml" >"$dir/$v.yaml"
  mkdir "$dir/$v.d"
  [ "$v" = minimal ] && helm template rel "$chart" -f "$vals/$v.yaml" --set checkConfig.enabled=false >"$dir/no-check-config.yaml"
  "$venv/bin/python" - "$dir/$v.yaml" "$dir/$v.d" <<'PY'
import sys, yaml
for i, d in enumerate(x for x in yaml.safe_load_all(open(sys.argv[1])) if x):
    if d["apiVersion"].split("/")[0] in ("monitoring.coreos.com", "keda.sh"): continue
    yaml.safe_dump(d, open(f"{sys.argv[2]}/{i:02d}-{d['kind']}.yaml", "w"))
PY
  "$venv/bin/kubernetes-validate" --strict --quiet "$dir/$v.d"/*.yaml \
    || { echo "kubernetes-validate --strict failed on value set $v" >&2; exit 1; }
done

# NOTES.txt as `helm install` prints it (helm template leaves NOTES out: the
# test renders it through tpl in a copy of the chart)
cp -r "$chart" "$dir/chart-notes"
cp "$chart/templates/NOTES.txt" "$dir/chart-notes/notes.txt"
printf '%s\n' 'apiVersion: v1' 'kind: ConfigMap' 'metadata: {name: notes}' 'data:' \
  '  notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}' >"$dir/chart-notes/templates/zz-notes.yaml"
helm template rel "$dir/chart-notes" -f "$vals/multi-account.yaml" --show-only templates/zz-notes.yaml >"$dir/notes.yaml"
"$venv/bin/python" - "$dir" "$TS_SOURCE_DIR" <<'PY'
import json, re, sys, yaml
d, src = sys.argv[1], sys.argv[2]
def docs(name): return [x for x in yaml.safe_load_all(open(f"{d}/{name}.yaml")) if x]
def kind(ds, k): return [x for x in ds if x["kind"] == k]
def one(ds, k, suffix=""):
    xs = [x for x in kind(ds, k) if x["metadata"]["name"].endswith(suffix)]
    assert len(xs) == 1, (k, suffix, [x["metadata"]["name"] for x in xs]); return xs[0]
def pods(ds):
    return ([(x["metadata"]["name"], x["spec"]["template"]) for x in kind(ds, "Deployment") + kind(ds, "Job")] +
            [(x["metadata"]["name"], x["spec"]["jobTemplate"]["spec"]["template"]) for x in kind(ds, "CronJob")])

cv = docs("conventions")
# labels helm create puts on every object
for x in cv:
    l = x["metadata"]["labels"]
    assert l["helm.sh/chart"] == "tillstream-0.1.0" and l["app.kubernetes.io/managed-by"] == "Helm", x["metadata"]
    assert x["metadata"]["name"].startswith("pos"), ("fullnameOverride", x["metadata"]["name"])
sa = one(cv, "ServiceAccount")
assert sa["metadata"]["name"] == "pos-sa" and sa["automountServiceAccountToken"] is False
assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/pos"}
ps = pods(cv)
assert sorted(t["metadata"]["labels"]["app.kubernetes.io/component"] for _, t in ps) == \
    ["backfill", "customers", "dlq-stats", "orders", "suppressions"], [n for n, _ in ps]
want_res = {"customers": ("150m", "300Mi"), "orders": ("250m", "600Mi"), "backfill": ("300m", "640Mi"),
            "dlq-stats": ("20m", "80Mi"), "suppressions": ("30m", "96Mi")}
for name, t in ps:
    comp = t["metadata"]["labels"]["app.kubernetes.io/component"]
    assert t["metadata"]["labels"]["cost-centre"] == "retail", (name, "podLabels")
    assert t["metadata"]["annotations"]["team"] == "data", (name, "podAnnotations")
    s = t["spec"]
    assert s["serviceAccountName"] == "pos-sa" and s["automountServiceAccountToken"] is False, name
    assert s["imagePullSecrets"] == [{"name": "regcred"}], name
    assert s["nodeSelector"] == {"kubernetes.io/os": "linux"}, name
    assert s["tolerations"][0]["key"] == "dedicated", name
    assert s["affinity"]["nodeAffinity"], name
    tsc, = s["topologySpreadConstraints"]
    assert tsc["labelSelector"] == {"matchLabels": {"app.kubernetes.io/instance": "rel",
                                                    "app.kubernetes.io/component": comp}}, (name, tsc)
    assert {"name": "extra-ca", "configMap": {"name": "corp-ca"}} in s["volumes"], name
    for c in s["containers"] + s.get("initContainers", []):
        assert c["image"] == "registry.example/pos/tillstream@sha256:" + "0123456789abcdef" * 4, (name, c["image"])
        assert {"name": "TZ", "value": "UTC"} in c["env"], (name, c["name"], "extraEnv")
        assert {"name": "extra-ca", "mountPath": "/etc/corp-ca", "readOnly": True} in c["volumeMounts"], name
    c = s["containers"][0]
    inits = s.get("initContainers", [])
    if comp == "dlq-stats":
        assert not inits, name
    else:   # --check-config before the consumer: same binary, env and mounts, the check's resources
        ic, = inits
        assert ic["name"] == "check-config" and ic["command"] == c["command"], ic
        assert ic["args"] == ["--config", "/etc/tillstream/config.json", "--check-config"], ic["args"]
        assert ic["env"] == c["env"] and ic["volumeMounts"] == c["volumeMounts"], name
        assert ic["resources"] == {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}
        assert "readinessProbe" not in ic and "ports" not in ic, ic
    assert (c["resources"]["requests"]["cpu"], c["resources"]["limits"]["memory"]) == want_res[comp], (name, c["resources"])
    keys = [e["name"] for e in c["env"] if e["name"].startswith("KLAVIYO_KEY")]
    # least privilege: the dead-letter stats job reads Kafka only and gets no Klaviyo key
    assert keys == ([] if comp == "dlq-stats" else ["KLAVIYO_KEY_BRAND_A"]), (name, keys)
sm = one(cv, "ServiceMonitor")
assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
assert one(cv, "PrometheusRule")["metadata"]["labels"]["release"] == "kube-prometheus-stack"
# KEDA: one ScaledObject per Deployment on the consumer lag; the Deployments leave replicas to it
for comp, topic in (("customers", "pos.customers"), ("orders", "pos.orders")):
    so = one(cv, "ScaledObject", "-" + comp)
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    assert so["spec"]["scaleTargetRef"] == {"name": "pos-" + comp}
    assert so["spec"]["maxReplicaCount"] == 6 and so["spec"]["minReplicaCount"] == 1
    tr, = so["spec"]["triggers"]
    assert tr["type"] == "prometheus" and f'topic="{topic}"' in tr["metadata"]["query"], tr
    assert "tillstream_consumer_lag_records" in tr["metadata"]["query"] and tr["metadata"]["threshold"] == "10000"
    assert "replicas" not in one(cv, "Deployment", "-" + comp)["spec"], "replicas fight the KEDA HPA"
db = one(cv, "ConfigMap", "-dashboard")
assert db["metadata"]["labels"]["grafana_dashboard"] == "1" and db["metadata"]["labels"]["team"] == "data"
mn = docs("minimal")
nocheck = docs("no-check-config")
assert all("initContainers" not in t["spec"] for _, t in pods(nocheck)), "checkConfig.enabled=false"
assert not kind(mn, "ScaledObject"), "KEDA is off by default"
assert one(mn, "Deployment", "-orders")["spec"]["replicas"] == 1
# the backfill Job: named per window (Jobs are immutable), deleted after a TTL
job = one(cv, "Job")
assert re.fullmatch(r"pos-backfill-[0-9a-f]{10}", job["metadata"]["name"]), job["metadata"]["name"]
assert job["spec"]["ttlSecondsAfterFinished"] == 3600
bf = one(docs("backfill"), "Job")
assert bf["spec"]["ttlSecondsAfterFinished"] == 86400 and bf["metadata"]["name"] != job["metadata"]["name"]
assert re.fullmatch(r"rel-tillstream-backfill-[0-9a-f]{10}", bf["metadata"]["name"])
# helm test: a hook pod against the metrics Service
t = one(cv, "Pod")
assert t["metadata"]["annotations"]["helm.sh/hook"] == "test"
assert "pos-metrics:9464" in " ".join(t["spec"]["containers"][0]["args"])
assert t["spec"]["securityContext"]["runAsNonRoot"] is True
# NOTES.txt: what was installed, with which accounts and Secret, how to check it
notes = yaml.safe_load(open(f"{d}/notes.yaml"))["data"]["notes"]
for want in ("Deployment rel-tillstream-customers, 1 replica(s), topic pos.customers",
             "Deployment rel-tillstream-orders, 6 replica(s), topic pos.orders",
             "accounts: brand-a (outlets 101 102), brand-b (outlets 201)", "Secret rel-tillstream-api-keys",
             "helm test rel", "idle",
             # 260 MiB + 113 B x 50,000 + 2 x 10 MiB + 1,600 B x 2 x 20,005 parts = 346.4 MiB (docs/consumers.md)
             "orders memory: bound 347 MiB for 2 account(s) and 50000 customers (docs/consumers.md), limit 640Mi",
             # 160 MiB + 130 B x 50,000 + 1,600 B x 50,000 in flight = 242.5 MiB
             "customers memory: bound 243 MiB and 50000 customers (docs/consumers.md), limit 256Mi"):
    assert want in notes, (want, notes)
assert "pk_test" not in notes, "an API key in NOTES"

# The values table in docs/helm.md: one row per leaf of values.yaml (resources and
# label maps whole), its default as JSON.
vals = yaml.safe_load(open(f"{src}/helm/tillstream/values.yaml"))
def leaves(v, p=""):
    if isinstance(v, dict) and v and p != "kafka" and not p.endswith("resources") and not p.endswith("labels"):
        for k, x in v.items(): yield from leaves(x, f"{p}.{k}" if p else k)
    elif isinstance(v, dict) and p == "kafka":
        for k, x in v.items(): yield f"kafka.{k}", x
    else: yield p, v
want = dict(leaves(vals))
rows = {}
for line in open(f"{src}/docs/helm.md"):
    m = re.match(r"^\| `([^`]+)` \| `(.*?)` \|", line)
    if m: rows[m.group(1)] = m.group(2)
missing, extra = set(want) - set(rows), set(rows) - set(want)
assert not missing and not extra, f"docs/helm.md values table: missing {sorted(missing)}, not in values.yaml {sorted(extra)}"
for k, v in want.items():
    assert json.loads(rows[k]) == v, f"docs/helm.md: {k} default {rows[k]} but values.yaml has {json.dumps(v)}"
print(f"helm conventions: {len(ps)} pods with every pod value; {len(want)} values documented")
PY
echo "helm: lint --strict on defaults, closed schema, cross-field checks, kubernetes-validate --strict on 7 value sets"
