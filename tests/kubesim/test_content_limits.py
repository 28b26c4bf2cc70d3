"""Secret / ConfigMap contents and size limits, refused as a real kube-apiserver refuses them.

- ``data`` of a Secret (and ``binaryData`` of a ConfigMap) is ``[]byte``: a value that is not
  base64 fails JSON decoding, 400 ``Secret in version "v1" cannot be handled as a Secret:
  illegal base64 data at input byte N`` (Go's ``base64.CorruptInputError`` offset);
- typed Secrets need their keys (ValidateSecret): ``data[tls.crt]: Required value``;
- ConfigMap / Secret contents are at most 1 MiB (``[]: Too long`` / ``data: Too long``);
- a request body over 3 MiB is 413 ``Request entity too large: limit is 3145728``;
- an object etcd cannot store (over 1.5 MiB) is a Status 500 ``etcdserver: request is too
  large`` without reason; a dry run never reaches etcd and passes.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from local.kubesim.configdata import go_base64_error


def _status(err: pytest.ExceptionInfo[ApiException]) -> dict:
    return json.loads(err.value.body)


# Offsets as Go's base64.StdEncoding.Decode reports them (the first three are the messages
# users quote from real clusters for these plain-text values).
@pytest.mark.parametrize(("text", "offset"), [
    ("admin", 4), ("My-pass-123", 2), ("s3cr3t-not-for-production", 6),
    ("YWRtaW4", 4), ("YQ=x", 2), ("YQ==YQ==", 4), ("Y", 0), ("=YWJj", 0),
    ("YWRtaW4=", None), ("YWJj\nZGVm", None), ("", None),
])
def test_go_base64_offsets(text: str, offset: int | None) -> None:
    assert go_base64_error(text) == offset


def test_secret_data_must_be_base64(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    body = {"metadata": {"name": "plain"}, "data": {"password": "YWRtaW4=", "user": "admin"}}
    with pytest.raises(ApiException) as err:
        core.create_namespaced_secret(namespace, body)
    assert err.value.status == 400
    status = _status(err)
    assert status["reason"] == "BadRequest"
    assert status["message"] == 'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 4'
    # The same on update, and in dry run; stringData takes plain text.
    ok = core.create_namespaced_secret(namespace, {"metadata": {"name": "plain"}, "stringData": {"user": "admin"}})
    assert base64.b64decode(ok.data["user"]) == b"admin"
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_secret("plain", namespace, {"metadata": {"name": "plain"}, "data": {"user": "adm!n"}},
                                       dry_run="All")
    assert err.value.status == 400 and _status(err)["message"].endswith("illegal base64 data at input byte 3")
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "bin"}, "binaryData": {"b": "not base64"}})
    assert err.value.status == 400
    assert _status(err)["message"] == \
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: illegal base64 data at input byte 3'


def test_patch_to_a_value_that_does_not_decode_is_422(api: client.ApiClient, dyn: dynamic.DynamicClient,
                                                       namespace: str) -> None:
    """The patch handler answers NewInvalid(GroupKind{}, "", patch: Invalid value: ...)."""
    client.CoreV1Api(api).create_namespaced_secret(namespace, {"metadata": {"name": "p"}, "data": {"a": "YQ=="}})
    secrets = dyn.resources.get(api_version="v1", kind="Secret")
    with pytest.raises(ApiException) as err:
        secrets.patch(body={"data": {"a": "admin"}}, name="p", namespace=namespace,
                      content_type="application/strategic-merge-patch+json")
    assert err.value.status == 422
    status = _status(err)
    assert status["reason"] == "Invalid"
    assert status["message"] == ' "" is invalid: patch: Invalid value: "map[data:map[a:admin]]": ' \
                                "illegal base64 data at input byte 4"
    assert status["details"] == {"causes": [{
        "reason": "FieldValueInvalid", "field": "patch",
        "message": 'Invalid value: "map[data:map[a:admin]]": illegal base64 data at input byte 4'}]}
    with pytest.raises(ApiException) as err:
        secrets.patch(body={"data": {"a": "admin"}}, name="p", namespace=namespace,
                      content_type="application/merge-patch+json", dry_run="All")
    status = _status(err)
    assert err.value.status == 422 and status["details"]["causes"][0]["field"] == "patch"
    shown = json.loads(status["details"]["causes"][0]["message"].removeprefix("Invalid value: ").rsplit(": ", 1)[0])
    assert json.loads(shown)["data"] == {"a": "admin"}  # the patched object, as JSON
    assert status["message"].endswith(": illegal base64 data at input byte 4")


def test_kubectl_apply_plain_text_secret(kubectl, namespace: str, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"apiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: {namespace}}}\n"
                    "data: {DB_PASSWORD: s3cr3t-not-for-production}\n")
    out = kubectl("apply", "-f", str(path))
    assert out.returncode == 1
    assert ('Error from server (BadRequest): error when creating "' + str(path) + '": Secret in version "v1" '
            "cannot be handled as a Secret: illegal base64 data at input byte 6") in out.stderr, out.stderr


def test_typed_secrets_need_their_keys(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_secret(namespace, {"metadata": {"name": "cert"}, "type": "kubernetes.io/tls",
                                                  "data": {"ca.crt": "YQ=="}})
    assert err.value.status == 422
    status = _status(err)
    assert status["reason"] == "Invalid"
    assert status["message"] == 'Secret "cert" is invalid: [data[tls.crt]: Required value, data[tls.key]: Required value]'
    assert status["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "data[tls.crt]"},
        {"reason": "FieldValueRequired", "message": "Required value", "field": "data[tls.key]"},
    ]
    ok = core.create_namespaced_secret(namespace, {"metadata": {"name": "cert"}, "type": "kubernetes.io/tls",
                                                   "stringData": {"tls.crt": "x", "tls.key": "y"}})
    assert ok.type == "kubernetes.io/tls"
    with pytest.raises(ApiException) as err:
        core.create_namespaced_secret(namespace, {"metadata": {"name": "pull"},
                                                  "type": "kubernetes.io/dockerconfigjson",
                                                  "stringData": {".dockerconfigjson": "{auths"}})
    assert [(c["field"], c["message"]) for c in _status(err)["details"]["causes"]] == [
        ("data[.dockerconfigjson]",
         "Invalid value: \"<secret contents redacted>\": invalid character 'a' looking for beginning of object key string")]
    with pytest.raises(ApiException) as err:
        core.create_namespaced_secret(namespace, {"metadata": {"name": "bad-key"}, "stringData": {"a b": "x"}})
    assert _status(err)["details"]["causes"][0]["field"] == "data[a b]"
    assert "a valid config key must consist of alphanumeric characters" in _status(err)["message"]


def test_configmap_contents_at_most_one_mib(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "big"}, "data": {"a": "x" * (1024 * 1024),
                                                                                           "b": "y"}})
    assert err.value.status == 422
    assert _status(err)["message"] == 'ConfigMap "big" is invalid: []: Too long: must have at most 1048576 bytes'
    assert _status(err)["details"]["causes"] == [
        {"reason": "FieldValueTooLong", "message": "Too long: must have at most 1048576 bytes", "field": "[]"}]
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "big"}, "data": {"a": "x" * (1024 * 1024)}})


def test_client_side_apply_of_a_big_object_hits_the_annotation_limit(kubectl, namespace: str,
                                                                     tmp_path: Path) -> None:
    """The classic: kubectl's last-applied annotation makes annotations exceed 256 KiB; SSA has none."""
    path = tmp_path / "big.yaml"
    path.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big, namespace: {namespace}}}\n"
                    f"data: {{blob: {'x' * (300 * 1024)}}}\n")
    out = kubectl("apply", "-f", str(path))
    assert out.returncode == 1
    assert ('The ConfigMap "big" is invalid: metadata.annotations: Too long: must have at most 262144 bytes'
            in out.stderr), out.stderr
    ssa = kubectl("apply", "--server-side", "-f", str(path))
    assert ssa.returncode == 0, ssa.stderr


