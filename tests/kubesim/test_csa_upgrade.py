"""Client-side apply -> server-side apply, as on a real apiserver with kubectl 1.37 and 1.32.

An object last written by ``kubectl apply`` (manager ``kubectl-client-side-apply``, annotation
``kubectl.kubernetes.io/last-applied-configuration``) is taken over by ``kubectl apply
--server-side`` without conflicts, even where the new manifest changes a value: the apiserver's
lastAppliedManager lets manager ``kubectl`` take the fields the annotation still describes, and
lastAppliedUpdater keeps the annotation in step. kubectl then migrates the client-side entry
into its own (csaupgrade) and re-applies. Fields someone else changed since are still conflicts,
and other field managers get no such upgrade.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.kubectl

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  labels: {{team: a}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: app
        image: nginx:{tag}
"""


def _write(tmp_path: Path, name: str, ns: str, replicas: int, tag: str) -> str:
    path = tmp_path / name
    path.write_text(MANIFEST.format(ns=ns, replicas=replicas, tag=tag))
    return str(path)


def _get(kubectl, ns: str) -> dict[str, Any]:
    out = kubectl("get", "deploy", "web", "-n", ns, "-o", "json", "--show-managed-fields")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _managers(obj: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"], e.get("subresource", "")): e["fieldsV1"]
            for e in obj["metadata"]["managedFields"]}


def test_client_side_apply_then_server_side_apply_changing_values(kubectl, namespace: str, tmp_path: Path) -> None:
    first = kubectl("apply", "-f", _write(tmp_path, "v1.yaml", namespace, 2, "1.27"))
    assert first.returncode == 0, first.stderr
    assert ("kubectl-client-side-apply", "Update", "") in _managers(_get(kubectl, namespace))

    upgraded = kubectl("apply", "--server-side", "-f", _write(tmp_path, "v2.yaml", namespace, 3, "1.28"))
    assert upgraded.returncode == 0, upgraded.stderr
    assert "deployment.apps/web serverside-applied" in upgraded.stdout

    obj = _get(kubectl, namespace)
    assert obj["spec"]["replicas"] == 3
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    managers = _managers(obj)
    # The client-side entry is migrated into kubectl's Apply entry; the annotation has its own applier.
    assert ("kubectl-client-side-apply", "Update", "") not in managers
    mine = managers[("kubectl", "Apply", "")]
    assert "f:replicas" in mine["f:spec"] and "f:labels" in mine["f:metadata"]
    assert "f:annotations" not in mine.get("f:metadata", {})
    assert managers[("kubectl-last-applied", "Apply", "")] == {
        "f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}}}
    # The annotation follows what was applied server-side (so a later client-side apply diffs right).
    last = json.loads(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 3
    assert last["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"

    again = kubectl("apply", "--server-side", "-f", str(tmp_path / "v2.yaml"))
    assert again.returncode == 0, again.stderr


def test_fields_changed_by_another_manager_still_conflict(kubectl, namespace: str, tmp_path: Path) -> None:
    assert kubectl("apply", "-f", _write(tmp_path, "v1.yaml", namespace, 2, "1.27")).returncode == 0
    patched = kubectl("patch", "deploy", "web", "-n", namespace, "--type=merge", "--field-manager=hpa-ish",
                      "-p", '{"spec":{"replicas":5}}')
    assert patched.returncode == 0, patched.stderr
    out = kubectl("apply", "--server-side", "-f", _write(tmp_path, "v2.yaml", namespace, 3, "1.28"))
    assert out.returncode == 1, out.stdout
    assert 'conflict with "hpa-ish" using apps/v1: .spec.replicas' in out.stderr, out.stderr
    assert "image" not in out.stderr  # the image still matched the annotation: no conflict there


def test_other_field_managers_get_no_upgrade(kubectl, namespace: str, tmp_path: Path) -> None:
    assert kubectl("apply", "-f", _write(tmp_path, "v1.yaml", namespace, 2, "1.27")).returncode == 0
    out = kubectl("apply", "--server-side", "--field-manager=gitops", "-f",
                  _write(tmp_path, "v2.yaml", namespace, 3, "1.27"))
    assert out.returncode == 1, out.stdout
    assert 'conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas' in out.stderr, out.stderr
