"""The checks of shared/KUBESIM.md with the real kubectl binaries (1.37 and 1.32).

kubectl is the judge: every check here is something a real cluster does and that gitferry
relies on (apply idempotence, diff exit codes, SSA conflicts, wait / rollout, namespace
deletion with finalizers).
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from local.kubesim.server import KubeSim

pytestmark = pytest.mark.kubectl

DEPLOY = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  namespace: {ns}
data:
  a: "1"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: app
        image: nginx:1.27
        env:
        - name: KEEP_ME
          value: "1"
        - name: REMOVED_VAR
          value: "2"
"""


def _write(tmp_path: Path, text: str, name: str = "app.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_apply_twice_is_unchanged(kubectl, namespace: str, tmp_path: Path) -> None:
    manifest = _write(tmp_path, DEPLOY.format(ns=namespace))
    first = kubectl("apply", "-f", manifest)
    assert first.returncode == 0, first.stderr
    assert "configmap/cfg created" in first.stdout
    assert "deployment.apps/web created" in first.stdout
    second = kubectl("apply", "-f", manifest)
    assert second.returncode == 0, second.stderr
    assert "configmap/cfg unchanged" in second.stdout
    assert "deployment.apps/web unchanged" in second.stdout


def test_diff_exit_codes_and_removed_env_var(kubectl, kubesim: KubeSim, namespace: str, tmp_path: Path) -> None:
    manifest = _write(tmp_path, DEPLOY.format(ns=namespace))
    assert kubectl("apply", "-f", manifest).returncode == 0
    rv_before = kubesim.store.resource_version
    same = kubectl("diff", "-f", manifest)
    assert same.returncode == 0, same.stdout + same.stderr
    changed_text = DEPLOY.format(ns=namespace).replace('        - name: REMOVED_VAR\n          value: "2"\n', "")
    changed = kubectl("diff", "-f", _write(tmp_path, changed_text, "changed.yaml"))
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "-        - name: REMOVED_VAR" in changed.stdout
    # dry-run persisted nothing
    live = kubesim.store.get(kubesim.store.types.lookup("apps", "v1", "deployments"), namespace, "web")
    envs = [e["name"] for e in live["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert envs == ["KEEP_ME", "REMOVED_VAR"]
    assert not any(m == "PATCH" and "dryRun=All" in p and f"/namespaces/{namespace}/" in p and s >= 400
                   for m, p, s, _ in kubesim.request_log)
    assert kubesim.store.get(kubesim.store.types.lookup("apps", "v1", "deployments"), namespace, "web")[
        "metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
    assert rv_before <= kubesim.store.resource_version


def test_diff_of_missing_object_is_exit_1(kubectl, namespace: str, tmp_path: Path) -> None:
    result = kubectl("diff", "-f", _write(tmp_path, DEPLOY.format(ns=namespace)))
    assert result.returncode == 1, result.stderr
    assert "+  name: web" in result.stdout
    assert kubectl("get", "deploy", "web", "-n", namespace).returncode != 0


def test_server_side_apply_conflict_then_force(kubectl, kubesim: KubeSim, namespace: str, tmp_path: Path) -> None:
    manifest = _write(tmp_path, DEPLOY.format(ns=namespace))
    applied = kubectl("apply", "--server-side", "-f", manifest)
    assert applied.returncode == 0, applied.stderr
    assert "serverside-applied" in applied.stdout
    other = _write(tmp_path, DEPLOY.format(ns=namespace).replace("replicas: 2", "replicas: 5"), "other.yaml")
    conflict = kubectl("apply", "--server-side", "--field-manager=other", "-f", other)
    assert conflict.returncode != 0
    assert "conflict" in conflict.stderr.lower()
    assert ".spec.replicas" in conflict.stderr
    forced = kubectl("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", other)
    assert forced.returncode == 0, forced.stderr
    live = kubesim.store.get(kubesim.store.types.lookup("apps", "v1", "deployments"), namespace, "web")
    assert live["spec"]["replicas"] == 5
    managers = {e["manager"] for e in live["metadata"]["managedFields"]}
    assert {"kubectl", "other"} <= managers


def test_get_yaml_with_managed_fields_and_table_columns(kubectl, namespace: str, tmp_path: Path) -> None:
    assert kubectl("apply", "--server-side", "-f", _write(tmp_path, DEPLOY.format(ns=namespace))).returncode == 0
    shown = kubectl("get", "deploy", "web", "-n", namespace, "-o", "yaml", "--show-managed-fields")
    assert shown.returncode == 0, shown.stderr
    assert "managedFields:" in shown.stdout and "manager: kubectl" in shown.stdout
    hidden = kubectl("get", "deploy", "web", "-n", namespace, "-o", "yaml")
    assert "managedFields" not in hidden.stdout
    table = kubectl("get", "deploy", "-n", namespace)
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0].split()
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]


def test_wait_available_and_rollout_status(kubectl, namespace: str, tmp_path: Path) -> None:
    assert kubectl("apply", "-f", _write(tmp_path, DEPLOY.format(ns=namespace))).returncode == 0
    waited = kubectl("wait", "--for=condition=Available", "deploy/web", "-n", namespace, "--timeout=60s",
                     timeout=90)
    assert waited.returncode == 0, waited.stderr
    assert "condition met" in waited.stdout
    rollout = kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s", timeout=90)
    assert rollout.returncode == 0, rollout.stderr
    assert "successfully rolled out" in rollout.stdout


def test_delete_namespace_waits_for_finalizer(kubectl, kubesim: KubeSim, fresh_namespace) -> None:
    ns = fresh_namespace("del")
    cm_rt = kubesim.store.types.lookup("", "v1", "configmaps")
    kubesim.store.create(cm_rt, ns, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}},
                         manager="test")
    proc = subprocess.Popen(
        [kubectl.binary, "--kubeconfig", kubesim.kubeconfig_path, "delete", "ns", ns, "--wait", "--timeout=60s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    released = threading.Event()

    def release() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            cm = kubesim.store.get(cm_rt, ns, "held")
            if cm["metadata"].get("deletionTimestamp"):
                time.sleep(0.5)  # kubectl is now waiting on a Terminating namespace
                cm["metadata"]["finalizers"] = []
                kubesim.store.update(cm_rt, ns, "held", cm, manager="test")
                released.set()
                return
            time.sleep(0.05)

    t = threading.Thread(target=release)
    t.start()
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        t.join()
    assert released.is_set()
    assert proc.returncode == 0, err
    assert f'namespace "{ns}" deleted' in out
    gone = kubectl("get", "ns", ns)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_apply_into_missing_namespace_fails(kubectl, tmp_path: Path) -> None:
    result = kubectl("apply", "-f", _write(tmp_path, DEPLOY.format(ns="does-not-exist")))
    assert result.returncode != 0
    assert 'namespaces "does-not-exist" not found' in result.stderr


def test_create_into_terminating_namespace_is_forbidden(kubectl, kubesim: KubeSim, fresh_namespace,
                                                        tmp_path: Path) -> None:
    ns = fresh_namespace("term")
    cm_rt = kubesim.store.types.lookup("", "v1", "configmaps")
    kubesim.store.create(cm_rt, ns, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}},
                         manager="test")
    kubesim.store.delete(kubesim.store.ns_rt, None, ns)
    result = kubectl("apply", "-f", _write(tmp_path, DEPLOY.format(ns=ns)))
    assert result.returncode != 0
    assert f"unable to create new content in namespace {ns} because it is being terminated" in result.stderr
    cm = kubesim.store.get(cm_rt, ns, "held")
    cm["metadata"]["finalizers"] = []
    kubesim.store.update(cm_rt, ns, "held", cm, manager="test")


