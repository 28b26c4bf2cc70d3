"""EKS clusters on the local stack, through the handlers: registered by name / ARN with no
stored credential, reached with STS-presigned tokens that kubesim verifies through moto's STS
(local/motosts.py) the way aws-iam-authenticator does; the in-cluster mark."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import yaml
from kubernetes import client as k8s

from local import eks as local_eks
from local.story import LocalWorld, application

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  colour: {colour}\n"


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    # What a deployer grants (template parameters): DescribeCluster on this account's clusters,
    # AssumeRole on the roles the tests register with (eks.roleArn).
    own = "arn:aws:iam::123456789012:role"
    with LocalWorld(drift_check_seconds=2, parameters={
            "EksClusterArns": "arn:aws:eks:us-east-1:123456789012:cluster/*",
            "EksAssumeRoleArns": f"{own}/stranger,{own}/gitferry-deployer,arn:aws:iam::111122223333:role/gitferry-deployer",
    }) as w:
        w.cluster_arn = local_eks.create_cluster(w.stack.resources, w.kube, "prod")  # type: ignore[attr-defined]
        w.repo = w.git.make_repo("eks-config", {"cm/settings.yaml": CONFIGMAP.format(colour="blue")})  # type: ignore[attr-defined]
        yield w


def _app(name: str, repo: str, *, server: str | None = None, cluster: str | None = None,
         namespace: str = "eks") -> str:
    doc = yaml.safe_load(application(name, repo, server or "https://placeholder", automated=True, path="cm",
                                     namespace=namespace))
    doc["spec"]["destination"] = {"namespace": namespace, **({"server": server} if server else {"name": cluster})}
    return yaml.safe_dump(doc)


def _synced(world: LocalWorld, app: str) -> bool:
    st = world.status(app)
    return (st.get("sync") or {}).get("status") == "Synced"


def _secrets(world: LocalWorld) -> dict[str, str]:
    sm = world.stack.resources.client("secretsmanager")
    names = [s["Name"] for page in sm.get_paginator("list_secrets").paginate() for s in page["SecretList"]]
    return {n: sm.get_secret_value(SecretId=n).get("SecretString", "") for n in names}


def _token(world: LocalWorld, cluster: str, *, role: str | None = None) -> str:
    """A token made the way gitferry makes it, with the API function's own credentials."""
    from gitferry import eks

    spec = world.stack.resources.function_named("ApiFunction")
    with world.stack._environ(spec):
        return eks.EksAccess(eks.EksTarget(cluster, world.stack.resources.region, role)).token()


def _kube_as(world: LocalWorld, token: str) -> k8s.CoreV1Api:
    conf = k8s.Configuration()
    conf.host = world.kube.url
    conf.ssl_ca_cert = world.kube.kubeconfig_path + ".ca"
    with open(conf.ssl_ca_cert, "wb") as f:
        f.write(world.kube.certs.ca_pem)
    conf.api_key = {"BearerToken": f"Bearer {token}"}
    return k8s.CoreV1Api(k8s.ApiClient(conf))


def _status(call: Any) -> int:
    try:
        call()
    except k8s.ApiException as exc:
        return int(exc.status)
    return 200


def test_eks_cluster_by_name_is_synced_with_no_stored_credential(world: LocalWorld) -> None:
    before = _secrets(world)
    created = world.api_ok("POST", "/api/v1/clusters", {"name": "prod", "eks": {"cluster": "prod"}})
    assert created["server"] == world.kube.url
    assert created["eks"] == {"cluster": "prod", "region": world.stack.resources.region,
                              "arn": world.cluster_arn}  # type: ignore[attr-defined]
    assert created["serverVersion"].startswith("v1.")

    world.api_ok("POST", "/api/v1/applications", _app("eks-app", world.repo, cluster="prod"))  # type: ignore[attr-defined]
    world.until("eks-app synced", lambda: _synced(world, "eks-app"))
    cm = k8s.CoreV1Api(world.k8s).read_namespaced_config_map("settings", "eks")
    assert cm.data == {"colour": "blue"}

    # No static credential anywhere: no secret was added for the cluster, none holds a token.
    after = _secrets(world)
    assert set(after) == set(before), set(after) - set(before)
    assert not any("k8s-aws-v1." in v for v in after.values())
    # kubesim saw the diff and apply functions' own roles (canonicalised from assumed-role ARNs).
    roles = set(local_eks.function_role_arns(world.stack.resources))
    assert roles <= world.kube.eks_auth.seen, (roles, world.kube.eks_auth.seen)  # type: ignore[union-attr]

    got = world.api_ok("GET", "/api/v1/clusters/prod")
    assert got["auth"] == "eks" and got["applications"] == ["eks-app"]
    assert got["info"]["connectionState"]["status"] == "Successful"
    assert got["info"]["serverVersion"] == created["serverVersion"]
    assert "k8s-aws-v1." not in str(got)


