"""Real repositories work unchanged (issue "Real repositories work unchanged"): Application names
as Argo CD allows them (DNS-1123 subdomains, dots, up to 253 characters) and Jsonnet sources,
through the handlers on the local stack."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
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
