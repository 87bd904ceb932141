#!/usr/bin/env bash
# Check that the tools a cluster target runs are on PATH and new enough:
#   k8s/tools/check-tools.sh helm kubectl kind
# Prints one line per problem, naming the minimum version, and exits 1.
# The binaries are the user's own (any OS/arch); the names can be
# overridden like the make variables: HELM=... KUBECTL=... KIND=... MINIKUBE=...
set -uo pipefail

# Minimums: helm 3.17 (tested with 3.17 and 4.1; --reset-then-reuse-values
# needs 3.14), kubectl within the cluster's skew, the kind release that
# built the pinned node image, the minikube release that knows the pinned
# Kubernetes version and the storage-provisioner-rancher addon.
# Plain bash 3.2 (macOS's /bin/bash): no associative arrays, no sort -V.
minimum() {
  case "$1" in
    helm) echo 3.17.0 ;;
    kubectl) echo 1.30.0 ;;
    kind) echo 0.32.0 ;;
    minikube) echo 1.38.1 ;;
    docker) echo 20.10.0 ;;
    *) return 1 ;;
  esac
}

install_url() {
  case "$1" in
    helm) echo https://helm.sh/docs/intro/install/ ;;
    kubectl) echo https://kubernetes.io/docs/tasks/tools/ ;;
    kind) echo https://kind.sigs.k8s.io/docs/user/quick-start/#installation ;;
    minikube) echo https://minikube.sigs.k8s.io/docs/start/ ;;
    docker) echo https://docs.docker.com/engine/install/ ;;
  esac
}

older_than() {  # older_than 3.12.3 3.17.0: is the first version below the second?
  local IFS=.
  local -a a=($1) b=($2)
  local i
  for i in 0 1 2; do
    if (( ${a[i]:-0} != ${b[i]:-0} )); then
      (( ${a[i]:-0} < ${b[i]:-0} ))
      return
    fi
  done
  return 1
}

version_of() {  # prints X.Y.Z or nothing
  local tool="$1" bin="$2" out
  case "$tool" in
    helm)     out="$("$bin" version --template '{{.Version}}' 2>/dev/null)" ;;
    kubectl)  out="$("$bin" version --client 2>/dev/null | head -1)" ;;
    kind)     out="$("$bin" version 2>/dev/null)" ;;
    minikube) out="$("$bin" version --short 2>/dev/null)" ;;
    docker)   out="$("$bin" version --format '{{.Client.Version}}' 2>/dev/null)" ;;
  esac
  grep -oE '[0-9]+\.[0-9]+\.[0-9]+' <<<"$out" | head -1
}

status=0
for tool in "$@"; do
  var="$(tr '[:lower:]' '[:upper:]' <<<"$tool")"
  bin="${!var:-$tool}"
  min="$(minimum "$tool")" || { echo "check-tools: unknown tool $tool" >&2; exit 2; }
  if ! command -v "$bin" >/dev/null 2>&1; then
    echo "chirp: $tool not found on PATH; install $tool >= $min ($(install_url "$tool"))" >&2
    status=1
    continue
  fi
  have="$(version_of "$tool" "$bin")"
  if [[ -z "$have" ]]; then
    echo "chirp: could not read the version of $bin; $tool >= $min is needed" >&2
    status=1
  elif older_than "$have" "$min"; then
    echo "chirp: $tool $have is too old; install $tool >= $min ($(install_url "$tool"))" >&2
    status=1
  fi
done
exit "$status"