def test_register_by_arn_and_region_mismatch(world: LocalWorld) -> None:
    arn = world.cluster_arn  # type: ignore[attr-defined]
    created = world.api_ok("POST", "/api/v1/clusters", {"name": "prod-by-arn", "eks": {"cluster": arn}})
    assert created["eks"]["cluster"] == "prod" and created["server"] == world.kube.url
    status, answer = world.call("POST", "/api/v1/clusters",
                                {"name": "bad", "eks": {"cluster": arn, "region": "eu-west-1"}})
    assert status == 400 and "eks.region" in answer["problems"][0]
    status, answer = world.call("POST", "/api/v1/clusters", {"name": "nope", "eks": {"cluster": "missing"}})
    assert status == 400 and "ResourceNotFoundException" in answer["problems"][0], answer
    status, answer = world.call("POST", "/api/v1/clusters",
                                {"name": "both", "eks": {"cluster": "prod"}, "server": "https://x"})
    assert status == 400 and "not supported by gitferry" in answer["problems"][0]
    world.api_ok("DELETE", "/api/v1/clusters/prod-by-arn")


def test_expired_foreign_and_unmapped_tokens_are_refused(world: LocalWorld) -> None:
    auth = world.kube.eks_auth
    assert auth is not None
    good = _token(world, "prod")
    assert _status(lambda: _kube_as(world, good).list_namespace()) == 200

    # Made for another cluster: STS's signature check fails when kubesim sends x-k8s-aws-id: prod.
    foreign = _token(world, "staging")
    assert _status(lambda: _kube_as(world, foreign).list_namespace()) == 401
    assert "SignatureDoesNotMatch" in auth.log[-1]

    # Expired: X-Amz-Date 16 minutes ago is refused before STS is even asked.
    url = base64.urlsafe_b64decode(good[len("k8s-aws-v1."):] + "==").decode()
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["X-Amz-Date"] = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 16 * 60))
    stale = parts._replace(query=urlencode(query)).geturl()
    expired = "k8s-aws-v1." + base64.urlsafe_b64encode(stale.encode()).decode().rstrip("=")
    assert _status(lambda: _kube_as(world, expired).list_namespace()) == 401
    assert "X-Amz-Date parameter is expired" in auth.log[-1]

    # The apiserver's wording, whatever the reason.
    try:
        _kube_as(world, expired).list_namespace()
    except k8s.ApiException as exc:
        assert exc.reason == "Unauthorized" and '"message":"Unauthorized"' in exc.body.replace(" ", "")

    # A role nobody mapped: the token is genuine, STS says who it is, the mapping refuses.
    unmapped = _token(world, "prod", role=f"arn:aws:iam::{world.stack.resources.account_id}:role/stranger")
    assert _status(lambda: _kube_as(world, unmapped).list_namespace()) == 401
    assert auth.log[-1] == f"ARN is not mapped: arn:aws:iam::{world.stack.resources.account_id}:role/stranger"
    status, answer = world.call("POST", "/api/v1/clusters", {"name": "stranger", "eks": {
        "cluster": "prod", "roleArn": f"arn:aws:iam::{world.stack.resources.account_id}:role/stranger"}})
    assert status == 400 and "Unauthorized" in answer["problems"][0] and "aws-auth" in answer["problems"][0]


def test_assumed_role_path_against_moto_sts(world: LocalWorld) -> None:
    account = world.stack.resources.account_id
    deployer = f"arn:aws:iam::{account}:role/gitferry-deployer"
    world.kube.eks_auth.config.map_roles.append(  # type: ignore[union-attr]
        {"rolearn": deployer, "username": "deployer:{{SessionName}}", "groups": ["system:masters"]})
    created = world.api_ok("POST", "/api/v1/clusters",
                           {"name": "prod-deployer", "eks": {"cluster": "prod", "roleArn": deployer}})
    assert created["eks"]["roleArn"] == deployer
    world.api_ok("POST", "/api/v1/applications", _app("deployer-app", world.repo, cluster="prod-deployer",  # type: ignore[attr-defined]
                                                      namespace="eks-deployer"))
    world.until("deployer-app synced", lambda: _synced(world, "deployer-app"))
    assert deployer in world.kube.eks_auth.seen  # type: ignore[union-attr]
    # PATCH drops the role: the functions' own roles again.
    patched = world.api_ok("PATCH", "/api/v1/clusters/prod-deployer", {"eks": {"roleArn": None}})
    assert "roleArn" not in patched["eks"]


