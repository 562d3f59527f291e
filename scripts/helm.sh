#!/usr/bin/env bash
# scripts/helm.sh - install helm from the Go module proxy into $TS_CACHE/bin
# (outside the clone); idempotent. Used by the ops tests (helm lint/template).
set -euo pipefail
HELM_VERSION=${TS_HELM_VERSION:-v3.16.4}
bin=${TS_CACHE:-$HOME/.cache/tillstream}/bin
marker="$bin/.helm-$HELM_VERSION"
if [ -x "$bin/helm" ] && [ -f "$marker" ]; then exit 0; fi
command -v go >/dev/null || { echo "helm.sh: Go is required to build helm" >&2; exit 1; }
mkdir -p "$bin"
echo "helm.sh: building helm $HELM_VERSION from the Go module proxy (one time, a few minutes)" >&2
GOBIN="$bin" GOFLAGS=-mod=mod go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
"$bin/helm" version --short >&2
touch "$marker"
