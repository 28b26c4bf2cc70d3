"""End to end: Applications whose source is in an OCI registry, through the handlers on the local
stack, against a real registry (Debian's docker-registry, the CNCF distribution server):

- an OCI Helm chart in Argo CD's form (``repoURL: <registry>/charts`` without a scheme, ``chart``),
  pushed by the real ``helm push``; ``targetRevision`` a semver range over the tags;
- plain manifests as an OCI artifact (``repoURL: oci://...``, ``path`` inside it), pushed with the
  distribution HTTP API as oras and flux do;
- basic auth (missing / wrong / right credentials) and ECR credentials through moto's
  ``ecr:GetAuthorizationToken``.

The revision recorded is the manifest digest; what gitferry rendered is compared object for
object with ``helm template`` of the same chart."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.helmrepo import helm_binary
from local.ociregistry import OciRegistry, helm_push, package_chart
from local.story import LocalWorld, synced_healthy

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  labels: {chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}-web}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}-web}
    spec:
      containers:
      - name: web
        image: {{ .Values.image }}
"""
CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  greeting: {{ .Values.greeting | quote }}
"""
CHART = {"values.yaml": "image: nginx:1.25\nreplicas: 1\ngreeting: hello\n",
         "templates/deployment.yaml": DEPLOYMENT, "templates/configmap.yaml": CONFIGMAP}
ECR_ACCOUNT = "123456789012"


def manifests_of(world: LocalWorld, app: str) -> list[dict[str, Any]]:
    """The manifests gitferry rendered and stored for ``app`` (what it compared and applied)."""
    from gitferry.blobs import ManifestStore

    res = world.stack.resources
    store = ManifestStore(res.physical["ManifestBucket"], client=res.client("s3"))
    return store.get_manifests(world.status(app)["sync"]["manifests"])


def helm_template(chart: Path, release: str, namespace: str, *extra: str) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as home:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "HELM_CACHE_HOME": f"{home}/c",
               "HELM_CONFIG_HOME": f"{home}/f", "HELM_DATA_HOME": f"{home}/d"}
        out = subprocess.run([helm_binary(), "template", release, str(chart), "--namespace", namespace,
                              "--include-crds", *extra], env=env, capture_output=True, text=True, check=True,
                             timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_identity(objs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


def application(name: str, source: dict[str, Any], server: str, namespace: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": source,
            "destination": {"server": server, "namespace": namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]},
        },
    }, sort_keys=False)


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        yield w


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciRegistry]:
    with OciRegistry(tmp_path_factory.mktemp("oci")) as reg:
        yield reg


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciRegistry]:
    with OciRegistry(tmp_path_factory.mktemp("oci-auth"), auth=("deployer", "s3cret-pw")) as reg:
        yield reg


@pytest.fixture(scope="module")
def ecr_like(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciRegistry]:
    # moto's GetAuthorizationToken answers AWS:<registry id>-auth-token; the registry accepts it
    with OciRegistry(tmp_path_factory.mktemp("oci-ecr"), auth=("AWS", f"{ECR_ACCOUNT}-auth-token")) as reg:
        yield reg


def register(world: LocalWorld, host: str, **extra: Any) -> None:
    world.api_ok("POST", "/api/v1/repositories?upsert=true",
                 {"url": f"oci://{host}", "type": "oci", "plainHttp": True, **extra})


def test_oci_helm_chart_follows_new_tags_and_matches_helm_template(world: LocalWorld, registry: OciRegistry) -> None:
    server = world.register_cluster("local")
    register(world, registry.host)
    archives = {}
    for version in ("1.0.0", "1.1.0", "2.0.0-rc.1"):
        archives[version] = package_chart("web", version, CHART)
        helm_push(registry, archives[version], "charts")
    digest = registry.digest("charts/web", "1.1.0")
    helm = {"valuesObject": {"greeting": "from argo"}, "parameters": [{"name": "replicas", "value": "2"}]}
    world.api_ok("POST", "/api/v1/applications", application(
        "ociweb", {"repoURL": f"{registry.host}/charts", "chart": "web", "targetRevision": "^1.0", "helm": helm},
        server, "ociweb"))
    # ^1.0 over the tags: 1.1.0 (2.0.0-rc.1 is a pre-release of another major); the digest is the revision
    world.until("1.1.0 Synced and Healthy", synced_healthy(world, "ociweb", revision=digest))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "web.tgz").write_bytes(archives["1.1.0"])
        (Path(tmp) / "values.yaml").write_text("greeting: from argo\n")
        expected = helm_template(Path(tmp) / "web.tgz", "ociweb", "ociweb", "--values", f"{tmp}/values.yaml",
                                 "--set", "replicas=2")
    assert by_identity(manifests_of(world, "ociweb")) == by_identity(expected)
    assert world.deployment("ociweb", "ociweb-web").spec.replicas == 2

    helm_push(registry, package_chart("web", "1.2.0", CHART), "charts")  # a new tag: the next tick syncs it
    new_digest = registry.digest("charts/web", "1.2.0")
    world.until("1.2.0 Synced and Healthy", synced_healthy(world, "ociweb", revision=new_digest))
    assert world.deployment("ociweb", "ociweb-web").metadata.labels["chart"] == "web-1.2.0"
    history = world.api_ok("GET", "/api/v1/applications/ociweb/history")["items"]
    assert {digest, new_digest} <= {h["revision"] for h in history}
    # a person's sync names a tag (or a constraint, or a digest): it is pinned to the digest
    status, answer = world.call("POST", "/api/v1/applications/ociweb/sync", {"revision": "1.0.0"})
    assert status == 202 and answer["revision"] == registry.digest("charts/web", "1.0.0"), answer
    status, answer = world.call("POST", "/api/v1/applications/ociweb/sync", {"revision": "9.9.9"})
    assert status == 422 and "1.2.0" in answer["message"], answer
    world.settle()


def test_one_tag_list_per_repository_per_tick(world: LocalWorld, registry: OciRegistry) -> None:
    server = world.register_cluster("local")
    register(world, registry.host)
    helm_push(registry, package_chart("api", "0.1.0", CHART), "charts")
    for name in ("oci-a", "oci-b"):
        world.api_ok("POST", "/api/v1/applications", application(
            name, {"repoURL": f"oci://{registry.host}/charts", "chart": "api", "targetRevision": "0.1.0"},
            server, name))
    digest = registry.digest("charts/api", "0.1.0")
    world.until("both synced", lambda: all(synced_healthy(world, n, digest)() for n in ("oci-a", "oci-b")))
    before = len(registry.requests())
    world.stack.tick("PollFunction")
    polled = [r for r in registry.requests()[before:] if "/charts/api/" in r]
    assert [r for r in polled if "/tags/list" in r] == ["GET /v2/charts/api/tags/list?n=1000"]
    assert [r for r in polled if "/manifests/" in r] == ["HEAD /v2/charts/api/manifests/0.1.0"]
    world.settle()


@pytest.mark.parametrize("flavour", ["oras", "flux", "argocd"])
def test_manifests_artifact_renders_path_inside_it(world: LocalWorld, registry: OciRegistry, flavour: str) -> None:
    server = world.register_cluster("local")
    register(world, registry.host)
    name = f"art-{flavour}"
    files = {
        "deploy/app.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                           "metadata": {"name": "settings"}, "data": {"v": "1"}}),
        "deploy/more/svc.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                                                "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}}),
        "other/ignored.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "no"}}),
    }
    digest = registry.push_artifact(f"manifests/{flavour}", "v1.0.0", files, flavour=flavour)
    world.api_ok("POST", "/api/v1/applications", application(name, {
        "repoURL": f"oci://{registry.host}/manifests/{flavour}", "targetRevision": "v1.*", "path": "deploy",
        "directory": {"recurse": True}}, server, name))
    world.until(f"{name} Synced and Healthy", synced_healthy(world, name, revision=digest))
    assert sorted(o["metadata"]["name"] for o in manifests_of(world, name)) == ["settings", "web"]
    assert world.service_exists(name, "web")

    files["deploy/app.yaml"] = files["deploy/app.yaml"].replace("v: '1'", "v: '2'")
    digest2 = registry.push_artifact(f"manifests/{flavour}", "v1.1.0", files, flavour=flavour)
    world.until("v1.1.0 synced", synced_healthy(world, name, revision=digest2))
    from kubernetes import client

    cm = client.CoreV1Api(world.k8s).read_namespaced_config_map("settings", name)
    assert cm.data == {"v": "2"}


def test_chart_artifact_behind_oci_url_is_rendered_with_helm(world: LocalWorld, registry: OciRegistry) -> None:
    """Argo CD 3.1's form for a chart: ``repoURL: oci://.../chart`` with ``path: .``."""
    server = world.register_cluster("local")
    register(world, registry.host)
    archive = package_chart("plain", "3.0.0", CHART)
    helm_push(registry, archive, "charts")
    world.api_ok("POST", "/api/v1/applications", application("ociplain", {
        "repoURL": f"oci://{registry.host}/charts/plain", "targetRevision": "3.0.0", "path": "."},
        server, "ociplain"))
    world.until("Synced", synced_healthy(world, "ociplain", revision=registry.digest("charts/plain", "3.0.0")))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "c.tgz").write_bytes(archive)
        assert by_identity(manifests_of(world, "ociplain")) == by_identity(
            helm_template(Path(tmp) / "c.tgz", "ociplain", "ociplain"))