def test_request_body_over_3_mib_is_413(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    padding = 3 * 1024 * 1024
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "huge"}, "data": {"a": "x" * padding}})
    assert err.value.status == 413
    assert _status(err) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": "Request entity too large: limit is 3145728",
                            "reason": "RequestEntityTooLarge", "code": 413}
    # Just under the limit the body is read and validated (then refused for its content).
    body = json.dumps({"metadata": {"name": "huge"}, "data": {"a": ""}})
    fill = 3 * 1024 * 1024 - len(body)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "huge"}, "data": {"a": "x" * fill}})
    assert err.value.status == 422
    # The connection still answers.
    assert core.list_namespaced_config_map(namespace).items == []


def test_object_too_large_for_etcd(api: client.ApiClient, dyn: dynamic.DynamicClient, namespace: str) -> None:
    group = namespace.replace("-", "") + ".example.com"
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    crds.create(body={
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"blobs.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "blobs", "singular": "blob", "kind": "Blob"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
    })
    try:
        custom = client.CustomObjectsApi(api)
        big = {"apiVersion": f"{group}/v1", "kind": "Blob", "metadata": {"name": "b"},
               "spec": {"payload": "z" * (1600 * 1024)}}
        dry = custom.create_namespaced_custom_object(group, "v1", namespace, "blobs", big, dry_run="All")
        assert dry["metadata"]["name"] == "b"  # a dry run never reaches etcd
        with pytest.raises(ApiException) as err:
            custom.create_namespaced_custom_object(group, "v1", namespace, "blobs", big)
        assert err.value.status == 500
        assert _status(err) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": "etcdserver: request is too large", "code": 500}
        small = {**big, "spec": {"payload": "z"}}
        custom.create_namespaced_custom_object(group, "v1", namespace, "blobs", small)
        with pytest.raises(ApiException) as err:
            custom.patch_namespaced_custom_object(group, "v1", namespace, "blobs", "b", {"spec": big["spec"]})
        assert err.value.status == 500 and _status(err)["message"] == "etcdserver: request is too large"
    finally:
        crds.delete(name=f"blobs.{group}")
