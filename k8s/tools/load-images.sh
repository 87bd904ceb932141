#!/usr/bin/env bash
# Load locally built images into the local cluster's nodes (every node):
#   k8s/tools/load-images.sh kind <cluster-name> IMAGE...
#   k8s/tools/load-images.sh minikube - IMAGE...
#
# kind: `kind load docker-image` fails with Docker's containerd image store
# (the default since Docker 29): "ctr: content digest ... not found", because
# `docker save` of an image with an attestation or other platforms in its
# index leaves the referenced manifests out (kubernetes-sigs/kind#3795,
# #4236; workaround documented by kind in #4247). Then save only this
# machine's platform and load the archive.
set -euo pipefail
cluster_tool="$1" name="$2"
shift 2
DOCKER="${DOCKER:-docker}" KIND="${KIND:-kind}" MINIKUBE="${MINIKUBE:-minikube}"

case "$cluster_tool" in
  kind)
    if "$KIND" load docker-image --name "$name" "$@"; then
      exit 0
    fi
    echo "load-images: kind load docker-image failed; retrying with docker save --platform + kind load image-archive" >&2
    platform="$("$DOCKER" version --format '{{.Server.Os}}/{{.Server.Arch}}')"
    archive="$(mktemp -d)/chirp-images.tar"
    trap 'rm -rf "$(dirname "$archive")"' EXIT
    # --platform needs Docker 28+; older engines save what they have.
    "$DOCKER" image save --platform "$platform" -o "$archive" "$@" ||
      "$DOCKER" image save -o "$archive" "$@"
    "$KIND" load image-archive --name "$name" "$archive"
    ;;
  minikube)
    # Loads into every node of the cluster (no registry needed).
    for image in "$@"; do
      "$MINIKUBE" image load "$image"
    done
    ;;
  *)
    echo "usage: $0 kind|minikube NAME IMAGE..." >&2
    exit 2
    ;;
esac