def test_in_cluster_destination_targets_the_marked_cluster(world: LocalWorld) -> None:
    repo = world.repo  # type: ignore[attr-defined]
    status, answer = world.call("POST", "/api/v1/applications",
                                _app("incluster-app", repo, server="https://kubernetes.default.svc", namespace="ic"))
    assert status == 400 and "marked as in-cluster" in str(answer), answer
    status, answer = world.call("POST", "/api/v1/applications",
                                _app("incluster-app", repo, cluster="in-cluster", namespace="ic"))
    assert status == 400 and "marked as in-cluster" in str(answer), answer

    marked = world.api_ok("PATCH", "/api/v1/clusters/prod", {"inCluster": True})
    assert marked["inCluster"] is True
    world.api_ok("POST", "/api/v1/applications",
                 _app("incluster-app", repo, server="https://kubernetes.default.svc", namespace="ic"))
    world.until("incluster-app synced", lambda: _synced(world, "incluster-app"))
    assert k8s.CoreV1Api(world.k8s).read_namespaced_config_map("settings", "ic").data == {"colour": "blue"}
    assert "incluster-app" in world.api_ok("GET", "/api/v1/clusters/prod")["applications"]
    # Moving or dropping the mark would retarget the app: refused; deleting the cluster too.
    for name, patch in (("prod-deployer", {"inCluster": True}), ("prod", {"inCluster": False})):
        status, answer = world.call("PATCH", f"/api/v1/clusters/{name}", patch)
        assert status == 409 and "incluster-app" in answer["message"], answer
    assert world.call("DELETE", "/api/v1/clusters/prod")[0] == 409
    world.api_ok("DELETE", "/api/v1/applications/incluster-app?cascade=false")
    world.until("incluster-app gone", lambda: world.call("GET", "/api/v1/applications/incluster-app")[0] == 404)
    # Now the mark moves (at most one cluster carries it).
    world.api_ok("PATCH", "/api/v1/clusters/prod-deployer", {"inCluster": True})
    assert world.api_ok("GET", "/api/v1/clusters/prod")["inCluster"] is False
    world.api_ok("PATCH", "/api/v1/clusters/prod", {"inCluster": True})


def test_kubeconfig_cluster_with_a_selected_context(world: LocalWorld) -> None:
    doc = yaml.safe_load(world.kube.kubeconfig())
    doc["contexts"].append({"name": "other", "context": {"cluster": "kubesim", "user": "kubesim"}})
    doc["current-context"] = "missing-but-unused"
    status, answer = world.call("POST", "/api/v1/clusters", {"name": "ctx", "kubeconfig": doc, "context": "nope"})
    assert status == 400 and answer["problems"] == ["context: no context 'nope' in the kubeconfig (it has: kubesim, other)"]
    created = world.api_ok("POST", "/api/v1/clusters", {"name": "ctx", "kubeconfig": doc, "context": "other"})
    assert created["context"] == "other" and created["server"] == world.kube.url
    patched = world.api_ok("PATCH", "/api/v1/clusters/ctx", {"context": "kubesim", "namespace": "team"})
    assert patched["context"] == "kubesim" and patched["namespace"] == "team"
    replaced = world.api_ok("PUT", "/api/v1/clusters/ctx", {"kubeconfig": world.kube.kubeconfig()})
    assert "context" not in replaced and replaced["namespace"] == "default"
    status, _ = world.call("PATCH", "/api/v1/clusters/absent", {"namespace": "x"})
    assert status == 404
    assert "kubeconfig" not in world.api_ok("GET", "/api/v1/clusters/ctx")


def test_a_cluster_of_another_account_through_its_role(world: LocalWorld, tmp_path: Any) -> None:
    """moto keeps accounts apart: the cluster lives in 111122223333, only its deployer role
    (assumed by the functions) can describe it and is mapped in it."""
    from kubernetes import config as k8s_config

    from local.kubesim.server import KubeSim

    remote_account = "111122223333"
    deployer = f"arn:aws:iam::{remote_account}:role/gitferry-deployer"
    with KubeSim(kubeconfig_path=str(tmp_path / "remote-kubeconfig")) as remote:
        arn = local_eks.create_cluster(world.stack.resources, remote, "remote", account=remote_account, map_roles=[
            {"rolearn": deployer, "username": "gitferry", "groups": ["system:masters"]}])
        assert arn == f"arn:aws:eks:{world.stack.resources.region}:{remote_account}:cluster/remote"
        # Without the role the functions' own account has no such cluster.
        status, answer = world.call("POST", "/api/v1/clusters", {"name": "remote", "eks": {"cluster": arn}})
        assert status == 400 and "ResourceNotFoundException" in answer["problems"][0], answer
        created = world.api_ok("POST", "/api/v1/clusters", {"name": "remote", "eks": {"cluster": arn, "roleArn": deployer}})
        assert created["server"] == remote.url and created["eks"]["arn"] == arn
        world.api_ok("POST", "/api/v1/applications", _app("remote-app", world.repo, cluster="remote",  # type: ignore[attr-defined]
                                                          namespace="remote"))
        world.until("remote-app synced", lambda: _synced(world, "remote-app"))
        api = k8s_config.new_client_from_config(remote.kubeconfig_path)
        assert k8s.CoreV1Api(api).read_namespaced_config_map("settings", "remote").data == {"colour": "blue"}
        assert remote.eks_auth is not None and remote.eks_auth.seen == {deployer}
        world.api_ok("DELETE", "/api/v1/applications/remote-app?cascade=false")
        world.until("remote-app gone", lambda: world.call("GET", "/api/v1/applications/remote-app")[0] == 404)
        world.api_ok("DELETE", "/api/v1/clusters/remote")
