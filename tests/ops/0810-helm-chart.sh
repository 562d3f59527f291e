#!/usr/bin/env bash
# The Helm chart: `helm lint --strict` and `helm template` over several value
# sets, with assertions on the rendered manifests; values.schema.json rejects
# bad values at install time with a message naming the field.
set -euo pipefail
export PATH="${TS_CACHE:-$HOME/.cache/tillstream}/bin:$PATH"
command -v helm >/dev/null || { echo "helm missing (scripts/helm.sh installs it)" >&2; exit 1; }
py=${TS_CACHE:-$HOME/.cache/tillstream}/venv/bin/python
chart=$TS_SOURCE_DIR/helm/tillstream vals=$TS_SOURCE_DIR/tests/ops/values
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
for v in minimal multi-account existing-secret backfill registry; do
  helm lint --strict "$chart" -f "$vals/$v.yaml" >/dev/null
  helm template rel "$chart" -f "$vals/$v.yaml" >"$dir/$v.yaml"
done
for bad in bad-outlets bad-replicas bad-registry; do
  if helm template rel "$chart" -f "$vals/$bad.yaml" >/dev/null 2>"$dir/$bad.err"; then
    echo "values $bad were accepted" >&2; exit 1
  fi
done
grep -q 'accounts.0.outlets: Invalid type. Expected: array' "$dir/bad-outlets.err"
grep -q 'orders.replicas' "$dir/bad-replicas.err"
grep -q 'registry.url' "$dir/bad-registry.err"
"$py" - "$dir" <<'PY'
import json, sys, yaml
d = sys.argv[1]
def docs(name): return [x for x in yaml.safe_load_all(open(f"{d}/{name}.yaml")) if x]
def kind(ds, k): return [x for x in ds if x["kind"] == k]
m = docs("minimal")
deps = {x["metadata"]["name"]: x for x in kind(m, "Deployment")}
assert set(deps) == {"rel-tillstream-customers", "rel-tillstream-orders"}, deps.keys()
for name, dep in deps.items():
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["command"] == ["/usr/local/bin/" + name.replace("rel-", "")]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}}
    assert spec["terminationGracePeriodSeconds"] == 30 + 15   # drain timeout + margin
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
    assert env["KLAVIYO_KEY_BRAND_A"] == {"name": "rel-tillstream-api-keys", "key": "brand-a"}
cfg = json.loads(kind(m, "ConfigMap")[0]["data"]["config.json"])
assert cfg["accounts"] == [{"name": "brand-a", "api_key_env": "KLAVIYO_KEY_BRAND_A", "outlets": ["101"]}]
assert cfg["admin"]["listen"] == "0.0.0.0:9464"
assert "pk_test" not in json.dumps(cfg), "an API key in the ConfigMap"
assert len(kind(m, "Secret")) == 1 and len(kind(m, "PodDisruptionBudget")) == 2 and kind(m, "Service")
ma = docs("multi-account")
cfg = json.loads(kind(ma, "ConfigMap")[0]["data"]["config.json"])
assert [a["name"] for a in cfg["accounts"]] == ["brand-a", "brand-b"]
assert cfg["kafka"]["sasl.password"] == "${file:/etc/tillstream/kafka-sasl/password}"
assert cfg["routing"]["default_online_outlet"] == "101"
orders = [x for x in kind(ma, "Deployment") if x["metadata"]["name"].endswith("orders")][0]
assert orders["spec"]["replicas"] == 6
assert orders["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 45 + 15
mounts = {v["mountPath"] for v in orders["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
assert {"/etc/tillstream/kafka-tls", "/etc/tillstream/kafka-sasl"} <= mounts
assert kind(ma, "ServiceMonitor") and kind(ma, "PrometheusRule")
alerts = {r["alert"] for g in kind(ma, "PrometheusRule")[0]["spec"]["groups"] for r in g["rules"]}
assert alerts == {"TillstreamDeadLetters", "TillstreamConsumerLag", "TillstreamThrottled", "TillstreamNotReady"}
cj = kind(ma, "CronJob")[0]["spec"]
assert cj["schedule"] == "5 * * * *"
cjc = cj["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
assert cjc["command"] == ["/usr/local/bin/tillstream-dlq"]
assert cjc["args"] == ["stats", "--config", "/etc/tillstream/config.json", "--json"]
assert not kind(m, "CronJob"), "the stats CronJob is optional"
es = docs("existing-secret")
assert not kind(es, "Secret"), "existingSecret must not render a Secret"
c = kind(es, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
assert c["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "klaviyo-keys", "key": "brand-a-key"}
bf = docs("backfill")
job = kind(bf, "Job")[0]["spec"]["template"]["spec"]
assert job["containers"][0]["command"] == ["/usr/local/bin/tillstream-orders"]
assert job["containers"][0]["args"] == ["--config", "/etc/tillstream/config.json", "--group",
                                        "tillstream-orders-backfill-2026-11", "--replay-from",
                                        "2026-11-01T00:00:00Z", "--replay-to", "now"]
assert job["restartPolicy"] == "OnFailure"
assert [x["metadata"]["name"] for x in kind(bf, "Deployment")] == ["rel-tillstream-orders"]
assert "registry" not in json.loads(kind(m, "ConfigMap")[0]["data"]["config.json"]), "no registry by default"
rg = docs("registry")
cfg = json.loads(kind(rg, "ConfigMap")[0]["data"]["config.json"])
assert cfg["registry"] == {"url": "https://schema-registry.data.svc:8081",
                           "username_env": "TILLSTREAM_REGISTRY_USERNAME",
                           "password_env": "TILLSTREAM_REGISTRY_PASSWORD",
                           "ca_bundle": "/etc/tillstream/registry-ca/ca.crt"}, cfg["registry"]
json.dump(cfg, open(f"{d}/registry-config.json", "w"))
pods = [x["spec"]["template"]["spec"] for x in kind(rg, "Deployment")]
pods.append(kind(rg, "CronJob")[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"])
for spec in pods:   # every pod that decodes records gets the credentials and the CA
    c = spec["containers"][0]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
    assert env["TILLSTREAM_REGISTRY_USERNAME"] == {"name": "registry-creds", "key": "user"}, env
    assert env["TILLSTREAM_REGISTRY_PASSWORD"] == {"name": "registry-creds", "key": "pass"}, env
    mounts = {v["name"]: v for v in c["volumeMounts"]}
    assert mounts["registry-ca"]["mountPath"] == "/etc/tillstream/registry-ca" and mounts["registry-ca"]["readOnly"]
    assert {"name": "registry-ca", "secret": {"secretName": "registry-ca"}} in spec["volumes"]
print("helm: lint clean on 5 value sets; manifests as expected; bad values rejected")
PY
# the rendered config is one the binaries accept (unknown keys would exit 2)
"$TS_BIN_DIR/tillstream-customers" --config "$dir/registry-config.json" --dry-run --input /dev/null >/dev/null
