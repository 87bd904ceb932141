"""k8s/manifests is what `make manifests` renders today."""
from __future__ import annotations

import subprocess
import sys

import yaml

from conftest import HELMS, KUBECTL, ROOT, run


def test_manifests_are_fresh():
    res = subprocess.run([sys.executable, ROOT / "k8s/tools/render_manifests.py",
                          "--helm", HELMS["helm4"], "--check"], capture_output=True, text=True)
    assert res.returncode == 0, "k8s/manifests is stale; run `make manifests`\n" + res.stdout + res.stderr


def test_kustomization_lists_every_file_and_builds():
    kust = yaml.safe_load((ROOT / "k8s/manifests/kustomization.yaml").read_text())
    files = sorted(p.name for p in (ROOT / "k8s/manifests").glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kust["resources"]) == files
    assert kust["namespace"] == "chirp"
    res = run([KUBECTL, "kustomize", ROOT / "k8s/manifests"])
    assert res.returncode == 0, res.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(res.stdout) if d]
    # Three services and Redis; a database each.
    assert kinds.count("Deployment") == 4 and kinds.count("StatefulSet") == 3
    assert "Pod" not in kinds, "helm test pods do not belong in plain manifests"


def test_namespace_enforces_restricted_pod_security():
    ns = yaml.safe_load((ROOT / "k8s/manifests/namespace.yaml").read_text())
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
