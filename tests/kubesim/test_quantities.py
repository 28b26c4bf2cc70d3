"""Quantities as the API server stores them: parsed when the body is decoded, written back in
canonical form (k8s.io/apimachinery resource/quantity.go), so a client reading back what it
wrote sees ``500m`` for ``0.5``; a value that does not parse is the decoder's 400."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from local.kubesim.quantity import QuantityError, canonical

# input -> what the API server stores (quantity_test.go's canonical table and its fast path,
# which keeps a string that is canonical already, leading zeros included)
CANONICAL = {
    "0": "0", "0.5": "500m", "500m": "500m", "1000m": "1", "1.5": "1500m", "1000": "1k", "100": "100",
    "2000": "2k", "1500": "1500", "1k": "1k", "1.5k": "1500", "3000000": "3M", "0.1": "100m", ".5": "500m",
    "5.0": "5", "0.25": "250m", "10000M": "10G", "1Gi": "1Gi", "1024Mi": "1Gi", "1.5Gi": "1536Mi",
    "4096Ki": "4Mi", "1000Mi": "1000Mi", "8Gi": "8Gi", "0.5Ki": "512", "2048": "2048", "1e3": "1e3",
    "2e2": "200", "1.5e3": "1500", "12e6": "12e6", "0.0000000001": "1n", "-1": "-1", "01": "01", "100u": "100u",
    "1000n": "1u",
}


@pytest.mark.parametrize("given, stored", sorted(CANONICAL.items()))
def test_canonical_form(given: str, stored: str) -> None:
    assert canonical(given) == stored


@pytest.mark.parametrize("bad, why", [("abc", "must match the regular expression"), ("1x", "must match"),
                                      ("1.2.3", "must match"), ("1e", "suffix"), ("5Zi", "must match")])
def test_what_does_not_parse(bad: str, why: str) -> None:
    with pytest.raises(QuantityError, match=why):
        canonical(bad)


def _pod(name: str, cpu: object, memory: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                     "resources": {"requests": {"cpu": cpu, "memory": memory},
                                                   "limits": {"cpu": "1000m", "memory": "1024Mi"}}}]}}


def test_stored_and_returned_canonical(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_pod(namespace, _pod("q", "0.5", "0.5Gi"))
    res = created.spec.containers[0].resources
    assert res.requests == {"cpu": "500m", "memory": "512Mi"} and res.limits == {"cpu": "1", "memory": "1Gi"}
    read = core.read_namespaced_pod("q", namespace).spec.containers[0].resources
    assert read.requests == res.requests and read.limits == res.limits


def test_a_pod_template_and_a_claim_are_decoded_too(api: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    dep = apps.create_namespaced_deployment(namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "qd"},
        "spec": {"selector": {"matchLabels": {"app": "qd"}}, "template": {
            "metadata": {"labels": {"app": "qd"}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27", "resources": {"limits": {"cpu": "0.25"}}}],
                     "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1000Mi"}}]}}}})
    assert dep.spec.template.spec.containers[0].resources.limits == {"cpu": "250m"}
    assert dep.spec.template.spec.volumes[0].empty_dir.size_limit == "1000Mi"
    pvc = core.create_namespaced_persistent_volume_claim(namespace, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "qc"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2048Mi"}}}})
    assert pvc.spec.resources.requests == {"storage": "2Gi"}


def test_a_bad_quantity_is_the_decoders_400(api: client.ApiClient, namespace: str) -> None:
    with pytest.raises(ApiException) as exc:
        client.CoreV1Api(api).create_namespaced_pod(namespace, _pod("bad", "lots", "1Gi"))
    body = json.loads(exc.value.body)
    assert exc.value.status == 400 and body["reason"] == "BadRequest", body
    assert body["message"] == ('Pod in version "v1" cannot be handled as a Pod: quantities must match the regular '
                               "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"), body


def test_reapplying_the_same_spelling_is_no_change(api: client.ApiClient, namespace: str) -> None:
    """Server-side apply of ``cpu: 0.5`` twice: the second is a no-op (same resourceVersion and
    generation), because the merged object decodes to what is stored."""
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "qa", "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": "qa"}}, "template": {
                "metadata": {"labels": {"app": "qa"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                         "resources": {"requests": {"cpu": 0.5, "memory": "64Mi"}}}]}}}}

    deployments = dynamic.DynamicClient(api).resources.get(api_version="apps/v1", kind="Deployment")

    def apply() -> dict:
        return deployments.patch(body=body, name="qa", namespace=namespace, field_manager="me",
                                 content_type="application/apply-patch+yaml").to_dict()

    first, second = apply(), apply()
    assert first["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "500m"
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert second["metadata"]["generation"] == first["metadata"]["generation"] == 1
