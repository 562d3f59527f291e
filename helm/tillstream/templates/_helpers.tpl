{{- define "tillstream.fullname" -}}
{{- if .Values.fullnameOverride }}{{ .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}{{ else }}{{ printf "%s-tillstream" .Release.Name | trunc 40 | trimSuffix "-" }}{{ end -}}
{{- end -}}
{{- define "tillstream.chart" -}}{{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}{{- end -}}
{{/* Labels of every object (helm create's set). */}}
{{- define "tillstream.labels" -}}
app.kubernetes.io/name: tillstream
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "tillstream.chart" . }}
{{- end -}}
{{/* The selector of a component's pods (immutable in a Deployment: never add to it). */}}
{{- define "tillstream.selectorLabels" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}
{{- define "tillstream.image" -}}
{{- with .Values.image }}{{ if .digest }}{{ .repository }}@{{ .digest }}{{ else }}{{ .repository }}:{{ .tag }}{{ end }}{{ end -}}
{{- end -}}
{{- define "tillstream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}{{ .Values.serviceAccount.name | default (include "tillstream.fullname" .) }}{{ else }}{{ .Values.serviceAccount.name | default "default" }}{{ end -}}
{{- end -}}
{{- define "tillstream.secretName" -}}
{{- if .Values.apiKeys.existingSecret }}{{ .Values.apiKeys.existingSecret }}{{ else }}{{ include "tillstream.fullname" . }}-api-keys{{ end -}}
{{- end -}}
{{/* Pod template metadata: dict root, component, annotations (extra, e.g. the config checksum). */}}
{{- define "tillstream.podMetadata" -}}
labels:
  {{- include "tillstream.labels" .root | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
  {{- with .root.Values.podLabels }}{{ toYaml . | nindent 2 }}{{ end }}
{{- $ann := merge (dict) (.annotations | default dict) .root.Values.podAnnotations }}
{{- with $ann }}
annotations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
{{/*
Checks across fields that the schema cannot express; each fails `helm
template` / `helm install` with the field's path (helm lint shows a chart's
`fail` as INFO). Included by the ConfigMap, which every release renders.
*/}}
{{- define "tillstream.validate" -}}
{{- if not .Values.accounts }}
{{- fail "accounts: at least one Klaviyo account is required (name, outlets, envVar, keyName)" }}
{{- end }}
{{- $owner := dict -}}
{{- $names := dict -}}
{{- $envs := dict -}}
{{- range $i, $a := .Values.accounts }}
{{- if hasKey $names $a.name }}{{ fail (printf "accounts[%d].name: %s is already accounts[%v]" $i $a.name (get $names $a.name)) }}{{ end }}
{{- $_ := set $names $a.name $i -}}
{{- if hasKey $envs $a.envVar }}{{ fail (printf "accounts[%d].envVar: %s is already used by accounts[%v]" $i $a.envVar (get $envs $a.envVar)) }}{{ end }}
{{- $_ := set $envs $a.envVar $i -}}
{{- range $a.outlets }}
{{- if hasKey $owner . }}{{ fail (printf "accounts[%d].outlets: outlet %s is already served by account %s (an outlet belongs to one account)" $i . (get $owner .)) }}{{ end }}
{{- $_ := set $owner . $a.name -}}
{{- end }}
{{- end }}
{{- with .Values.routing.default_online_outlet }}
{{- if not (hasKey $owner (toString .)) }}{{ fail (printf "routing.default_online_outlet: outlet %v is served by no account" .) }}{{ end }}
{{- end }}
{{- range .Values.routing.only_accounts }}
{{- if not (hasKey $names .) }}{{ fail (printf "routing.only_accounts: %s is not in accounts[].name" .) }}{{ end }}
{{- end }}
{{- if and (not .Values.apiKeys.create) (not .Values.apiKeys.existingSecret) }}
{{- fail "apiKeys.create=false needs apiKeys.existingSecret (the Secret with the keys accounts[].keyName)" }}
{{- end }}
{{- if and (not .Values.registry.url) (or .Values.registry.basicAuth.existingSecret .Values.registry.caSecret) }}
{{- fail "registry.basicAuth.existingSecret / registry.caSecret are set but registry.url is null" }}
{{- end }}
{{- if and .Values.keda.enabled (gt (int .Values.keda.minReplicaCount) (int .Values.keda.maxReplicaCount)) }}
{{- fail "keda.minReplicaCount is above keda.maxReplicaCount" }}
{{- end }}
{{- if .Values.memoryBound.check }}
{{- range $c := list "customers" "orders" }}
{{- if (index $.Values $c).enabled }}
{{- include "tillstream.memoryCheck" (dict "root" $ "path" (printf "%s.resources.limits.memory" $c) "resources" (index $.Values $c).resources "binary" (printf "tillstream-%s" $c)) }}
{{- end }}
{{- end }}
{{- if .Values.backfill.enabled }}
{{- include "tillstream.memoryCheck" (dict "root" . "path" "backfill.resources.limits.memory" "resources" .Values.backfill.resources "binary" .Values.backfill.binary) }}
{{- end }}
{{- end }}
{{- end -}}
{{/* The config file: docs/configuration.md. Keys come from env vars (apiKeys.mount env) or
from the mounted Secret's files (apiKeys.mount file), never from the ConfigMap. */}}
{{- define "tillstream.config" -}}
{{- $accounts := list -}}
{{- range .Values.accounts -}}
{{- $a := dict "name" .name "outlets" .outlets -}}
{{- if eq ($.Values.apiKeys.mount | default "env") "file" }}
{{- $_ := set $a "api_key_file" (printf "/etc/tillstream/api-keys/%s" .keyName) -}}
{{- else }}
{{- $_ := set $a "api_key_env" .envVar -}}
{{- end }}
{{- with .rateLimits }}{{- $_ := set $a "rate_limits" . -}}{{- end }}
{{- $accounts = append $accounts $a -}}
{{- end -}}
{{- $cfg := dict "kafka" .Values.kafka "topics" .Values.topics "klaviyo" .Values.klaviyo "accounts" $accounts
     "routing" .Values.routing "consumer" .Values.consumer
     "admin" (dict "listen" (printf "0.0.0.0:%d" (int .Values.admin.port))) "log" (dict "level" .Values.logLevel)
     "customers" (dict "sync" (.Values.customersSync | default "all") "wait_for_suppressions" .Values.waitForSuppressions)
     "suppressions" (dict "interval_ms" (int .Values.suppressions.intervalMs)) -}}
{{- with .Values.registry }}
{{- $reg := dict -}}
{{- if .url }}
{{- $_ := set $reg "url" .url -}}
{{- if .basicAuth.existingSecret }}
{{- $_ := set $reg "username_env" "TILLSTREAM_REGISTRY_USERNAME" -}}
{{- $_ := set $reg "password_env" "TILLSTREAM_REGISTRY_PASSWORD" -}}
{{- end }}
{{- if .caSecret }}{{- $_ := set $reg "ca_bundle" "/etc/tillstream/registry-ca/ca.crt" -}}{{- end }}
{{- end }}
{{- range $kind := list "customers" "orders" }}
{{- with index $.Values.registry.rawWriterSchemas $kind }}
{{- $s := fromJson . -}}
{{- if or (hasKey $s "Error") (ne (toString (get $s "type")) "record") }}
{{- fail (printf "registry.rawWriterSchemas.%s: expected an Avro record schema (the .avsc JSON text)" $kind) }}
{{- end }}
{{- $_ := set $reg (printf "raw_writer_schema_%s" $kind) (printf "/etc/tillstream/avro/%s.avsc" $kind) -}}
{{- end }}
{{- end }}
{{- if $reg }}{{- $_ := set $cfg "registry" $reg -}}{{- end }}
{{- end }}
{{- toPrettyJson $cfg -}}
{{- end -}}
{{/* "customers orders": the kinds with an inline raw writer schema (ConfigMap keys raw-writer-<kind>.avsc) */}}
{{- define "tillstream.rawWriterSchemas" -}}
{{- $kinds := list -}}
{{- range $kind := list "customers" "orders" }}{{- if index $.Values.registry.rawWriterSchemas $kind }}{{- $kinds = append $kinds $kind -}}{{- end }}{{- end }}
{{- join " " $kinds -}}
{{- end -}}
{{/*
A pod spec: dict root, name (container), component, binary, probes,
resources, args, keys (true: the pod gets every account's Klaviyo key;
the dead-letter tools need none).
*/}}
{{- define "tillstream.podSpec" -}}
{{- $v := .root.Values -}}
serviceAccountName: {{ include "tillstream.serviceAccountName" .root }}
automountServiceAccountToken: false
terminationGracePeriodSeconds: {{ add (div $v.consumer.shutdown_grace_ms 1000) 15 }}
{{- with $v.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  fsGroup: 10001
  seccompProfile: {type: RuntimeDefault}
{{- with $v.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- range . }}
  {{- $c := deepCopy . }}
  {{- if not $c.labelSelector }}
  {{- $_ := set $c "labelSelector" (dict "matchLabels" (include "tillstream.selectorLabels" $ | fromYaml)) }}
  {{- end }}
  - {{- toYaml $c | nindent 4 }}
  {{- end }}
{{- end }}
{{- if and $v.checkConfig.enabled .checkConfig }}
initContainers:
  # the start-up checks without starting: a bad config stops here with its message
  - name: check-config
    {{- include "tillstream.container" (dict "root" .root "binary" .binary "keys" .keys "args" (list "--check-config") "resources" $v.checkConfig.resources) | nindent 4 }}
{{- end }}
containers:
  - name: {{ .name }}
    {{- include "tillstream.container" . | nindent 4 }}
volumes:
  - name: config
    configMap: {name: {{ include "tillstream.fullname" .root }}-config}
  - name: tmp
    emptyDir: {}
  {{- if and .keys (eq ($v.apiKeys.mount | default "env") "file") }}
  - name: api-keys   # a directory mount (no subPath): the kubelet updates it in place
    secret: {secretName: {{ include "tillstream.secretName" .root }}, defaultMode: 0440}   # group: fsGroup
  {{- end }}
  {{- if $v.kafkaTls.secretName }}
  - name: kafka-tls
    secret: {secretName: {{ $v.kafkaTls.secretName }}}
  {{- end }}
  {{- if $v.kafkaSasl.secretName }}
  - name: kafka-sasl
    secret: {secretName: {{ $v.kafkaSasl.secretName }}}
  {{- end }}
  {{- if and $v.registry.url $v.registry.caSecret }}
  - name: registry-ca
    secret:   # only ca.crt, even from a Secret that also holds a key
      secretName: {{ $v.registry.caSecret }}
      items: [{key: ca.crt, path: ca.crt}]
  {{- end }}
  {{- with include "tillstream.rawWriterSchemas" .root }}
  - name: raw-writer-schemas
    configMap:
      name: {{ include "tillstream.fullname" $.root }}-config
      items:
        {{- range splitList " " (trim .) }}
        - {key: raw-writer-{{ . }}.avsc, path: {{ . }}.avsc}
        {{- end }}
  {{- end }}
  {{- with $v.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
{{/* The body of a tillstream container (after its name): the podSpec's dict. */}}
{{- define "tillstream.container" -}}
{{- $v := .root.Values -}}
image: {{ include "tillstream.image" .root | quote }}
imagePullPolicy: {{ $v.image.pullPolicy }}
command: ["/usr/local/bin/{{ .binary }}"]
{{- if eq .binary "tillstream-dlq" }}
args: {{ toJson (concat (list "stats" "--config" "/etc/tillstream/config.json") (.args | default list)) }}
{{- else }}
args: {{ toJson (concat (list "--config" "/etc/tillstream/config.json") (.args | default list)) }}
{{- end }}
{{- $env := list }}
{{- if and .keys (ne ($v.apiKeys.mount | default "env") "file") }}
{{- range $v.accounts }}
{{- $env = append $env (dict "name" .envVar "valueFrom" (dict "secretKeyRef" (dict "name" (include "tillstream.secretName" $.root) "key" .keyName))) }}
{{- end }}
{{- end }}
{{- with $v.registry }}{{- if and .url .basicAuth.existingSecret }}
{{- $env = append $env (dict "name" "TILLSTREAM_REGISTRY_USERNAME" "valueFrom" (dict "secretKeyRef" (dict "name" .basicAuth.existingSecret "key" .basicAuth.usernameKey))) }}
{{- $env = append $env (dict "name" "TILLSTREAM_REGISTRY_PASSWORD" "valueFrom" (dict "secretKeyRef" (dict "name" .basicAuth.existingSecret "key" .basicAuth.passwordKey))) }}
{{- end }}{{- end }}
{{- $env = concat $env $v.extraEnv }}
{{- with $env }}
env: {{- toYaml . | nindent 2 }}
{{- end }}
{{- if or .probes .port }}
ports:
  - {name: admin, containerPort: {{ $v.admin.port }}}
{{- end }}
{{- if .probes }}
livenessProbe:
  httpGet: {path: /healthz, port: admin}
  periodSeconds: 10
  failureThreshold: 6
readinessProbe:
  httpGet: {path: /readyz, port: admin}
  periodSeconds: 5
{{- end }}
resources: {{ toJson .resources }}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: ["ALL"]}
volumeMounts:
  - {name: config, mountPath: /etc/tillstream/config.json, subPath: config.json, readOnly: true}
  - {name: tmp, mountPath: /tmp}
  {{- if and .keys (eq ($v.apiKeys.mount | default "env") "file") }}
  - {name: api-keys, mountPath: /etc/tillstream/api-keys, readOnly: true}
  {{- end }}
  {{- if $v.kafkaTls.secretName }}
  - {name: kafka-tls, mountPath: /etc/tillstream/kafka-tls, readOnly: true}
  {{- end }}
  {{- if $v.kafkaSasl.secretName }}
  - {name: kafka-sasl, mountPath: /etc/tillstream/kafka-sasl, readOnly: true}
  {{- end }}
  {{- if and $v.registry.url $v.registry.caSecret }}
  - {name: registry-ca, mountPath: /etc/tillstream/registry-ca, readOnly: true}
  {{- end }}
  {{- if include "tillstream.rawWriterSchemas" .root }}
  - {name: raw-writer-schemas, mountPath: /etc/tillstream/avro, readOnly: true}
  {{- end }}
  {{- with $v.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
{{/*
The memory bounds in MiB (docs/consumers.md): tillstream-orders, "What sets
the memory bound": 260 MiB + 113 B per customer + 10 MiB per active account
(request bodies in flight while Klaviyo is slow) + 1,600 B per queued part,
parts = min(active accounts x (klaviyo.max_queued_events + 5),
5 x consumer.max_inflight_records); tillstream-customers, "Consent state":
160 MiB + 130 B per customer + 1,600 B x consumer.max_inflight_records. The
two defaults are the binary's (docs/config-reference.md; tests/ops/0812
compares them).
*/}}
{{- define "tillstream.activeAccounts" -}}
{{- if .Values.routing.only_accounts }}{{ len .Values.routing.only_accounts }}{{ else }}{{ len .Values.accounts }}{{ end -}}
{{- end -}}
{{- define "tillstream.maxQueued" -}}{{ int (.Values.klaviyo.max_queued_events | default 20000) }}{{- end -}}
{{- define "tillstream.maxInflight" -}}{{ int (.Values.consumer.max_inflight_records | default 50000) }}{{- end -}}
{{- define "tillstream.ordersBoundMiB" -}}
{{- $accounts := int (include "tillstream.activeAccounts" .) -}}
{{- $parts := min (mul $accounts (add (int (include "tillstream.maxQueued" .)) 5)) (mul 5 (int (include "tillstream.maxInflight" .))) -}}
{{- $bytes := add (mul 260 1048576) (mul 113 (int .Values.memoryBound.customers)) (mul $accounts 10 1048576) (mul 1600 $parts) -}}
{{- ceil (divf $bytes 1048576) | int -}}
{{- end -}}
{{- define "tillstream.customersBoundMiB" -}}
{{- $bytes := add (mul 160 1048576) (mul 130 (int .Values.memoryBound.customers)) (mul 1600 (int (include "tillstream.maxInflight" .))) -}}
{{- ceil (divf $bytes 1048576) | int -}}
{{- end -}}
{{/* A Kubernetes quantity in bytes; dict value, path (for the error). */}}
{{- define "tillstream.quantityBytes" -}}
{{- if not (kindIs "string" .value) }}{{ .value | int64 }}{{ else -}}
{{- $q := .value -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $q -}}
{{- $unit := trimPrefix $num $q -}}
{{- $scale := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 -}}
{{- if or (not $num) (not (hasKey $scale $unit)) }}{{ fail (printf "%s: %s is not a memory quantity (e.g. 512Mi, 1Gi, 600M)" .path $q) }}{{ end -}}
{{- mulf $num (get $scale $unit) | floor | int64 -}}
{{- end -}}
{{- end -}}
{{/*
Fails when a tillstream-orders or tillstream-customers pod's memory limit is
below its bound: a throttled backfill or a first start on a full topic would
be OOM-killed (docs/helm.md, "Memory bound"). dict root, path (the limit's
key path), resources, binary.
*/}}
{{- define "tillstream.memoryCheck" -}}
{{- $limit := dig "limits" "memory" "" .resources -}}
{{- $v := .root.Values -}}
{{- if and $limit (has .binary (list "tillstream-orders" "tillstream-customers")) }}
{{- $orders := eq .binary "tillstream-orders" -}}
{{- $bound := int (include (ternary "tillstream.ordersBoundMiB" "tillstream.customersBoundMiB" $orders) .root) -}}
{{- $bytes := int64 (include "tillstream.quantityBytes" (dict "value" $limit "path" .path)) -}}
{{- if lt $bytes (mul $bound 1048576) }}
{{- $inputs := printf "consumer.max_inflight_records %s, memoryBound.customers %d" (include "tillstream.maxInflight" .root) (int64 $v.memoryBound.customers) -}}
{{- if $orders }}{{ $inputs = printf "%s active accounts, klaviyo.max_queued_events %s, %s" (include "tillstream.activeAccounts" .root) (include "tillstream.maxQueued" .root) $inputs }}{{ end -}}
{{- fail (printf "%s: %v is below %s' memory bound of %d MiB (%s; docs/consumers.md, \"%s\"): raise the limit, %s, or set memoryBound.check: false" .path $limit .binary $bound $inputs (ternary "What sets the memory bound" "Consent state" $orders) (ternary "lower klaviyo.max_queued_events" "lower consumer.max_inflight_records" $orders)) }}
{{- end }}
{{- end }}
{{- end -}}
