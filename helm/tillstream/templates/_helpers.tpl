{{- define "tillstream.fullname" -}}{{ .Release.Name }}-tillstream{{- end -}}
{{- define "tillstream.labels" -}}
app.kubernetes.io/name: tillstream
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
{{- define "tillstream.secretName" -}}
{{- if .Values.apiKeys.existingSecret }}{{ .Values.apiKeys.existingSecret }}{{ else }}{{ include "tillstream.fullname" . }}-api-keys{{ end -}}
{{- end -}}
{{/* The config file: docs/configuration.md. Keys come from env vars only. */}}
{{- define "tillstream.config" -}}
{{- $accounts := list -}}
{{- range .Values.accounts -}}
{{- $accounts = append $accounts (dict "name" .name "api_key_env" .envVar "outlets" .outlets) -}}
{{- end -}}
{{- $cfg := dict "kafka" .Values.kafka "topics" .Values.topics "klaviyo" .Values.klaviyo "accounts" $accounts
     "routing" .Values.routing "consumer" .Values.consumer
     "admin" (dict "listen" (printf "0.0.0.0:%d" (int .Values.admin.port))) "log" (dict "level" .Values.logLevel)
     "customers" (dict "sync" (.Values.customersSync | default "all")) -}}
{{- with .Values.registry }}
{{- $reg := dict -}}
{{- if .url }}
{{- $_ := set $reg "url" .url -}}
{{- if .basicAuth.existingSecret }}
{{- $_ := set $reg "username_env" "TILLSTREAM_REGISTRY_USERNAME" -}}
{{- $_ := set $reg "password_env" "TILLSTREAM_REGISTRY_PASSWORD" -}}
{{- end }}
{{- if .caSecret }}{{- $_ := set $reg "ca_bundle" "/etc/tillstream/registry-ca/ca.crt" -}}{{- end }}
{{- else if or .basicAuth.existingSecret .caSecret }}
{{- fail "registry.basicAuth.existingSecret / registry.caSecret are set but registry.url is null" }}
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
{{- define "tillstream.podSpec" -}}
terminationGracePeriodSeconds: {{ add (div .root.Values.consumer.shutdown_grace_ms 1000) 15 }}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  fsGroup: 10001
  seccompProfile: {type: RuntimeDefault}
containers:
  - name: {{ .name }}
    image: "{{ .root.Values.image.repository }}:{{ .root.Values.image.tag }}"
    imagePullPolicy: {{ .root.Values.image.pullPolicy }}
    command: ["/usr/local/bin/{{ .binary }}"]
    {{- if eq .binary "tillstream-dlq" }}
    args: {{ toJson (concat (list "stats" "--config" "/etc/tillstream/config.json") (.args | default list)) }}
    {{- else }}
    args: {{ toJson (concat (list "--config" "/etc/tillstream/config.json") (.args | default list)) }}
    {{- end }}
    env:
      {{- range .root.Values.accounts }}
      - name: {{ .envVar }}
        valueFrom:
          secretKeyRef: {name: {{ include "tillstream.secretName" $.root }}, key: {{ .keyName }}}
      {{- end }}
      {{- with .root.Values.registry }}{{- if and .url .basicAuth.existingSecret }}
      - name: TILLSTREAM_REGISTRY_USERNAME
        valueFrom:
          secretKeyRef: {name: {{ .basicAuth.existingSecret }}, key: {{ .basicAuth.usernameKey }}}
      - name: TILLSTREAM_REGISTRY_PASSWORD
        valueFrom:
          secretKeyRef: {name: {{ .basicAuth.existingSecret }}, key: {{ .basicAuth.passwordKey }}}
      {{- end }}{{- end }}
    ports:
      - {name: admin, containerPort: {{ .root.Values.admin.port }}}
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
      {{- if .root.Values.kafkaTls.secretName }}
      - {name: kafka-tls, mountPath: /etc/tillstream/kafka-tls, readOnly: true}
      {{- end }}
      {{- if .root.Values.kafkaSasl.secretName }}
      - {name: kafka-sasl, mountPath: /etc/tillstream/kafka-sasl, readOnly: true}
      {{- end }}
      {{- if and .root.Values.registry.url .root.Values.registry.caSecret }}
      - {name: registry-ca, mountPath: /etc/tillstream/registry-ca, readOnly: true}
      {{- end }}
      {{- if include "tillstream.rawWriterSchemas" .root }}
      - {name: raw-writer-schemas, mountPath: /etc/tillstream/avro, readOnly: true}
      {{- end }}
volumes:
  - name: config
    configMap: {name: {{ include "tillstream.fullname" .root }}-config}
  - name: tmp
    emptyDir: {}
  {{- if .root.Values.kafkaTls.secretName }}
  - name: kafka-tls
    secret: {secretName: {{ .root.Values.kafkaTls.secretName }}}
  {{- end }}
  {{- if .root.Values.kafkaSasl.secretName }}
  - name: kafka-sasl
    secret: {secretName: {{ .root.Values.kafkaSasl.secretName }}}
  {{- end }}
  {{- if and .root.Values.registry.url .root.Values.registry.caSecret }}
  - name: registry-ca
    secret:   # only ca.crt, even from a Secret that also holds a key
      secretName: {{ .root.Values.registry.caSecret }}
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
{{- end -}}