def test_unknown_tag_names_the_tags(world: LocalWorld, registry: OciRegistry) -> None:
    server = world.register_cluster("local")
    register(world, registry.host)
    helm_push(registry, package_chart("tags", "0.3.0", CHART), "charts")
    world.api_ok("POST", "/api/v1/applications", application("ocimissing", {
        "repoURL": f"{registry.host}/charts", "chart": "tags", "targetRevision": ">=5.0.0"}, server, "ocimissing"))
    world.tick()
    conditions = world.status("ocimissing").get("conditions") or []
    assert [c["type"] for c in conditions] == ["ComparisonError"], conditions
    assert "'>=5.0.0'" in conditions[0]["message"] and "0.3.0" in conditions[0]["message"]
    assert world.object_count("ocimissing") == 0


def test_basic_auth_missing_wrong_and_right_credentials(world: LocalWorld, private: OciRegistry) -> None:
    server = world.register_cluster("local")
    helm_push(private, package_chart("secret-web", "1.0.0", CHART), "team")
    helm_push(private, package_chart("secret-web", "1.0.0", CHART), "other")
    source = {"repoURL": f"oci://{private.host}/team", "chart": "secret-web", "targetRevision": "1.0.0"}

    # Registration logs in as `helm registry login` does: no credentials, or wrong ones, are a 422
    # naming the registry, and nothing is stored.
    for creds, said in (({}, "requires authentication"), ({"username": "deployer", "password": "wrong-password"},
                                                          "refused the given credentials")):
        code, body = world.call("POST", "/api/v1/repositories", {"url": f"oci://{private.host}/other", "type": "oci",
                                                                "plainHttp": True, **creds})
        assert code == 422 and said in body["message"] and private.host in body["message"], body
        assert "wrong-password" not in json.dumps(body)
    assert all(r["url"] != f"oci://{private.host}/other" for r in world.api_ok("GET", "/api/v1/repositories")["items"])

    # Credentials that go stale after registration (rotated at the registry, or overwritten in
    # Secrets Manager): the pull names the registration whose credentials were refused.
    world.api_ok("POST", "/api/v1/repositories", {"url": f"oci://{private.host}/other", "type": "oci",
                                                  "plainHttp": True, "username": "deployer", "password": "s3cret-pw"})
    from gitferry.secrets import SecretStore

    world.put_secret(SecretStore().repo_secret_name(f"oci://{private.host}/other"),
                     json.dumps({"username": "deployer", "password": "wrong-password"}))
    world.api_ok("POST", "/api/v1/applications", application(
        "ociwrong", {**source, "repoURL": f"{private.host}/other"}, server, "ociwrong"))
    world.tick()
    status = world.status("ociwrong")
    message = (status.get("conditions") or [{}])[0].get("message", "")
    assert "refused the stored credentials" in message and f"oci://{private.host}/other" in message, message
    assert "wrong-password" not in json.dumps(status)
    assert world.object_count("ociwrong") == 0

    world.api_ok("POST", "/api/v1/repositories", {"url": f"oci://{private.host}/team", "type": "oci",
                                                  "plainHttp": True, "username": "deployer",
                                                  "password": "s3cret-pw"})
    world.api_ok("POST", "/api/v1/applications", application("ociauth", source, server, "ociauth"))
    world.until("Synced with the right credentials",
                synced_healthy(world, "ociauth", revision=private.digest("team/secret-web", "1.0.0")))
    listed = world.api_ok("GET", "/api/v1/repositories")
    assert "s3cret-pw" not in json.dumps(listed) and "wrong-password" not in json.dumps(listed)
    entry = next(r for r in listed["items"] if r["url"] == f"oci://{private.host}/team")
    assert entry["type"] == "oci" and entry["plainHttp"] is True and entry["hasCredentials"] is True