def test_crd_lifecycle_with_kubectl(kubectl, kubesim: KubeSim, namespace: str, tmp_path: Path) -> None:
    suffix = namespace.replace("-", "")
    group = f"{suffix}.example.com"
    crd = f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {{type: integer}}
"""
    assert kubectl("apply", "-f", _write(tmp_path, crd, "crd.yaml")).returncode == 0
    established = kubectl("wait", "--for=condition=Established", f"crd/widgets.{group}", "--timeout=30s")
    assert established.returncode == 0, established.stderr
    cr = f"apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: {namespace}\nspec:\n  size: 3\n"
    applied = kubectl("apply", "-f", _write(tmp_path, cr, "cr.yaml"))
    assert applied.returncode == 0, applied.stderr
    assert kubectl("apply", "-f", str(tmp_path / "cr.yaml")).stdout.strip().endswith("unchanged")
    got = kubectl("get", f"widgets.{group}", "-n", namespace, "-o", "jsonpath={.items[0].spec.size}")
    assert got.stdout == "3", got.stderr
    bad = kubectl("apply", "-f", _write(tmp_path, cr.replace("size: 3", "size: 3\n  color: red"), "bad.yaml"))
    assert bad.returncode != 0 and "color" in bad.stderr
    assert kubectl("delete", "crd", f"widgets.{group}").returncode == 0
    assert kubectl("get", f"widgets.{group}", "-n", namespace).returncode != 0
