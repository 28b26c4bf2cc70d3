"""What the handlers really do stays inside what template.yaml grants them.

moto does not enforce IAM, so a missing permission would only show in AWS. Here every SQS,
S3, SNS, KMS and Secrets Manager call the handlers make during the guestbook story (plus a
paused wave and a retried sync) is recorded through botocore's event hooks and checked
against the function's role policies, resolved from the SAM-translated template.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml

from local import eks as local_eks
from local.aws import Resolver, Resources
from local.story import DEPLOYMENT, LocalWorld, application, play_guestbook, synced_healthy

Call = tuple[str, str, str]  # function logical id, action, resource ARN
EKS_CLUSTER = "priv-eks"
EKS_ROLE = "arn:aws:iam::123456789012:role/gitferry-deployer"


def _resolver(res: Resources) -> Resolver:
    pseudo = {"AWS::Region": res.region, "AWS::AccountId": res.account_id, "AWS::StackName": res.stack_name,
              "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
              "AWS::StackId": f"arn:aws:cloudformation:{res.region}:{res.account_id}:stack/{res.stack_name}/local"}
    resolver = Resolver(res.cfn, res.parameters, pseudo)
    resolver.refs.update(res.physical)
    resolver.attrs.update(res.attributes)
    return resolver


def grants(res: Resources) -> dict[str, list[tuple[list[str], list[str]]]]:
    """function logical id -> [(actions, resources)] of its execution role's Allow statements."""
    resolver = _resolver(res)
    out: dict[str, list[tuple[list[str], list[str]]]] = {}
    for lid in res.functions:
        role_ref = res.cfn["Resources"][lid]["Properties"]["Role"]
        role_lid = role_ref["Fn::GetAtt"][0] if isinstance(role_ref, dict) else role_ref
        statements = []
        for policy in res.cfn["Resources"][role_lid]["Properties"].get("Policies", []):
            if "Fn::If" in policy:  # conditional (EKS parameters): the branch the stack got
                condition, then, otherwise = policy["Fn::If"]
                policy = then if resolver.condition(condition) else otherwise
                if not isinstance(policy, dict) or "PolicyDocument" not in policy:
                    continue
            for st in policy["PolicyDocument"]["Statement"]:
                if st.get("Effect") != "Allow":
                    continue
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                statements.append(([a.lower() for a in actions], [str(x) for r in resources for x in _listed(resolver.resolve(r))]))
        out[lid] = statements
    return out


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]  # a Ref to a CommaDelimitedList is a list


def allowed(statements: list[tuple[list[str], list[str]]], action: str, arn: str) -> bool:
    return any(any(fnmatch.fnmatchcase(action.lower(), a) for a in actions)
               and any(fnmatch.fnmatchcase(arn, r) for r in resources) for actions, resources in statements)


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[LocalWorld, list[Call]]]:
    calls: list[Call] = []
    session = boto3._get_default_session()  # the session the engine's boto3.client(...) calls use
    holder: dict[str, Any] = {}

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        world = holder.get("world")
        if not function or world is None:
            return  # the test's own calls, or the runner's between invocations
        res = world.stack.resources
        lid = next(fid for fid, f in res.functions.items() if f.name == function)
        service = model.service_model.service_name
        name = model.name
        if service == "sqs" and name.startswith("SendMessage"):
            queue = next(q for q in res.queues.values() if q.url == params["QueueUrl"])
            calls.append((lid, f"sqs:{name}", queue.arn))
        elif service == "s3" and name in ("PutObject", "DeleteObject", "GetObject"):
            calls.append((lid, f"s3:{name}", f"arn:aws:s3:::{params['Bucket']}/{params['Key']}"))
        elif service == "s3" and name == "CopyObject":  # a manifest's lifecycle age reset: read + write
            calls.append((lid, "s3:GetObject", f"arn:aws:s3:::{params['CopySource']['Bucket']}/{params['CopySource']['Key']}"))
            calls.append((lid, "s3:PutObject", f"arn:aws:s3:::{params['Bucket']}/{params['Key']}"))
        elif service == "kms":  # Decrypt names no key: the ciphertext says which, and gitferry has one
            key = params.get("KeyId") or res.physical["ManifestKey"]
            calls.append((lid, f"kms:{name}", f"arn:aws:kms:{res.region}:{res.account_id}:key/{key}"))
        elif service == "ecr" and name == "GetAuthorizationToken":  # supports only Resource "*"
            calls.append((lid, "ecr:GetAuthorizationToken", "*"))
        elif service == "sns" and name == "Publish":
            calls.append((lid, "sns:Publish", params["TopicArn"]))
        elif service == "eks" and name == "DescribeCluster":
            calls.append((lid, "eks:DescribeCluster", f"arn:aws:eks:{res.region}:{res.account_id}:cluster/{params['name']}"))
        elif service == "sts" and name == "AssumeRole":
            calls.append((lid, "sts:AssumeRole", params["RoleArn"]))
        elif service == "secretsmanager":
            secret = params.get("SecretId") or params.get("Name")
            calls.append((lid, f"secretsmanager:{name}",
                          f"arn:aws:secretsmanager:{res.region}:{res.account_id}:secret:{secret}-AbCdEf"))

    session.events.register("before-parameter-build", record, unique_id="gitferry-least-privilege")
    try:
        with LocalWorld(parameters={"EksClusterArns": f"arn:aws:eks:us-east-1:123456789012:cluster/{EKS_CLUSTER}",
                                    "EksAssumeRoleArns": EKS_ROLE}) as world:
            holder["world"] = world
            yield world, calls
    finally:
        session.events.unregister("before-parameter-build", unique_id="gitferry-least-privilege")


def test_every_call_the_handlers_make_is_granted_by_the_template(recorded: tuple[LocalWorld, list[Call]]) -> None:
    world, calls = recorded
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
    # An EKS cluster reached through an assumed role: DescribeCluster + AssumeRole by api/diff/apply.
    roles = [{"rolearn": r, "username": "gitferry", "groups": ["system:masters"]}
             for r in [*local_eks.function_role_arns(world.stack.resources), EKS_ROLE]]
    local_eks.create_cluster(world.stack.resources, world.kube, EKS_CLUSTER, map_roles=roles)
    world.api_ok("POST", "/api/v1/clusters", {"name": "priv-eks", "eks": {"cluster": EKS_CLUSTER, "roleArn": EKS_ROLE}})
    eks_app = yaml.safe_load(application("priveks", repo, server, automated=True, path="app", namespace="priveks"))
    eks_app["spec"]["destination"] = {"name": "priv-eks", "namespace": "priveks"}
    world.api_ok("POST", "/api/v1/applications", yaml.safe_dump(eks_app))
    world.until("eks app synced", synced_healthy(world, "priveks"))

    policy = grants(world.stack.resources)
    used = {(lid, action.split(":")[0]) for lid, action, _ in calls}
    assert ("PollFunction", "sqs") in used and ("ReportFunction", "sns") in used and ("DiffFunction", "s3") in used
    assert {("RenderFunction", "kms"), ("DiffFunction", "kms"), ("ApplyFunction", "kms"), ("ApiFunction", "kms")} <= used
    assert {(f, s) for f in ("ApiFunction", "DiffFunction", "ApplyFunction") for s in ("eks", "sts")} <= used
    denied = sorted({(lid, action, arn) for lid, action, arn in calls if not allowed(policy[lid], action, arn)})
    assert denied == [], denied
