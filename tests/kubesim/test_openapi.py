"""openapi.py: the /openapi/v3 index and documents kubectl needs (real 1.37 data, a real CRD object)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from local.kubesim.openapi import (
    crd_component_name,
    gv_path,
    openapi_document,
    openapi_document_bytes,
    openapi_index,
)
from local.kubesim.schema import Schemas
from local.kubesim.types import ResourceType

SCHEMAS = Schemas()
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
             "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]},
}


def all_types(crd: dict[str, Any] = CRD) -> list[ResourceType]:
    return SCHEMAS.builtin_types() + SCHEMAS.types_for_crd(crd)


def patch_ops(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [item["patch"] for item in doc["paths"].values() if "patch" in item]


def test_index_lists_every_served_group_version() -> None:
    types = all_types()
    index = openapi_index(types, SCHEMAS)
    expected = {gv_path(rt.group_version) for rt in types}
    assert set(index["paths"]) == expected
    assert {"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/autoscaling/v2", "apis/example.com/v1",
            "apis/apiextensions.k8s.io/v1", "apis/events.k8s.io/v1"} <= expected
    for key, entry in index["paths"].items():
        url = entry["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{key}?hash=")
        assert len(url.split("hash=")[1]) == 128


def test_hash_is_stable_and_changes_with_the_document() -> None:
    types = all_types()
    a = openapi_index(types, SCHEMAS)
    b = openapi_index(list(reversed(all_types())), Schemas())
    assert a == b
    changed = copy.deepcopy(CRD)
    changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["color"] = {
        "type": "string"}
    c = openapi_index(all_types(changed), SCHEMAS)
    assert c["paths"]["apis/example.com/v1"] != a["paths"]["apis/example.com/v1"]
    assert c["paths"]["apis/apps/v1"] == a["paths"]["apis/apps/v1"]
    assert openapi_document_bytes(SCHEMAS, "apps/v1", types) == openapi_document_bytes(SCHEMAS, "apps/v1", types)


@pytest.mark.parametrize("gv", ["v1", "apps/v1", "batch/v1", "networking.k8s.io/v1", "rbac.authorization.k8s.io/v1",
                                "apiextensions.k8s.io/v1", "example.com/v1"])
def test_every_kind_has_patch_with_field_validation(gv: str) -> None:
    """kubectl's QueryParamVerifierV3: a PATCH op with the GVK map and a fieldValidation parameter."""
    types = all_types()
    doc = openapi_document(SCHEMAS, gv, types)
    assert doc["openapi"].startswith("3.0")
    kinds = {rt.kind for rt in types if rt.group_version == gv}
    found: set[str] = set()
    for op in patch_ops(doc):
        gvk = op["x-kubernetes-group-version-kind"]
        assert isinstance(gvk, dict) and set(gvk) == {"group", "kind", "version"}
        assert "fieldValidation" in {p["name"] for p in op["parameters"]}
        if f"{gvk['group']}/{gvk['version']}".lstrip("/") == gv:
            found.add(gvk["kind"])
    assert found == kinds


def test_component_schemas_carry_gvk_and_patch_extensions() -> None:
    doc = openapi_document(SCHEMAS, "apps/v1", all_types())
    schemas = doc["components"]["schemas"]
    dep = schemas["io.k8s.api.apps.v1.Deployment"]
    assert dep["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert dep["type"] == "object" and "enum" not in dep["properties"]["kind"]
    assert dep["properties"]["spec"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert schemas["io.k8s.api.core.v1.Container"]["properties"]["ports"]["x-kubernetes-patch-merge-key"] == "containerPort"
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "description": "IntOrString is a type that can hold an int32 or a string.", "type": "string",
        "format": "int-or-string"}
    assert "io.k8s.api.autoscaling.v1.Scale" in schemas  # scale subresource
    # every $ref resolves inside the document (kubectl cannot fetch another one)
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"#/components/schemas/')[1:]}:
        assert ref in schemas, ref
    # no JSON-Schema-only constructs kubectl's spec3 parser would reject
    assert '"null"' not in text and "$defs" not in text


def test_paths_shape_for_namespaced_and_cluster_kinds() -> None:
    doc = openapi_document(SCHEMAS, "v1", all_types())
    paths = doc["paths"]
    assert {"get", "put", "patch", "delete"} <= set(paths["/api/v1/namespaces/{namespace}/configmaps/{name}"])
    assert {"get", "post", "delete"} <= set(paths["/api/v1/namespaces/{namespace}/configmaps"])
    assert "patch" in paths["/api/v1/namespaces/{name}/status"]
    assert "/api/v1/namespaces/{namespace}/configmaps/{name}/status" not in paths
    patch = paths["/api/v1/namespaces/{namespace}/services/{name}"]["patch"]
    assert set(patch["requestBody"]["content"]) == {
        "application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json",
        "application/strategic-merge-patch+json"}
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "kind": "Service", "version": "v1"}


def test_crd_document() -> None:
    types = all_types()
    [rt] = SCHEMAS.types_for_crd(CRD)
    assert crd_component_name(rt) == "com.example.v1.Widget"
    doc = openapi_document(SCHEMAS, "example.com/v1", types)
    schemas = doc["components"]["schemas"]
    widget = schemas["com.example.v1.Widget"]
    assert widget["x-kubernetes-group-version-kind"] == [{"group": "example.com", "kind": "Widget", "version": "v1"}]
    assert widget["properties"]["spec"]["properties"]["size"] == {"type": "integer"}
    assert widget["properties"]["metadata"]["allOf"][0]["$ref"].endswith("meta.v1.ObjectMeta")
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    assert "com.example.v1.WidgetList" in schemas
    item = doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]
    assert "application/strategic-merge-patch+json" not in item["patch"]["requestBody"]["content"]
    assert "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/status" in doc["paths"]
    # the CRD object itself is left untouched
    assert "x-kubernetes-group-version-kind" not in CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
