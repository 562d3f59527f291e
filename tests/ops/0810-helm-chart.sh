#!/usr/bin/env bash
# ctest: cost 55 (seconds, about: long tests start first)
# The Helm chart: `helm lint --strict` and `helm template` over several value
# sets, with assertions on the rendered manifests; values.schema.json rejects
# bad values at install time with a message naming the field.
set -euo pipefail
export PATH="${TS_CACHE:-$HOME/.cache/tillstream}/bin:$PATH"
command -v helm >/dev/null || { echo "helm missing (scripts/helm.sh installs it)" >&2; exit 1; }
py=${TS_CACHE:-$HOME/.cache/tillstream}/venv/bin/python
chart=$TS_SOURCE_DIR/helm/tillstream vals=$TS_SOURCE_DIR/tests/ops/values
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
for v in minimal multi-account existing-secret backfill raw-avro registry; do
  extra=()   # the registry case also takes the repo's schemas as raw writer schemas, as a user would
  [ "$v" = registry ] && extra=(--set-file "registry.rawWriterSchemas.customers=$TS_SOURCE_DIR/schemas/customer.avsc"
                                --set-file "registry.rawWriterSchemas.orders=$TS_SOURCE_DIR/schemas/order.avsc")
  helm lint --strict "$chart" -f "$vals/$v.yaml" "${extra[@]}" >/dev/null
  helm template rel "$chart" -f "$vals/$v.yaml" "${extra[@]}" >"$dir/$v.yaml"
done
for bad in bad-outlets bad-replicas bad-registry bad-raw-schema bad-registry-no-url; do
  if helm template rel "$chart" -f "$vals/$bad.yaml" >/dev/null 2>"$dir/$bad.err"; then
    echo "values $bad were accepted" >&2; exit 1
  fi
