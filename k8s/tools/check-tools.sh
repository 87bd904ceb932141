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
declare -A MIN=([helm]=3.17.0 [kubectl]=1.30.0 [kind]=0.32.0 [minikube]=1.37.0 [docker]=20.10.0)
declare -A URL=(
  [helm]=https://helm.sh/docs/intro/install/
  [kubectl]=https://kubernetes.io/docs/tasks/tools/
  [kind]=https://kind.sigs.k8s.io/docs/user/quick-start/#installation
  [minikube]=https://minikube.sigs.k8s.io/docs/start/
  [docker]=https://docs.docker.com/engine/install/
)

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
  min="${MIN[$tool]:?unknown tool $tool}"
  if ! command -v "$bin" >/dev/null 2>&1; then
    echo "chirp: $tool not found on PATH; install $tool >= $min (${URL[$tool]})" >&2
    status=1
    continue
  fi
  have="$(version_of "$tool" "$bin")"
  if [[ -z "$have" ]]; then
    echo "chirp: could not read the version of $bin; $tool >= $min is needed" >&2
    status=1
  elif [[ "$(printf '%s\n%s\n' "$min" "$have" | sort -V | head -1)" != "$min" ]]; then
    echo "chirp: $tool $have is too old; install $tool >= $min (${URL[$tool]})" >&2
    status=1
  fi
done
exit "$status"
