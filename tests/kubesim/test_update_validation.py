"""Update validation: what a real kube-apiserver refuses when an existing object changes.

Every refusal is checked on every write path the official client has (PUT, JSON patch, merge
patch, strategic merge patch, server-side apply), each also with ``dryRun=All``: the same 422
Invalid with the apiserver's cause field and wording, and nothing stored. Messages are the
ones ``field.ErrorList`` prints in kubernetes/kubernetes (ValidateDeploymentUpdate,
ValidateJobSpecUpdate, ValidateConfigMapUpdate, ValidateSecretUpdate,
validateUpgradeDowngradeClusterIPs, ValidatePersistentVolumeClaimUpdate,
ValidateStatefulSetUpdate, ValidatePodUpdate).
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import dynamic
from kubernetes.client.rest import ApiException

SSA_DROP_META = ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation", "selfLink")


def _json_patch(merge: Any, live: Any, prefix: str = "") -> list[dict[str, Any]]:
    """The RFC 6902 ``add`` operations that write the leaves of a merge patch onto ``live``."""
    ops: list[dict[str, Any]] = []
    for key, value in merge.items():
        path = f"{prefix}/{key.replace('~', '~0').replace('/', '~1')}"
        if isinstance(value, dict) and value and isinstance(live.get(key), dict):
            ops.extend(_json_patch(value, live[key], path))
        else:
            ops.append({"op": "add", "path": path, "value": value})
    return ops


def _apply_body(obj: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(obj)
    body.pop("status", None)
    for key in SSA_DROP_META:
        body["metadata"].pop(key, None)
    return body


def _writes(res: Any, ns: str | None, live: dict[str, Any], changed: dict[str, Any], merge: dict[str, Any]):
    """(label, call) for every write path, each with and without dryRun=All."""
    name = live["metadata"]["name"]
    put_body = copy.deepcopy(changed)
    put_body["metadata"].pop("resourceVersion", None)  # unconditional: controllers may write status meanwhile
    paths = {
        "PUT": lambda **kw: res.replace(body=put_body, namespace=ns, **kw),
        "json-patch": lambda **kw: res.patch(body=_json_patch(merge, live), name=name, namespace=ns,
                                             content_type="application/json-patch+json", **kw),
        "merge-patch": lambda **kw: res.patch(body=merge, name=name, namespace=ns,
                                              content_type="application/merge-patch+json", **kw),
        "strategic-merge-patch": lambda **kw: res.patch(body=merge, name=name, namespace=ns,
                                                        content_type="application/strategic-merge-patch+json", **kw),
        "apply": lambda **kw: res.server_side_apply(body=_apply_body(changed), name=name, namespace=ns,
                                                    field_manager="test-apply", force_conflicts=True, **kw),
    }
    for label, call in paths.items():
        yield label, call
        yield f"{label} dryRun=All", lambda call=call: call(dry_run="All")


def assert_refused(res: Any, ns: str | None, live: dict[str, Any], changed: dict[str, Any], merge: dict[str, Any],
                   kind: str, causes: list[tuple[str, str]], *, prefix_only: bool = False) -> None:
    """Every write path answers 422 Invalid with exactly ``causes`` (field, message) and stores nothing."""
    name = live["metadata"]["name"]
    for label, call in _writes(res, ns, live, changed, merge):
        with pytest.raises(ApiException) as err:
            call()
        assert err.value.status == 422, f"{label}: {err.value.status} {err.value.body}"
        status = json.loads(err.value.body)
        assert status["reason"] == "Invalid", f"{label}: {status}"
        assert status["details"].get("kind") == kind.split(".")[0] and status["details"]["name"] == name, \
            f"{label}: {status}"
        got = [(c["field"], c["message"]) for c in status["details"]["causes"]]
        assert [c["reason"] for c in status["details"]["causes"]] == [
            "FieldValueForbidden" if m.startswith("Forbidden") else "FieldValueInvalid" if m.startswith("Invalid")
            else "FieldValueRequired" for _, m in causes], label
        if prefix_only:
            assert [f for f, _ in got] == [f for f, _ in causes], label
            for (_, m), (_, want) in zip(got, causes, strict=True):
                assert m.startswith(want), f"{label}: {m!r}"
        else:
            assert got == causes, label
            summary = f"{causes[0][0]}: {causes[0][1]}" if len(causes) == 1 else \
                "[" + ", ".join(f"{f}: {m}" for f, m in causes) + "]"
            assert status["message"] == f'{kind} "{name}" is invalid: {summary}', label
    after = res.get(name=name, namespace=ns).to_dict()
    # Controllers may write status meanwhile; what the writes tried to change must not have moved.
    for key in ("spec", "data", "binaryData", "immutable", "type"):
        assert after.get(key) == live.get(key), f"a refused write changed {key}"
    assert after["metadata"].get("labels") == live["metadata"].get("labels")


def _merge_into(obj: dict[str, Any], merge: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)

    def put(dst: dict[str, Any], src: dict[str, Any]) -> None:
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                put(dst[k], v)
            else:
                dst[k] = copy.deepcopy(v)

    put(out, merge)
    return out


def _create(res: Any, ns: str | None, body: dict[str, Any]) -> dict[str, Any]:
    return res.create(body=body, namespace=ns).to_dict()


# ---------------------------------------------------------------------------------------------- apps

WORKLOADS = {
    "Deployment": {"replicas": 1},
    "ReplicaSet": {"replicas": 1},
    "DaemonSet": {},
}


@pytest.mark.parametrize("kind", sorted(WORKLOADS))
def test_apps_selector_is_immutable(dyn: dynamic.DynamicClient, namespace: str, kind: str) -> None:
    res = dyn.resources.get(api_version="apps/v1", kind=kind)
    body = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web"},
            "spec": {**WORKLOADS[kind], "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}}
    live = _create(res, namespace, body)
    merge = {"spec": {"selector": {"matchLabels": {"tier": "front"}},
                      "template": {"metadata": {"labels": {"tier": "front"}}}}}
    changed = _merge_into(live, merge)
    shown = ('v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "tier":"front"}, '
             "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}")
    assert_refused(res, namespace, live, changed, merge, f"{kind}.apps",
                   [("spec.selector", f"Invalid value: {shown}: field is immutable")])


def test_statefulset_forbidden_fields(dyn: dynamic.DynamicClient, namespace: str) -> None:
    res = dyn.resources.get(api_version="apps/v1", kind="StatefulSet")
    live = _create(res, namespace, {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "db", "image": "postgres:17"}]}}}})
    merge = {"spec": {"serviceName": "db-headless"}}
    assert_refused(res, namespace, live, _merge_into(live, merge), merge, "StatefulSet.apps", [(
        "spec",
        "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
        "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
        "are forbidden")])
    # The allowed fields do change.
    out = res.patch(body={"spec": {"replicas": 3, "minReadySeconds": 5}}, name="db", namespace=namespace,
                    content_type="application/merge-patch+json").to_dict()
    assert out["spec"]["replicas"] == 3 and out["spec"]["minReadySeconds"] == 5


# ---------------------------------------------------------------------------------------------- batch

def _job(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": {"restartPolicy": "Never",
                                                   "containers": [{"name": "main", "image": "busybox:1.36"}]}}}}


def test_job_template_is_immutable(dyn: dynamic.DynamicClient, namespace: str) -> None:
    res = dyn.resources.get(api_version="batch/v1", kind="Job")
    live = _create(res, namespace, _job("migrate"))
    merge = {"spec": {"template": {"spec": {"activeDeadlineSeconds": 60}}}}
    assert_refused(res, namespace, live, _merge_into(live, merge), merge, "Job.batch",
                   [("spec.template", "Invalid value: core.PodTemplateSpec{")], prefix_only=True)
    with pytest.raises(ApiException) as err:
        res.patch(body=merge, name="migrate", namespace=namespace, content_type="application/merge-patch+json")
    assert json.loads(err.value.body)["details"]["causes"][0]["message"].endswith(": field is immutable")


def test_job_selector_is_immutable(dyn: dynamic.DynamicClient, namespace: str) -> None:
    res = dyn.resources.get(api_version="batch/v1", kind="Job")
    live = _create(res, namespace, _job("migrate"))
    uid = live["metadata"]["uid"]
    merge = {"spec": {"selector": {"matchLabels": {"extra": "x"}}, "template": {"metadata": {"labels": {"extra": "x"}}}}}
    shown = (f'v1.LabelSelector{{MatchLabels:map[string]string{{"batch.kubernetes.io/controller-uid":"{uid}", '
             '"extra":"x"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}')
    assert_refused(res, namespace, live, _merge_into(live, merge), merge, "Job.batch", [
        ("spec.selector", f"Invalid value: {shown}: field is immutable"),
        ("spec.template", "Invalid value: core.PodTemplateSpec{"),
    ], prefix_only=True)


def test_job_replace_with_the_plain_manifest_is_refused(dyn: dynamic.DynamicClient, namespace: str) -> None:
    """``kubectl replace`` / a PUT of the manifest as written: the generated selector is not re-made."""
    res = dyn.resources.get(api_version="batch/v1", kind="Job")
    live = _create(res, namespace, _job("migrate"))
    body = _job("migrate")
    body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as err:
        res.replace(body=body, namespace=namespace)
    assert err.value.status == 422
    causes = [(c["field"], c["message"]) for c in json.loads(err.value.body)["details"]["causes"]]
    assert causes[:2] == [
        ("spec.selector", "Required value"),
        ("spec.template.metadata.labels", "Invalid value: map[string]string(nil): `selector` does not match template "
                                          "`labels`")]
    assert ("spec.selector", 'Invalid value: "null": field is immutable') in causes
    assert any(f == "spec.template" and m.endswith("field is immutable") for f, m in causes)


def test_suspended_job_scheduling_directives_may_change(dyn: dynamic.DynamicClient, namespace: str) -> None:
    res = dyn.resources.get(api_version="batch/v1", kind="Job")
    _create(res, namespace, _job("later", suspend=True))
    out = res.patch(body={"spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}}}}}, name="later",
                    namespace=namespace, content_type="application/merge-patch+json").to_dict()
    assert out["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "ssd"}
    with pytest.raises(ApiException) as err:
        res.patch(body={"spec": {"template": {"spec": {"activeDeadlineSeconds": 5}}}}, name="later",
                  namespace=namespace, content_type="application/merge-patch+json")
    assert err.value.status == 422


# ---------------------------------------------------------------------------------------------- core

IMMUTABLE_SET = "Forbidden: field is immutable when `immutable` is set"


def test_immutable_configmap(dyn: dynamic.DynamicClient, namespace: str) -> None:
    res = dyn.resources.get(api_version="v1", kind="ConfigMap")
    live = _create(res, namespace, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "frozen"},
                                    "data": {"a": "1"}, "immutable": True})
    merge = {"data": {"a": "2"}}
    assert_refused(res, namespace, live, _merge_into(live, merge), merge, "ConfigMap", [("data", IMMUTABLE_SET)])
    merge = {"immutable": False}
    assert_refused(res, namespace, live, _merge_into(live, merge), merge, "ConfigMap", [("immutable", IMMUTABLE_SET)])
    merge = {"binaryData": {"b": "AAE="}}
    assert_refused(res, namespace, live, _merge_into(live, merge), merge, "ConfigMap",
                   [("binaryData", IMMUTABLE_SET)])
    # Metadata stays writable.
    out = res.patch(body={"metadata": {"labels": {"x": "y"}}}, name="frozen", namespace=namespace,
                    content_type="application/merge-patch+json").to_dict()
    assert out["metadata"]["labels"] == {"x": "y"}


def test_immutable_secret_and_secret_type(dyn: dynamic.DynamicClient, namespace: str) -> None:
    res = dyn.resources.get(api_version="v1", kind="Secret")
    live = _create(res, namespace, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "frozen"},
                                    "data": {"a": "MQ=="}, "immutable": True})
    merge = {"data": {"a": "Mg=="}}
    assert_refused(res, namespace, live, _merge_into(live, merge), merge, "Secret", [("data", IMMUTABLE_SET)])
    merge = {"immutable": False}
    assert_refused(res, namespace, live, _merge_into(live, merge), merge, "Secret", [("immutable", IMMUTABLE_SET)])
    # stringData is folded into data before validation: it changes data too.
    with pytest.raises(ApiException) as err:
        res.patch(body={"stringData": {"a": "3"}}, name="frozen", namespace=namespace,
                  content_type="application/merge-patch+json")
    assert err.value.status == 422
    assert json.loads(err.value.body)["details"]["causes"][0]["field"] == "data"

    plain = _create(res, namespace, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "typed"},
                                     "data": {"a": "MQ=="}})
    merge = {"type": "example.com/custom"}
    assert_refused(res, namespace, plain, _merge_into(plain, merge), merge, "Secret",
                   [("type", 'Invalid value: "example.com/custom": field is immutable')])


def test_service_cluster_ip_may_not_change(dyn: dynamic.DynamicClient, namespace: str) -> None:
    res = dyn.resources.get(api_version="v1", kind="Service")
    live = _create(res, namespace, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                                    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    merge = {"spec": {"clusterIP": "10.96.240.240"}}
    assert_refused(res, namespace, live, _merge_into(live, merge), merge, "Service",
                   [("spec.clusterIPs[0]", 'Invalid value: []string{"10.96.240.240"}: may not change once set')])
    merge = {"spec": {"clusterIPs": ["10.96.240.241"]}}
    assert_refused(res, namespace, live, _merge_into(live, merge), merge, "Service",
                   [("spec.clusterIPs[0]", 'Invalid value: []string{"10.96.240.241"}: may not change once set')])


def test_service_put_without_cluster_ip_keeps_the_allocated_one(dyn: dynamic.DynamicClient, namespace: str) -> None:
    """patchAllocatedValues: a PUT of the manifest (no clusterIP, no nodePort) keeps what was allocated."""
    res = dyn.resources.get(api_version="v1", kind="Service")
    manifest = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
                "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}}
    live = _create(res, namespace, manifest)
    body = copy.deepcopy(manifest)
    body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    body["metadata"]["labels"] = {"changed": "yes"}
    out = res.replace(body=body, namespace=namespace).to_dict()
    assert out["spec"]["clusterIP"] == live["spec"]["clusterIP"]
    assert out["spec"]["clusterIPs"] == live["spec"]["clusterIPs"]
    assert out["spec"]["ports"][0]["nodePort"] == live["spec"]["ports"][0]["nodePort"]
    assert out["metadata"]["labels"] == {"changed": "yes"}


def _wait_bound(res: Any, ns: str, name: str) -> dict[str, Any]:
    for _ in range(400):
        obj = res.get(name=name, namespace=ns).to_dict()
        if (obj.get("status") or {}).get("phase") == "Bound":
            return obj
        time.sleep(0.05)
    raise AssertionError(f"PVC {name} never bound")


PVC_TEXT = "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName " \
           "for bound claims\n"


def test_pvc_spec_is_immutable_except_storage_requests(dyn: dynamic.DynamicClient, namespace: str) -> None:
    res = dyn.resources.get(api_version="v1", kind="PersistentVolumeClaim")
    _create(res, namespace, {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
                             "spec": {"accessModes": ["ReadWriteOnce"],
                                      "resources": {"requests": {"storage": "1Gi"}}}})
    live = _wait_bound(res, namespace, "data")
    merge = {"spec": {"accessModes": ["ReadWriteMany"]}}
    assert_refused(res, namespace, live, _merge_into(live, merge), merge, "PersistentVolumeClaim",
                   [("spec", PVC_TEXT)], prefix_only=True)
    # A bound claim may grow, not shrink below its capacity.
    grown = res.patch(body={"spec": {"resources": {"requests": {"storage": "2Gi"}}}}, name="data",
                      namespace=namespace, content_type="application/merge-patch+json").to_dict()
    assert grown["spec"]["resources"]["requests"]["storage"] == "2Gi"
    with pytest.raises(ApiException) as err:
        res.patch(body={"spec": {"resources": {"requests": {"storage": "512Mi"}}}}, name="data",
                  namespace=namespace, content_type="application/merge-patch+json")
    assert err.value.status == 422
    assert [(c["field"], c["message"]) for c in json.loads(err.value.body)["details"]["causes"]] == [
        ("spec.resources.requests.storage", "Forbidden: field can not be less than status.capacity")]


def test_pod_spec_updates_beyond_the_allowed_fields(dyn: dynamic.DynamicClient, namespace: str) -> None:
    res = dyn.resources.get(api_version="v1", kind="Pod")
    _create(res, namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "solo"},
                             "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}})
    for _ in range(200):  # the simulated scheduler binds it (pods/binding)
        live = res.get(name="solo", namespace=namespace).to_dict()
        if live["spec"].get("nodeName"):
            break
        time.sleep(0.05)
    assert live["spec"].get("nodeName")
    merge = {"spec": {"restartPolicy": "Never"}}
    text = ("Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
            "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
            "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
            "previously negative)\n")
    assert_refused(res, namespace, live, _merge_into(live, merge), merge, "Pod", [("spec", text)], prefix_only=True)
    # The allowed ones change: image, activeDeadlineSeconds, added tolerations.
    out = res.patch(body={"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}],
                                   "activeDeadlineSeconds": 600,
                                   "tolerations": [{"key": "k", "operator": "Exists"}]}},
                    name="solo", namespace=namespace,
                    content_type="application/strategic-merge-patch+json").to_dict()
    assert out["spec"]["containers"][0]["image"] == "nginx:1.28" and out["spec"]["activeDeadlineSeconds"] == 600
    # Removing a toleration is not an addition.
    with pytest.raises(ApiException) as err:
        res.patch(body=[{"op": "remove", "path": "/spec/tolerations/0"}], name="solo", namespace=namespace,
                  content_type="application/json-patch+json")
    assert err.value.status == 422 and json.loads(err.value.body)["details"]["causes"][0]["field"] == "spec"
    # Adding a container is its own message.
    with pytest.raises(ApiException) as err:
        res.patch(body={"spec": {"containers": [{"name": "side", "image": "busybox"}]}}, name="solo",
                  namespace=namespace, content_type="application/strategic-merge-patch+json")
    assert [(c["field"], c["message"]) for c in json.loads(err.value.body)["details"]["causes"]] == [
        ("spec.containers", "Forbidden: pod updates may not add or remove containers")]


def test_kubectl_apply_of_changed_selector_prints_the_apiserver_error(kubectl, namespace: str,
                                                                      tmp_path: Path) -> None:
    text = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: {app}}}}}
  template:
    metadata: {{labels: {{app: {app}}}}}
    spec: {{containers: [{{name: app, image: "nginx:1.27"}}]}}
"""
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(text.format(ns=namespace, app="web"))
    second.write_text(text.format(ns=namespace, app="web2"))
    assert kubectl("apply", "-f", str(first)).returncode == 0
    for args in (("apply",), ("apply", "--server-side"), ("apply", "--dry-run=server")):
        out = kubectl(*args, "-f", str(second))
        assert out.returncode == 1, out.stdout
        assert ('The Deployment "web" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:'
                'map[string]string{"app":"web2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: '
                "field is immutable") in out.stderr, out.stderr
