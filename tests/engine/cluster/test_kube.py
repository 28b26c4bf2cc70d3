"""ClusterClient against kubesim: real HTTPS, the official client, no mocks."""

from __future__ import annotations

import base64
import os
import tempfile
import time
from typing import Any

import pytest
import yaml
from gitferry import kube, tracking


def configmap(name: str, namespace: str, app: str | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if app:
        meta["labels"] = {tracking.APP_LABEL: app}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {"k": "v"}}


def _files_containing(needle: bytes, since: float) -> list[str]:
    found = []
    for root, _dirs, files in os.walk(tempfile.gettempdir()):
        for f in files:
            path = os.path.join(root, f)
            try:
                if os.path.getmtime(path) >= since and os.path.getsize(path) < 1_000_000:
                    with open(path, "rb") as fh:
                        if needle in fh.read():
                            found.append(path)
            except OSError:
                continue
    return found


def _client_certificate() -> tuple[bytes, bytes]:
    """A self-signed client certificate + key (EKS kubeconfigs use tokens, others use these)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gitferry-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_kubeconfig_leaves_no_credential_files_and_verifies_tls(kubeconfig_text: str) -> None:
    config = yaml.safe_load(kubeconfig_text)
    ca_pem = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    cert_pem, key_pem = _client_certificate()
    config["users"][0]["user"]["client-certificate-data"] = base64.b64encode(cert_pem).decode()
    config["users"][0]["user"]["client-key-data"] = base64.b64encode(key_pem).decode()
    since = time.time() - 1
    client = kube.ClusterClient(kube.api_client_from_kubeconfig(yaml.safe_dump(config)), tempfile.mkdtemp())
    assert client.get("v1", "Namespace", "default") is not None
    # still works for new connections after the temp files are gone
    client.api_client.rest_client.pool_manager.clear()
    assert client.get("v1", "Namespace", "default") is not None
    for secret in (ca_pem, key_pem):
        assert _files_containing(secret.strip().splitlines()[1], since) == []
    client.close()


def test_wrong_ca_is_refused(kubeconfig_text: str) -> None:
    from local.kubesim import tls

    config = yaml.safe_load(kubeconfig_text)
    config["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(
        tls.generate(("127.0.0.1",)).ca_pem).decode()
    with pytest.raises(kube.KubeError):
        kube.ClusterClient(kube.api_client_from_kubeconfig(yaml.safe_dump(config)), tempfile.mkdtemp()).get(
            "v1", "Namespace", "default")


def test_bad_kubeconfig_is_a_kube_error() -> None:
    with pytest.raises(kube.KubeError) as err:
        kube.api_client_from_kubeconfig("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n", context="nope")
    assert err.value.reason == "InvalidKubeconfig"


def test_discovery(cluster: kube.ClusterClient) -> None:
    assert cluster.is_namespaced("apps/v1", "Deployment")
    assert not cluster.is_namespaced("rbac.authorization.k8s.io/v1", "ClusterRole")
    kinds = {(t.group, t.kind) for t in cluster.served_types()}
    assert {("", "ConfigMap"), ("apps", "Deployment"), ("", "Namespace"), ("batch", "Job")} <= kinds
    assert ("", "Event") not in kinds and ("events.k8s.io", "Event") not in kinds
    assert all("/" not in t.plural and "list" in t.verbs for t in cluster.served_types())
    with pytest.raises(kube.KubeError) as err:
        cluster.resource("example.com/v1", "Nope")
    assert err.value.code == 404


def test_list_by_label_across_kinds_and_namespaces(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    other_ns = f"{namespace}-b"
    cluster.ensure_namespace(other_ns)
    mine = [
        configmap("a", namespace, app_name),
        configmap("b", other_ns, app_name),
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": namespace,
                                                            "labels": {tracking.APP_LABEL: app_name}},
         "stringData": {"x": "y"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": f"{app_name}-reader", "labels": {tracking.APP_LABEL: app_name}}, "rules": []},
    ]
    for obj in mine + [configmap("unlabelled", namespace), configmap("other-app", namespace, "someone-else")]:
        cluster.server_side_apply(obj)
    found = cluster.list_by_label(tracking.label_selector(app_name))
    keys = sorted(tracking.resource_key(o) for o in found)
    assert keys == sorted([
        ("", "ConfigMap", namespace, "a"), ("", "ConfigMap", other_ns, "b"), ("", "Secret", namespace, "s"),
        ("rbac.authorization.k8s.io", "ClusterRole", "", f"{app_name}-reader"),
    ])
    assert all(o["apiVersion"] and o["kind"] for o in found)


def test_list_kind_follows_continue_tokens(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    for i in range(7):
        cluster.server_side_apply(configmap(f"cm-{i}", namespace, app_name))
    rt = next(t for t in cluster.served_types() if t.kind == "ConfigMap" and t.group == "")
    items = cluster.list_kind(rt, tracking.label_selector(app_name), page_size=2)
    assert sorted(o["metadata"]["name"] for o in items) == [f"cm-{i}" for i in range(7)]


def test_server_side_apply_owns_fields_and_dry_run_persists_nothing(cluster: kube.ClusterClient, namespace: str) -> None:
    dry = cluster.server_side_apply(configmap("dry", namespace), dry_run=True)
    assert dry["metadata"]["name"] == "dry"
    assert cluster.get("v1", "ConfigMap", "dry", namespace) is None
    out = cluster.server_side_apply(configmap("real", namespace, k="1"))
    managers = {(m["manager"], m["operation"]) for m in out["metadata"]["managedFields"]}
    assert ("gitferry", "Apply") in managers
    again = cluster.server_side_apply(configmap("real", namespace, k="2"))
    assert again["data"] == {"k": "2"}
    assert cluster.get("v1", "ConfigMap", "real", namespace)["data"] == {"k": "2"}


def test_errors_carry_status_and_identity(cluster: kube.ClusterClient, namespace: str) -> None:
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "broken", "namespace": namespace},
           "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}
    with pytest.raises(kube.KubeError) as err:
        cluster.server_side_apply(bad)
    assert err.value.code == 422 and err.value.reason == "Invalid"
    assert f"Deployment apps/v1 {namespace}/broken" in str(err.value)
    with pytest.raises(kube.KubeError) as err:
        cluster.server_side_apply(configmap("x", "no-such-namespace-here"))
    assert err.value.code == 404 and err.value.reason == "NotFound"


def test_delete_and_ensure_namespace(cluster: kube.ClusterClient, namespace: str) -> None:
    live = cluster.server_side_apply(configmap("gone", namespace))
    cluster.delete(live)
    deadline = time.monotonic() + 10
    while cluster.get("v1", "ConfigMap", "gone", namespace) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cluster.get("v1", "ConfigMap", "gone", namespace) is None
    assert cluster.delete(live) is None  # already gone: not an error
    ns = cluster.ensure_namespace(namespace)  # existing: returned untouched
    assert ns["metadata"]["name"] == namespace
