"""What the handlers really do stays inside what template.yaml grants them.

moto does not enforce IAM, so a missing permission would only show in AWS. The local stack
enforces the functions' role policies on every call (``local.iam``) in every test; this one plays
the guestbook story, a paused wave, a retried sync, sealed Secrets and an EKS cluster, and checks
that each kind of permission was really exercised and none was denied.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from local import eks as local_eks
from local import iam
from local.story import DEPLOYMENT, LocalWorld, application, play_guestbook, synced_healthy

EKS_CLUSTER = "priv-eks"
EKS_ROLE = "arn:aws:iam::123456789012:role/gitferry-deployer"


@pytest.fixture(scope="module")
def recorded() -> Iterator[LocalWorld]:
    with LocalWorld(parameters={"EksClusterArns": f"arn:aws:eks:us-east-1:123456789012:cluster/{EKS_CLUSTER}",
                                "EksAssumeRoleArns": EKS_ROLE}) as world:
        yield world


def test_every_call_the_handlers_make_is_granted_by_the_template(recorded: LocalWorld) -> None:
    world = recorded
    denied_before = len(iam.REGISTRY.denied)
    queue = world.subscribe_notifications()
    play_guestbook(world)
    server = world.kube.url
    # A wave that outlasts the wait inside apply (FollowUpQueue -> followup -> ApplyQueue) and a
    # retried failing sync (its backoff through the same queues).
    repo = world.git.make_repo("priv", {"app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
                                        "app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n"
                                                       "  annotations:\n    argocd.argoproj.io/sync-wave: '1'\n",
                                        # sealed in S3: render generates a data key, diff/apply decrypt it
                                        "app/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n"
                                                           "stringData:\n  password: planted\n"})
    world.kube.pause_controllers()
    world.api_ok("POST", "/api/v1/applications", application("priv", repo, server, automated=True,
                                                              path="app", namespace="priv"))
    world.tick()
    world.kube.resume_controllers()
    world.until("wave app synced", synced_healthy(world, "priv"))
    assert world.api_ok("GET", "/api/v1/applications/priv/diff")["differences"] is False  # the API unseals too
    bad = world.git.make_repo("privbad", {"app/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n"})
    manifest = yaml.safe_load(application("privbad", bad, server, automated=True, path="app", namespace="privbad"))
    manifest["spec"]["syncPolicy"]["retry"] = {"limit": 1, "backoff": {"duration": "1s", "maxDuration": "1s"}}
    world.api_ok("POST", "/api/v1/applications", yaml.safe_dump(manifest))
    world.until("retry exhausted", lambda: (world.status("privbad").get("operationState") or {}).get("phase") == "Failed")
    world.api_ok("DELETE", "/api/v1/applications/privbad")
    assert world.notifications(queue)
    # An EKS cluster: DescribeCluster by api/diff/apply, AssumeRole for a cluster with eks.roleArn.
    roles = [{"rolearn": r, "username": "gitferry", "groups": ["system:masters"]}
             for r in [*local_eks.function_role_arns(world.stack.resources), EKS_ROLE]]
    local_eks.create_cluster(world.stack.resources, world.kube, EKS_CLUSTER, map_roles=roles)
    # Registered with a role: the api assumes it (then DescribeCluster is the role's, not ours).
    world.api_ok("POST", "/api/v1/clusters", {"name": "priv-eks-as", "eks": {"cluster": EKS_CLUSTER, "roleArn": EKS_ROLE}})
    # Registered by name: api, diff and apply call DescribeCluster with their own roles.
    world.api_ok("POST", "/api/v1/clusters", {"name": "priv-eks", "eks": {"cluster": EKS_CLUSTER}})
    eks_app = yaml.safe_load(application("priveks", repo, server, automated=True, path="app", namespace="priveks"))
    eks_app["spec"]["destination"] = {"name": "priv-eks", "namespace": "priveks"}
    world.api_ok("POST", "/api/v1/applications", yaml.safe_dump(eks_app))
    world.until("eks app synced", synced_healthy(world, "priveks"))

    # Every call was checked as it was made (local.iam: a denied one fails the handler as in AWS);
    # here: that the story really exercised each kind of permission, and nothing was denied.
    keys = {world.stack.role_credentials(spec)["AWS_ACCESS_KEY_ID"] for spec in world.stack.resources.functions.values()}
    used = {(lid, action.split(":")[0]) for key in keys for lid, action, _ in iam.REGISTRY.calls.get(key, ())}
    assert ("PollFunction", "sqs") in used and ("ReportFunction", "sns") in used and ("DiffFunction", "s3") in used
    assert {("RenderFunction", "kms"), ("DiffFunction", "kms"), ("ApplyFunction", "kms"), ("ApiFunction", "kms")} <= used
    assert {("ApiFunction", "sts"), ("ApiFunction", "eks"), ("DiffFunction", "eks"), ("ApplyFunction", "eks")} <= used
    assert iam.REGISTRY.denied[denied_before:] == []
