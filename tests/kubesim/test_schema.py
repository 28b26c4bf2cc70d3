"""schema.py against the real Kubernetes 1.37 data shipped by kubernetes-validate (no mocks)."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from local.kubesim import schema as schema_mod
from local.kubesim.errors import ApiError
from local.kubesim.schema import EMPTY, Schemas
from local.kubesim.types import ResourceType


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return Schemas()


def rt_of(schemas: Schemas, group: str, kind: str) -> ResourceType:
    return next(r for r in schemas.builtin_types() if r.group == group and r.kind == kind)


def deployment(**spec_extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                         "ports": [{"containerPort": 80}],
                                         "env": [{"name": "A", "value": "1"}]}]},
            },
        },
    }
    obj["spec"].update(spec_extra)
    return obj


CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wg"],
                  "categories": ["all"]},
        "versions": [
            {"name": "v1", "served": True, "storage": True,
             "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                      "statusReplicasPath": ".status.replicas"}},
             "schema": {"openAPIV3Schema": {
                 "type": "object",
                 "properties": {
                     "spec": {"type": "object", "required": ["size"], "properties": {
                         "size": {"type": "integer"},
                         "replicas": {"type": "integer"},
                         "mode": {"type": "string", "enum": ["fast", "slow"]},
                         "port": {"x-kubernetes-int-or-string": True},
                         "items": {"type": "array", "x-kubernetes-list-type": "map",
                                   "x-kubernetes-list-map-keys": ["key"],
                                   "items": {"type": "object", "properties": {"key": {"type": "string"}}}},
                         "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                         "embedded": {"type": "object", "x-kubernetes-embedded-resource": True,
                                      "properties": {"data": {"type": "string"}}},
                     }},
                     "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
                 },
             }}},
            {"name": "v1beta1", "served": False, "storage": False},
        ],
    },
}


def test_definitions_load_once_and_schemas_are_cheap() -> None:
    schema_mod.definitions()
    start = time.perf_counter()
    for _ in range(100):
        Schemas().builtin_types()
    assert time.perf_counter() - start < 0.5
    assert schema_mod.definitions() is schema_mod.definitions()


def test_builtin_types_names_scope_subresources(schemas: Schemas) -> None:
    types = {(r.group, r.kind): r for r in schemas.builtin_types()}
    assert len(types) == 32
    dep = types[("apps", "Deployment")]
    assert (dep.plural, dep.singular, dep.namespaced) == ("deployments", "deployment", True)
    assert dep.short_names == ("deploy",) and dep.categories == ("all",)
    assert dep.subresources == {"status", "scale"}
    assert dep.definition == "io.k8s.api.apps.v1.Deployment"
    assert types[("", "Namespace")].namespaced is False and types[("", "Namespace")].short_names == ("ns",)
    assert types[("", "ConfigMap")].subresources == frozenset()
    assert types[("", "Service")].subresources == {"status"}
    assert types[("", "Pod")].categories == ("all",)
    assert types[("batch", "CronJob")].short_names == ("cj",)
    assert types[("networking.k8s.io", "NetworkPolicy")].subresources == frozenset()
    assert types[("autoscaling", "HorizontalPodAutoscaler")].version == "v2"
    assert types[("apiextensions.k8s.io", "CustomResourceDefinition")].short_names == ("crd", "crds")
    assert types[("events.k8s.io", "Event")].definition == "io.k8s.api.events.v1.Event"
    assert types[("", "Event")].definition == "io.k8s.api.core.v1.Event"
    for r in types.values():
        assert r.definition in schema_mod.definitions()


def test_types_for_crd(schemas: Schemas) -> None:
    [rt] = schemas.types_for_crd(CRD)
    assert (rt.group, rt.version, rt.kind, rt.plural, rt.singular) == ("example.com", "v1", "Widget", "widgets", "widget")
    assert rt.namespaced and rt.short_names == ("wg",) and rt.categories == ("all",)
    assert rt.subresources == {"status", "scale"}
    assert rt.scale_paths == {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}
    assert rt.is_custom and rt.crd_schema is CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize(("path", "merge_key", "list_type", "map_keys"), [
    ("spec.template.spec.containers", "name", "map", ("name",)),
    ("spec.template.spec.initContainers", "name", "map", ("name",)),
    ("spec.template.spec.volumes", "name", "map", ("name",)),
    ("spec.template.spec.imagePullSecrets", "name", "map", ("name",)),
    ("status.conditions", "type", "map", ("type",)),
    ("metadata.ownerReferences", "uid", "map", ("uid",)),
])
def test_deployment_merge_keys(schemas: Schemas, path: str, merge_key: str, list_type: str,
                               map_keys: tuple[str, ...]) -> None:
    node = schemas.root(rt_of(schemas, "apps", "Deployment"))
    for part in path.split("."):
        node = node.field(part)
    assert node.type == "array"
    assert node.patch_merge_key == merge_key
    assert "merge" in (node.patch_strategy or "")
    assert node.list_type == list_type and node.list_map_keys == map_keys


def test_container_level_merge_keys(schemas: Schemas) -> None:
    c = schemas.root(rt_of(schemas, "", "Pod")).field("spec").field("containers").items
    assert c.known and c.type == "object" and c.def_name == "io.k8s.api.core.v1.Container"
    assert c.field("ports").patch_merge_key == "containerPort"
    assert c.field("ports").list_map_keys == ("containerPort", "protocol")
    assert c.field("env").patch_merge_key == "name"
    assert c.field("volumeMounts").patch_merge_key == "mountPath"
    assert c.field("args").patch_merge_key is None and c.field("args").list_type == "atomic"
    assert c.field("image").type == "string"
    tol = schemas.root(rt_of(schemas, "", "Pod")).field("spec").field("tolerations")
    assert tol.patch_merge_key is None and tol.list_type == "atomic"


def test_service_ports_and_int_or_string(schemas: Schemas) -> None:
    ports = schemas.root(rt_of(schemas, "", "Service")).field("spec").field("ports")
    assert ports.patch_merge_key == "port"
    assert ports.list_map_keys == ("port", "protocol")
    tp = ports.items.field("targetPort")
    assert tp.int_or_string and tp.known
    assert ports.items.field("port").type == "integer"


def test_finalizers_set_and_maps(schemas: Schemas) -> None:
    meta = schemas.root(rt_of(schemas, "", "ConfigMap")).field("metadata")
    fin = meta.field("finalizers")
    assert fin.list_type == "set" and fin.patch_strategy == "merge" and fin.items.type == "string"
    labels = meta.field("labels")
    assert labels.type == "object" and labels.is_map and labels.values.type == "string"
    assert labels.field("anything").type == "string"  # a map's key resolves to its value schema
    data = schemas.root(rt_of(schemas, "", "ConfigMap")).field("data")
    assert data.values.type == "string"


def test_map_type_and_retain_keys(schemas: Schemas) -> None:
    spec = schemas.root(rt_of(schemas, "apps", "Deployment")).field("spec")
    assert spec.field("selector").map_type == "atomic"
    assert spec.field("strategy").patch_strategy == "retainKeys"
    vol = spec.field("template").field("spec").field("volumes")
    assert vol.patch_strategy == "merge,retainKeys"


def test_empty_node_for_unknown_positions(schemas: Schemas) -> None:
    root = schemas.root(rt_of(schemas, "apps", "Deployment"))
    assert root.field("nope") is EMPTY
    assert EMPTY.field("x") is EMPTY and EMPTY.items is EMPTY and EMPTY.values is EMPTY
    assert not EMPTY.known and EMPTY.type is None and EMPTY.list_map_keys == ()
    assert root.field("spec").field("replicas").items is EMPTY


def test_crd_nodes(schemas: Schemas) -> None:
    [rt] = schemas.types_for_crd(CRD)
    root = schemas.root(rt)
    assert root is schemas.root(rt)  # cached
    assert root.field("metadata").def_name == "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    assert root.field("metadata").field("ownerReferences").patch_merge_key == "uid"
    spec = root.field("spec")
    assert spec.field("port").int_or_string
    assert spec.field("items").list_type == "map" and spec.field("items").list_map_keys == ("key",)
    assert spec.field("free").preserve_unknown
    emb = spec.field("embedded")
    assert emb.embedded and emb.field("metadata").def_name.endswith("ObjectMeta")
    assert emb.field("kind").type == "string"


def test_crd_without_schema_preserves_everything(schemas: Schemas) -> None:
    crd = copy.deepcopy(CRD)
    del crd["spec"]["versions"][0]["schema"]
    [rt] = schemas.types_for_crd(crd)
    root = schemas.root(rt)
    assert root.preserve_unknown
    assert schemas.unknown_fields(rt, {"metadata": {"name": "a"}, "spec": {"x": 1}}) == []


def test_unknown_fields_exact_paths(schemas: Schemas) -> None:
    rt = rt_of(schemas, "apps", "Deployment")
    obj = deployment(replica=3)
    obj["metadata"]["foo"] = 1
    c = obj["spec"]["template"]["spec"]["containers"][0]
    c["imagee"] = "x"
    c["ports"][0]["containerPorts"] = 1
    obj["spec"]["template"]["spec"]["volumes"] = [{"name": "v", "configMap": {"name": "c", "bogus": True}}]
    obj["spec"]["template"]["metadata"]["labels"]["free-key"] = "labels are maps"
    assert schemas.unknown_fields(rt, obj) == [
        "metadata.foo",
        "spec.template.spec.containers[0].ports[0].containerPorts",
        "spec.template.spec.containers[0].imagee",
        "spec.template.spec.volumes[0].configMap.bogus",
        "spec.replica",
    ]
    assert schemas.unknown_fields(rt, obj, style="apply") == [
        ".metadata.foo",
        '.spec.template.spec.containers[name="app"].ports[containerPort=80].containerPorts',
        '.spec.template.spec.containers[name="app"].imagee',
        '.spec.template.spec.volumes[name="v"].configMap.bogus',
        ".spec.replica",
    ]
    assert schemas.unknown_fields(rt, deployment()) == []


def test_free_form_objects_are_not_unknown(schemas: Schemas) -> None:
    rt = rt_of(schemas, "apps", "ControllerRevision")
    obj = {"metadata": {"name": "r", "managedFields": [{"manager": "m", "fieldsType": "FieldsV1",
                                                       "fieldsV1": {"f:spec": {"f:x": {}}}}]},
           "data": {"spec": {"anything": True}}, "revision": 1}
    assert schemas.unknown_fields(rt, obj) == []


def test_strict_decode_error_shapes(schemas: Schemas) -> None:
    rt = rt_of(schemas, "apps", "Deployment")
    obj = deployment(replica=3)
    err = schemas.decode_error(rt, obj, strict=True)
    assert err is not None and err.code == 400 and err.reason == "BadRequest"
    assert err.message == ('Deployment in version "v1" cannot be handled as a Deployment: '
                           'strict decoding error: unknown field "spec.replica"')
    patch_err = schemas.decode_error(rt, obj, strict=True, operation="patch")
    assert patch_err is not None and patch_err.message == 'strict decoding error: unknown field "spec.replica"'
    assert schemas.decode_error(rt, obj, strict=False) is None
    apply_err = schemas.decode_error(rt, obj, strict=False, operation="apply")
    assert apply_err is not None and apply_err.code == 500 and apply_err.reason == ""
    assert apply_err.message == ("failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
                                 ".spec.replica: field not declared in schema")
    with pytest.raises(ApiError) as exc:
        schemas.validate(rt, obj, strict=True)
    assert exc.value.code == 400


def test_type_errors_are_decode_errors_for_builtins(schemas: Schemas) -> None:
    rt = rt_of(schemas, "apps", "Deployment")
    err = schemas.decode_error(rt, deployment(replicas="lots"), strict=False)
    assert err is not None and err.code == 400
    assert err.message == ('Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
                           "string into Go struct field DeploymentSpec.spec.replicas of type int32")
    svc = rt_of(schemas, "", "Service")
    ok = {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80, "targetPort": "http"}]}}
    assert schemas.decode_error(svc, ok, strict=True) is None
    ok["spec"]["ports"][0]["targetPort"] = 8080
    assert schemas.decode_error(svc, ok, strict=True) is None
    ok["spec"]["ports"][0]["targetPort"] = True
    assert schemas.decode_error(svc, ok, strict=True) is not None


def test_validate_names(schemas: Schemas) -> None:
    rt = rt_of(schemas, "apps", "Deployment")
    obj = deployment()
    obj["metadata"]["name"] = "Bad_Name"
    [cause] = schemas.validate(rt, obj, strict=True)
    assert cause.field == "metadata.name" and cause.reason == "FieldValueInvalid"
    assert cause.message.startswith('Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of')
    ns = rt_of(schemas, "", "Namespace")
    [c] = schemas.validate(ns, {"metadata": {"name": "a.b"}}, strict=True)
    assert "RFC 1123 label" in c.message
    svc = rt_of(schemas, "", "Service")
    [c] = schemas.validate(svc, {"metadata": {"name": "1svc"}, "spec": {"ports": [{"port": 80}]}}, strict=True)
    assert "DNS-1035 label" in c.message
    role = rt_of(schemas, "rbac.authorization.k8s.io", "ClusterRole")
    assert schemas.validate(role, {"metadata": {"name": "system:controller:x"}}, strict=True) == []
    [c] = schemas.validate(rt_of(schemas, "", "ConfigMap"), {"metadata": {}}, strict=True)
    assert (c.field, c.reason, c.message) == ("metadata.name", "FieldValueRequired",
                                               "Required value: name or generateName is required")
    assert schemas.validate(rt_of(schemas, "", "ConfigMap"), {"metadata": {"generateName": "x-"}}, strict=True) == []


def test_validate_required_fields(schemas: Schemas) -> None:
    rt = rt_of(schemas, "apps", "Deployment")
    obj = deployment()
    c = obj["spec"]["template"]["spec"]["containers"][0]
    del c["image"]
    c["env"].append({"value": "no name"})
    causes = schemas.validate(rt, obj, strict=True)
    assert {(x.field, x.reason) for x in causes} == {
        ("spec.template.spec.containers[0].env[1].name", "FieldValueRequired"),
        ("spec.template.spec.containers[0].image", "FieldValueRequired"),
    }
    svc = rt_of(schemas, "", "Service")
    causes = schemas.validate(svc, {"metadata": {"name": "s"}, "spec": {"ports": [{"name": "http"}]}}, strict=True)
    assert [(x.field, x.message) for x in causes] == [
        ("spec.ports[0].port", "Invalid value: 0: must be between 1 and 65535, inclusive")]
    assert schemas.validate(rt, deployment(), strict=True) == []


def test_builtin_status_and_zero_values_are_not_required(schemas: Schemas) -> None:
    """ReplicaSetStatus.replicas is `required` in OpenAPI but a Go zero value on the server."""
    rs = rt_of(schemas, "apps", "ReplicaSet")
    obj = deployment()
    obj["kind"] = "ReplicaSet"
    obj["status"] = {"conditions": [{}]}
    assert schemas.validate(rs, obj, strict=True) == []
    cr = rt_of(schemas, "apps", "ControllerRevision")
    assert schemas.validate(cr, {"metadata": {"name": "r"}, "data": {}}, strict=True) == []


def test_selector_must_match_template(schemas: Schemas) -> None:
    rt = rt_of(schemas, "apps", "Deployment")
    obj = deployment()
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    [c] = schemas.validate(rt, obj, strict=True)
    assert c.field == "spec.template.metadata.labels"
    assert c.message.endswith("`selector` does not match template `labels`")


def test_crd_validation(schemas: Schemas) -> None:
    [rt] = schemas.types_for_crd(CRD)
    good = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 1, "port": "http", "free": {"a": {"b": 1}},
                     "embedded": {"apiVersion": "v1", "kind": "X", "metadata": {"name": "n"}, "data": "d"}}}
    assert schemas.validate(rt, good, strict=True) == []
    bad = copy.deepcopy(good)
    bad["spec"]["extra"] = 1
    assert schemas.unknown_fields(rt, bad) == ["spec.extra"]
    err = schemas.decode_error(rt, bad, strict=True)
    assert err is not None and 'unknown field "spec.extra"' in err.message
    bad = copy.deepcopy(good)
    bad["spec"]["size"] = "big"
    bad["spec"]["mode"] = "medium"
    causes = {c.field: c for c in schemas.validate(rt, bad, strict=True)}
    assert causes["spec.size"].reason == "FieldValueTypeInvalid"
    assert causes["spec.size"].message.endswith('spec.size in body must be of type integer: "string"')
    assert causes["spec.mode"].reason == "FieldValueNotSupported"
    assert causes["spec.mode"].message == 'Unsupported value: "medium": supported values: "fast", "slow"'
    missing = copy.deepcopy(good)
    del missing["spec"]["size"]
    [c] = schemas.validate(rt, missing, strict=True)
    assert (c.field, c.reason) == ("spec.size", "FieldValueRequired")


def test_crd_value_constraints(schemas: Schemas) -> None:
    crd = copy.deepcopy(CRD)
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    props["replicas"].update({"minimum": 0, "maximum": 10})
    props["name"] = {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5}
    [rt] = schemas.types_for_crd(crd)
    obj = {"metadata": {"name": "w"}, "spec": {"size": 1, "replicas": 11, "name": "ABCDEFG"}}
    causes = [(c.field, c.reason, c.message) for c in schemas.validate(rt, obj, strict=True)]
    assert causes == [
        ("spec.replicas", "FieldValueInvalid", "Invalid value: 11: spec.replicas in body should be less than or equal to 10"),
        ("spec.name", "FieldValueInvalid", "Invalid value: \"ABCDEFG\": spec.name in body should match '^[a-z]+$'"),
        ("spec.name", "FieldValueTooLong", "Too long: may not be more than 5 bytes"),
    ]


def test_builtin_value_checks(schemas: Schemas) -> None:
    rt = rt_of(schemas, "apps", "Deployment")
    [c] = schemas.validate(rt, deployment(replicas=-1), strict=True)
    assert (c.field, c.message) == ("spec.replicas", "Invalid value: -1: must be greater than or equal to 0")
    obj = deployment()
    del obj["spec"]["selector"]
    [c] = schemas.validate(rt, obj, strict=True)
    assert (c.field, c.reason) == ("spec.selector", "FieldValueRequired")
    svc = rt_of(schemas, "", "Service")
    [c] = schemas.validate(svc, {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 70000}]}}, strict=True)
    assert c.field == "spec.ports[0].port" and "between 1 and 65535" in c.message


def test_job_templates_need_on_failure_or_never(schemas: Schemas) -> None:
    job = rt_of(schemas, "batch", "Job")
    obj = {"metadata": {"name": "j"}, "spec": {"template": {"spec": {
        "restartPolicy": "Always", "containers": [{"name": "c", "image": "busybox"}]}}}}
    [c] = schemas.validate(job, obj, strict=True)
    assert (c.field, c.reason) == ("spec.template.spec.restartPolicy", "FieldValueNotSupported")
    assert c.message == 'Unsupported value: "Always": supported values: "OnFailure", "Never"'
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert schemas.validate(job, obj, strict=True) == []
