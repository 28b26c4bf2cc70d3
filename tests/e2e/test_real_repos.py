"""Real repositories work unchanged (issue "Real repositories work unchanged"): Application names
as Argo CD allows them (DNS-1123 subdomains, dots, up to 253 characters) and Jsonnet sources,
through the handlers on the local stack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import _jsonnet
import pytest
import yaml
from gitferry import tracking
from kubernetes import client

from local.story import DEPLOYMENT, SERVICE, LocalWorld, application, synced_healthy


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        yield w


LONG_NAME = ".".join(["a" * 49, "b" * 49, "c" * 49, "d" * 50])  # 200 characters
assert len(LONG_NAME) == 200


@pytest.mark.parametrize(("app", "namespace"), [("example.guestbook", "example-guestbook"),
                                                (LONG_NAME, "long-name")])
def test_subdomain_names_register_sync_and_prune(world: LocalWorld, app: str, namespace: str) -> None:
    server = world.register_cluster("local")
    repo_name = f"names-{namespace}"
    repo = world.git.make_repo(repo_name, {"app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
                                           "app/svc.yaml": SERVICE})
    world.api_ok("POST", "/api/v1/applications", application(app, repo, server, automated=True,
                                                             path="app", namespace=namespace))
    world.until("synced", synced_healthy(world, app))
    assert world.api_ok("GET", f"/api/v1/applications/{app}")["metadata"]["name"] == app
    assert app in [a["metadata"]["name"] for a in world.api_ok("GET", "/api/v1/applications")["items"]]

    live = client.CoreV1Api(world.k8s).read_namespaced_service("guestbook-ui", namespace)
    label = live.metadata.labels[tracking.APP_LABEL]
    assert len(label) <= 63
    assert (label == app) == (len(app) <= 63)  # the name itself when it fits, a derived value when not
    assert live.metadata.annotations[tracking.TRACKING_ANNOTATION] == f"{app}:/Service:{namespace}/guestbook-ui"

    world.git.commit(repo_name, {}, "drop the service", delete=["app/svc.yaml"])
    world.until("service pruned", lambda: not world.service_exists(namespace, "guestbook-ui"))
    world.until("synced after prune", synced_healthy(world, app))
    assert world.deployment(namespace, "guestbook-ui").spec.replicas == 1


def test_names_beyond_a_subdomain_are_refused(world: LocalWorld) -> None:
    server = world.register_cluster("local")
    for bad, why in [("a" * 254, "at most 253"), ("Example.guestbook", "RFC 1123 subdomain"),
                     ("example..guestbook", "RFC 1123 subdomain")]:
        code, body = world.call("POST", "/api/v1/applications",
                                application(bad, "https://git.example/r.git", server, automated=False))
        assert code == 400, (bad, code, body)
        assert why in json.dumps(body), body


# Argo CD's jsonnet-guestbook-tla, with its building blocks in a library directory
GUESTBOOK_JSONNET = """\
local k = import "k.libsonnet";
function(name="guestbook-ui", replicas=1, containerPort=80, image="gcr.io/heptio-images/ks-guestbook-demo:0.2")
  [
    k.deployment(name, replicas, image, containerPort) + std.extVar("labels"),
    k.service(name, containerPort),
  ]
"""
K_LIBSONNET = """\
{
  deployment(name, replicas, image, port):: {
    apiVersion: "apps/v1", kind: "Deployment", metadata: { name: name },
    spec: { replicas: replicas, revisionHistoryLimit: 3, selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } },
        spec: { containers: [{ name: name, image: image, ports: [{ containerPort: port }] }] } } },
  },
  service(name, port):: {
    apiVersion: "v1", kind: "Service", metadata: { name: name },
    spec: { ports: [{ port: port, targetPort: port }], selector: { app: name } },
  },
}
"""
JSONNET = {
    "extVars": [{"name": "labels", "value": '{metadata+: {labels: {tier: "web"}}}', "code": True}],
    "tlas": [{"name": "replicas", "value": "2", "code": True}, {"name": "image", "value": "nginx:1.27"},
             {"name": "name", "value": "jsonnet-ui"}],
    "libs": ["vendor/k"],
}


def _contains(live: Any, want: Any) -> bool:
    """``want`` is in ``live`` (the API server adds defaults and our marks, never removes)."""
    if isinstance(want, dict):
        return isinstance(live, dict) and all(k in live and _contains(live[k], v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(live, list) and len(live) == len(want) and all(map(_contains, live, want))
    return bool(live == want)


def test_jsonnet_app_with_tlas_and_a_lib_renders_as_the_binding_and_syncs(world: LocalWorld, tmp_path: Any) -> None:
    server = world.register_cluster("local")
    files = {"jsonnet-guestbook-tla/guestbook-ui.jsonnet": GUESTBOOK_JSONNET,
             "jsonnet-guestbook-tla/README.md": "not a manifest", "vendor/k/k.libsonnet": K_LIBSONNET}
    repo = world.git.make_repo("jsonnet-guestbook", files)
    doc = yaml.safe_load(application("jsonnet.guestbook", repo, server, automated=True,
                                     path="jsonnet-guestbook-tla", namespace="jsonnet"))
    doc["spec"]["source"]["directory"] = {"jsonnet": JSONNET}
    world.api_ok("POST", "/api/v1/applications", yaml.safe_dump(doc))
    world.until("jsonnet app synced", synced_healthy(world, "jsonnet.guestbook"))

    for rel, text in files.items():  # the same input, evaluated by the binding itself
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    expected = json.loads(_jsonnet.evaluate_file(
        str(tmp_path / "jsonnet-guestbook-tla/guestbook-ui.jsonnet"), jpathdir=[str(tmp_path / "vendor/k")],
        ext_codes={"labels": '{metadata+: {labels: {tier: "web"}}}'},
        tla_vars={"image": "nginx:1.27", "name": "jsonnet-ui"}, tla_codes={"replicas": "2"}))

    serialize = world.k8s.sanitize_for_serialization
    live = {"Deployment": serialize(client.AppsV1Api(world.k8s).read_namespaced_deployment("jsonnet-ui", "jsonnet")),
            "Service": serialize(client.CoreV1Api(world.k8s).read_namespaced_service("jsonnet-ui", "jsonnet"))}
    assert [o["kind"] for o in expected] == ["Deployment", "Service"]
    for want in expected:
        assert _contains(live[want["kind"]], want), (want, live[want["kind"]])
    resources = world.status("jsonnet.guestbook")["resources"]
    assert sorted((r["kind"], r["name"]) for r in resources) == [("Deployment", "jsonnet-ui"), ("Service", "jsonnet-ui")]
    assert live["Deployment"]["spec"]["replicas"] == 2  # the TLA reached the cluster, not the default 1


def test_jsonnet_error_is_the_apps_comparison_error_naming_file_and_line(world: LocalWorld) -> None:
    server = world.register_cluster("local")
    repo = world.git.make_repo("jsonnet-broken", {"app/main.jsonnet": '{\n  apiVersion: "v1",\n  kind: error "no kind",\n}\n'})
    world.api_ok("POST", "/api/v1/applications", application("jsonnet-broken", repo, server, automated=True,
                                                             path="app", namespace="jsonnet-broken"))

    def failed() -> bool:
        conditions = world.status("jsonnet-broken").get("conditions") or []
        return any(c.get("type") == "ComparisonError" for c in conditions)

    world.until("comparison error", failed)
    message = next(c["message"] for c in world.status("jsonnet-broken")["conditions"] if c["type"] == "ComparisonError")
    assert "app/main.jsonnet:3: RUNTIME ERROR: no kind" in message, message