def test_ecr_credentials_from_the_function_role(world: LocalWorld, ecr_like: OciRegistry) -> None:
    """``ecrRegistryId``: the poll and render functions call ecr:GetAuthorizationToken (moto) and
    send its AWS:<token> to the registry, which accepts only that."""
    server = world.register_cluster("local")
    helm_push(ecr_like, package_chart("ecr-web", "1.0.0", CHART), "prod")
    register(world, ecr_like.host, ecrRegistryId=ECR_ACCOUNT)
    world.api_ok("POST", "/api/v1/applications", application("ociecr", {
        "repoURL": f"{ecr_like.host}/prod", "chart": "ecr-web", "targetRevision": "1.x"}, server, "ociecr"))
    world.until("Synced through the ECR token",
                synced_healthy(world, "ociecr", revision=ecr_like.digest("prod/ecr-web", "1.0.0")))
    # what the template grants for it: the token (Resource "*", the only form AWS supports) and
    # pulls scoped to the account's repositories
    from local import iam

    res = world.stack.resources
    policy = {f: iam.statements_of(spec.role_policies, f) for f, spec in res.functions.items()}
    repo_arn = f"arn:aws:ecr:{res.region}:{res.account_id}:repository/prod/ecr-web"
    for function in ("PollFunction", "RenderFunction", "ApiFunction"):
        assert iam.allowed(policy[function], "ecr:GetAuthorizationToken", "*"), function
        assert iam.allowed(policy[function], "ecr:BatchGetImage", repo_arn), function
    assert not iam.allowed(policy["DiffFunction"], "ecr:GetAuthorizationToken", "*")