done
grep -q 'accounts.0.outlets: Invalid type. Expected: array' "$dir/bad-outlets.err"
grep -q 'orders.replicas' "$dir/bad-replicas.err"
grep -q "registry.url: Does not match pattern" "$dir/bad-registry.err"
grep -q 'registry.rawWriterSchemas.orders: expected an Avro record schema' "$dir/bad-raw-schema.err"
grep -q 'registry.caSecret are set but registry.url is null' "$dir/bad-registry-no-url.err"
"$py" - "$dir" <<'PY'
import json, os, sys, yaml
d = sys.argv[1]
def docs(name): return [x for x in yaml.safe_load_all(open(f"{d}/{name}.yaml")) if x]
def kind(ds, k): return [x for x in ds if x["kind"] == k]
m = docs("minimal")
deps = {x["metadata"]["name"]: x for x in kind(m, "Deployment")}
assert set(deps) == {"rel-tillstream-customers", "rel-tillstream-orders", "rel-tillstream-suppressions"}, deps.keys()
# the suppressions poller: one active poller, never two during a rollout
sup = deps["rel-tillstream-suppressions"]["spec"]
assert sup["replicas"] == 1 and sup["strategy"] == {"type": "Recreate"}, sup
assert sup["template"]["spec"]["initContainers"][0]["args"][-1] == "--check-config"
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
assert cfg["suppressions"] == {"interval_ms": 60000}, cfg["suppressions"]
assert cfg["topics"]["suppressions_state"] == "tillstream.suppressions.state"
assert "pk_test" not in json.dumps(cfg), "an API key in the ConfigMap"
assert len(kind(m, "Secret")) == 1 and len(kind(m, "PodDisruptionBudget")) == 2 and kind(m, "Service")
ma = docs("multi-account")
cfg = json.loads(kind(ma, "ConfigMap")[0]["data"]["config.json"])
assert [a["name"] for a in cfg["accounts"]] == ["brand-a", "brand-b"]
assert "rate_limits" not in cfg["accounts"][0]
assert cfg["accounts"][1]["rate_limits"] == {"events_bulk": {"burst_per_s": 5, "steady_per_min": 100}}
assert cfg["kafka"]["sasl.password"] == "${file:/etc/tillstream/kafka-sasl/password}"
assert cfg["routing"]["default_online_outlet"] == "101"
orders = [x for x in kind(ma, "Deployment") if x["metadata"]["name"].endswith("orders")][0]
assert orders["spec"]["replicas"] == 6
assert orders["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 45 + 15
mounts = {v["mountPath"] for v in orders["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
assert {"/etc/tillstream/kafka-tls", "/etc/tillstream/kafka-sasl"} <= mounts
assert kind(ma, "ServiceMonitor") and kind(ma, "PrometheusRule")
alerts = {r["alert"] for g in kind(ma, "PrometheusRule")[0]["spec"]["groups"] for r in g["rules"]}
assert {"TillstreamDeadLetters", "TillstreamConsumerLag", "TillstreamThrottled", "TillstreamNotReady"} <= alerts  # all rules: ops.0840
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
for spec in [x["spec"]["template"]["spec"] for x in kind(m, "Deployment")]:
    c = spec["containers"][0]
    assert not [e for e in c["env"] if e["name"].startswith("TILLSTREAM_REGISTRY")]
    assert {v["name"] for v in spec["volumes"]} == {"config", "tmp"}, spec["volumes"]
def pod_specs(ds):   # every pod that decodes records: both Deployments, the backfill Job, the stats CronJob
    return ([(x["metadata"]["name"], x["spec"]["template"]["spec"]) for x in kind(ds, "Deployment")] +
            [(x["metadata"]["name"], x["spec"]["template"]["spec"]) for x in kind(ds, "Job")] +
            [(x["metadata"]["name"], x["spec"]["jobTemplate"]["spec"]["template"]["spec"]) for x in kind(ds, "CronJob")])
def write_config(cfg, name):   # the mounted paths made local, for the binaries below
    cfg = json.loads(json.dumps(cfg))
    reg = cfg["registry"]
    for k in ("raw_writer_schema_customers", "raw_writer_schema_orders"):
        if k in reg: reg[k] = reg[k].replace("/etc/tillstream/avro", f"{d}/{name}-avro")
    if "ca_bundle" in reg: reg["ca_bundle"] = "/etc/ssl/certs/ca-certificates.crt"
    cfg["admin"]["listen"] = "127.0.0.1:0"
    json.dump(cfg, open(f"{d}/{name}-config.json", "w"))
def write_mounted_schemas(cm, spec, name):   # what the raw-writer-schemas volume puts on disk
    os.makedirs(f"{d}/{name}-avro")
    vol = [v for v in spec["volumes"] if v["name"] == "raw-writer-schemas"][0]["configMap"]
    assert vol["name"] == cm["metadata"]["name"]
    for it in vol["items"]:
        open(f"{d}/{name}-avro/{it['path']}", "w").write(cm["data"][it["key"]])

rg = docs("registry")
cm = kind(rg, "ConfigMap")[0]
cfg = json.loads(cm["data"]["config.json"])
assert cfg["registry"] == {"url": "https://schema-registry.data.svc:8081",
                           "username_env": "TILLSTREAM_REGISTRY_USERNAME",
                           "password_env": "TILLSTREAM_REGISTRY_PASSWORD",
                           "ca_bundle": "/etc/tillstream/registry-ca/ca.crt",
                           "raw_writer_schema_customers": "/etc/tillstream/avro/customers.avsc",
                           "raw_writer_schema_orders": "/etc/tillstream/avro/orders.avsc"}, cfg["registry"]
# the ConfigMap holds names of env vars and paths, never a credential
assert set(cm["data"]) == {"config.json", "raw-writer-customers.avsc", "raw-writer-orders.avsc"}, cm["data"].keys()
assert "pk_test" not in json.dumps(cm) and "registry-creds" not in json.dumps(cm)
assert [x["metadata"]["name"] for x in kind(rg, "Secret")] == ["rel-tillstream-api-keys"], "the chart makes no registry Secret"
assert json.loads(cm["data"]["raw-writer-orders.avsc"]) == json.load(open(os.environ["TS_SOURCE_DIR"] + "/schemas/order.avsc"))
pods = pod_specs(rg)
assert sorted(n.rsplit("-", 1)[0] if "-backfill-" in n else n for n, _ in pods) == [
    "rel-tillstream-backfill", "rel-tillstream-customers", "rel-tillstream-dlq-stats", "rel-tillstream-orders",
    "rel-tillstream-suppressions"], pods
for name, spec in pods:   # every one gets the credentials, the CA and the schemas
    c = spec["containers"][0]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
    assert env["TILLSTREAM_REGISTRY_USERNAME"] == {"name": "registry-creds", "key": "user"}, (name, env)
    assert env["TILLSTREAM_REGISTRY_PASSWORD"] == {"name": "registry-creds", "key": "pass"}, (name, env)
    assert not [e for e in c["env"] if "value" in e], "a literal env value"
    mounts = {v["name"]: v for v in c["volumeMounts"]}
    assert mounts["registry-ca"] == {"name": "registry-ca", "mountPath": "/etc/tillstream/registry-ca", "readOnly": True}
    assert mounts["raw-writer-schemas"] == {"name": "raw-writer-schemas", "mountPath": "/etc/tillstream/avro", "readOnly": True}
    vols = {v["name"]: v for v in spec["volumes"]}
    assert vols["registry-ca"]["secret"] == {"secretName": "registry-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert vols["raw-writer-schemas"]["configMap"]["items"] == [
        {"key": "raw-writer-customers.avsc", "path": "customers.avsc"},
        {"key": "raw-writer-orders.avsc", "path": "orders.avsc"}]
orders = [s for n, s in pods if n == "rel-tillstream-orders"][0]
write_mounted_schemas(cm, orders, "registry")
write_config(cfg, "registry")
with open(f"{d}/registry.env", "w") as f:   # the names the pods get, with stand-in values
    for e in orders["containers"][0]["env"]: f.write(f"{e['name']}=stand-in\n")

ra = docs("raw-avro")
cm = kind(ra, "ConfigMap")[0]
cfg = json.loads(cm["data"]["config.json"])
assert cfg["registry"] == {"raw_writer_schema_customers": "/etc/tillstream/avro/customers.avsc"}, cfg["registry"]
assert set(cm["data"]) == {"config.json", "raw-writer-customers.avsc"}
(name, spec), = pod_specs(ra)
c = spec["containers"][0]
assert [e["name"] for e in c["env"]] == ["KLAVIYO_KEY_BRAND_A"], "no registry credentials without a registry"
assert {v["name"] for v in spec["volumes"]} == {"config", "tmp", "raw-writer-schemas"}
write_mounted_schemas(cm, spec, "raw-avro")
write_config(cfg, "raw-avro")
print("helm: lint clean on 6 value sets; manifests as expected; bad values rejected")
PY
# The rendered configs are ones the real binaries start with: the registry
# block's keys parse, the env var names in the config are the ones the pods
# get, and the mounted raw writer schemas load (each a config error, exit 2,
# otherwise). The consumers run to the end of empty topics on the mock cluster.
"$TS_BIN_DIR/tillstream-sandbox-kafka" --topic pos.customers:1 --topic pos.orders:1 --topic tillstream.customers.state:1 --topic pos.klaviyo.suppressions:1 \
    --topic tillstream.suppressions.state:1 --topic pos.deadletter:1 --bootstrap-file "$dir/bootstrap" >/dev/null 2>&1 &
kafka_pid=$!; trap 'kill "$kafka_pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -s "$dir/bootstrap" ] && break; sleep 0.1; done
export TILLSTREAM_BOOTSTRAP_SERVERS=$(cat "$dir/bootstrap")
# the suppressions poller's first full pass over brand-a, as it commits it:
# without it tillstream-customers waits (docs/consent.md, "First deployment")
printf 'brand-a\t{"v":1,"pass_at":1700000000000}\n' |
  kcat -b "$TILLSTREAM_BOOTSTRAP_SERVERS" -P -t tillstream.suppressions.state -K $'\t'
run() {   # run ENV-FILE BINARY CASE: to the end of the empty topics, with the env vars in ENV-FILE
  env $(cat "$1") timeout 60 "$TS_BIN_DIR/$2" --config "$dir/$3-config.json" --exit-at-end >"$dir/$3.$2.log" 2>&1
}
echo KLAVIYO_KEY_BRAND_A=stand-in >"$dir/keys.env"
rc=0; run "$dir/keys.env" tillstream-orders registry || rc=$?
[ "$rc" = 2 ] && grep -q 'registry.username_env: environment variable TILLSTREAM_REGISTRY_USERNAME is not set' \
    "$dir/registry.tillstream-orders.log" || { echo "registry config without its env vars: exit $rc" >&2; exit 1; }
for c in "registry.env tillstream-orders registry" "registry.env tillstream-customers registry" \
         "keys.env tillstream-customers raw-avro"; do
  set -- $c
  run "$dir/$1" "$2" "$3" || { echo "$2 did not start on the rendered $3 config:" >&2; cat "$dir/$3.$2.log" >&2; exit 1; }
done
# the init container's command on the same config and env: exit 0
env $(cat "$dir/registry.env") "$TS_BIN_DIR/tillstream-orders" --config "$dir/registry-config.json" --check-config >/dev/null
env $(cat "$dir/keys.env") "$TS_BIN_DIR/tillstream-suppressions" --config "$dir/raw-avro-config.json" --check-config >/dev/null
# apiKeys.mount=file: the keys are files of the mounted Secret (a directory
# mount, which the kubelet updates in place: a rotated key is used without a
# restart, docs/helm.md), never env vars; the binary starts on that config.
helm template rel "$chart" -f "$vals/minimal.yaml" --set apiKeys.mount=file >"$dir/keyfiles.yaml"
"$py" - "$dir" <<'PY'
import json, os, sys, yaml
d = sys.argv[1]
ds = [x for x in yaml.safe_load_all(open(f"{d}/keyfiles.yaml")) if x]
cfg = json.loads([x for x in ds if x["kind"] == "ConfigMap"][0]["data"]["config.json"])
assert cfg["accounts"] == [{"name": "brand-a", "outlets": ["101"],
                            "api_key_file": "/etc/tillstream/api-keys/brand-a"}], cfg["accounts"]
deps = [x for x in ds if x["kind"] == "Deployment"]
assert len(deps) == 3
for dep in deps:
    spec = dep["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in spec["volumes"]}
    assert vols["api-keys"]["secret"] == {"secretName": "rel-tillstream-api-keys", "defaultMode": 0o440}, vols
    for c in spec["containers"] + spec.get("initContainers", []):
        assert not [e for e in c.get("env", []) if e["name"].startswith("KLAVIYO_KEY")], (dep["metadata"]["name"], c["env"])
        m = [v for v in c["volumeMounts"] if v["name"] == "api-keys"]
        assert m == [{"name": "api-keys", "mountPath": "/etc/tillstream/api-keys", "readOnly": True}], m
cfg["accounts"][0]["api_key_file"] = f"{d}/api-keys/brand-a"
cfg["admin"]["listen"] = "127.0.0.1:0"
os.makedirs(f"{d}/api-keys")
open(f"{d}/api-keys/brand-a", "w").write("stand-in\n")
json.dump(cfg, open(f"{d}/keyfiles-config.json", "w"))
PY
"$TS_BIN_DIR/tillstream-orders" --config "$dir/keyfiles-config.json" --check-config >/dev/null
rm "$dir/api-keys/brand-a"
rc=0; "$TS_BIN_DIR/tillstream-orders" --config "$dir/keyfiles-config.json" --check-config >/dev/null 2>"$dir/nokey.err" || rc=$?
[ "$rc" = 2 ] && grep -q 'accounts\[0\].api_key_file: cannot read' "$dir/nokey.err" ||
  { echo "a missing key file: exit $rc" >&2; cat "$dir/nokey.err" >&2; exit 1; }
echo "helm: apiKeys.mount=file mounts the Secret as files and the binary reads its key there"
echo "helm: the rendered registry and raw-avro configs start both consumers (and pass the poller's --check-config)"