def test_registry_behind_a_token_service(world: LocalWorld, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Docker Hub / GHCR / Harbor style: the registry's Bearer challenge sends gitferry to the
    token service with the registered login."""
    server = world.register_cluster("local")
    with OciRegistry(tmp_path_factory.mktemp("oci-bearer"), auth=("robot", "tok3n-pw"), bearer=True) as reg:
        digest = reg.push_artifact("apps/site", "2.0.0", {"cm.yaml": yaml.safe_dump(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "site"}, "data": {"a": "b"}})})
        register(world, reg.host, username="robot", password="tok3n-pw")
        world.api_ok("POST", "/api/v1/applications", application("ocibearer", {
            "repoURL": f"oci://{reg.host}/apps/site", "targetRevision": "2.0.0"}, server, "ocibearer"))
        world.until("Synced through a Bearer token", synced_healthy(world, "ocibearer", revision=digest))
        assert reg.token_server is not None and any(auth for _path, auth in reg.token_server.requests)
        world.api_ok("DELETE", "/api/v1/applications/ocibearer?cascade=false")


@pytest.mark.parametrize(("body", "problem"), [
    ({"url": "oci://127.0.0.1:5000", "type": "oci", "plainHttp": "yes"}, "plainHttp"),
    ({"url": "https://charts.example.com", "plainHttp": True}, "plainHttp"),
    ({"url": "oci://r.example.com", "type": "oci", "ecrRegistryId": "12"}, "ecrRegistryId"),
    ({"url": "oci://r.example.com", "type": "oci", "ecrRegistryId": ECR_ACCOUNT, "password": "x"}, "ecrRegistryId"),
    ({"url": "oci://UPPER.example.com/Bad Name", "type": "oci"}, "url"),
    ({"url": "oci://r.example.com", "type": "svn"}, "type"),
])
def test_registration_refuses_bad_registry_fields(world: LocalWorld, body: dict[str, Any], problem: str) -> None:
    status, answer = world.call("POST", "/api/v1/repositories", body)
    assert status == 400, answer
    assert problem in json.dumps(answer)


def test_application_forms_refused_at_registration(world: LocalWorld) -> None:
    server = world.register_cluster("local")
    for source, needle in [
        ({"repoURL": "registry.example.com/charts", "path": "x", "targetRevision": "1.0.0"}, "only with chart"),
        ({"repoURL": "oci://registry.example.com/m"}, "targetRevision is required"),
    ]:
        status, answer = world.call("POST", "/api/v1/applications", application("bad-oci", source, server, "x"))
        assert status == 400 and needle in json.dumps(answer), answer


def test_a_sync_while_the_registry_is_down_is_a_502_naming_it(world: LocalWorld,
                                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    """A registry that cannot be read is not the request's fault (422 is for a tag it does not
    have): the sync answers 502, as for a Git server or a Helm repository that is down."""
    server = world.register_cluster("local")
    with OciRegistry(tmp_path_factory.mktemp("oci-down")) as down:
        register(world, down.host)
        helm_push(down, package_chart("web", "1.0.0", CHART), "charts")
        world.api_ok("POST", "/api/v1/applications", application(
            "ocidown", {"repoURL": f"oci://{down.host}/charts", "chart": "web", "targetRevision": "1.0.0"},
            server, "ocidown"))
        world.until("Synced", synced_healthy(world, "ocidown", revision=down.digest("charts/web", "1.0.0")))
        host = down.host
    for body in ({}, {"revision": "1.0.0"}):
        status, answer = world.call("POST", "/api/v1/applications/ocidown/sync", body)
        assert status == 502 and host in answer["message"], (body, status, answer)
    world.call("DELETE", "/api/v1/applications/ocidown?cascade=false")
