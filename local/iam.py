"""The functions' IAM policies, enforced on the local stack.

moto checks no IAM, so a handler that sends to a queue its role may not send to would pass
every local test and fail with AccessDenied in AWS. Each function's execution role is assumed in
moto's STS and each function gets its own boto3 default session (``local.runner``), so every
call a handler makes is signed with its role's own access key. Hooks on that session
(``before-parameter-build`` keeps the call's parameters, ``before-call`` sees the signer's key)
map the key back to the role's resolved statements in the transformed template and refuse a
call no ``Allow`` statement covers, or a ``Deny`` names, the way AWS does (an ``AccessDenied`` /
``AccessDeniedException`` error naming the action and resource). Calls with any other key (the
test harness, the runner itself) are not checked.

Checked: SQS, Secrets Manager, DynamoDB (tables and indexes), S3 object calls, KMS, SNS Publish,
ECR GetAuthorizationToken, EKS DescribeCluster, STS AssumeRole; other calls are recorded as
unchecked by returning no resource. Evaluated: Effect / Action / Resource with ``*`` and ``?``
wildcards (actions case-insensitive). The template uses no Condition, NotAction or NotResource;
a statement that does is refused at start rather than half-evaluated.

``GITFERRY_LOCAL_IAM=record`` (with ``GITFERRY_LOCAL_IAM_LOG=<file>``) lets denied calls pass
and writes them to the file: a survey of what a template change would break."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError

# Batch calls authorised by their single-entry action (AWS documents these pairs).
_ACTION_ALIASES = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def matches(self, action: str, resource: str) -> bool:
        return (any(fnmatchcase(action.lower(), a.lower()) for a in self.actions)
                and any(fnmatchcase(resource, r) for r in self.resources))


def statements_of(policies: list[dict[str, Any]], where: str) -> list[Statement]:
    """Resolved ``Policies`` of an ``AWS::IAM::Role`` as Statements."""
    out = []
    for pol in policies:
        for st in pol["PolicyDocument"]["Statement"]:
            if "Condition" in st or "NotAction" in st or "NotResource" in st:
                raise ValueError(f"{where}: IAM statement {st.get('Sid', '')!r} uses Condition/NotAction/"
                                 "NotResource, which the local stack does not evaluate")
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            out.append(Statement(st["Effect"], tuple(map(str, actions)),
                                 tuple(r for res in resources for r in (res if isinstance(res, list) else [res])
                                       if isinstance(r, str))))
    return out


def allowed(statements: list[Statement], action: str, resource: str) -> bool:
    if any(s.effect == "Deny" and s.matches(action, resource) for s in statements):
        return False
    return any(s.effect == "Allow" and s.matches(action, resource) for s in statements)


def resources_of(service: str, operation: str, params: dict[str, Any], region: str,
                 account: str) -> list[tuple[str, str]] | None:
    """(IAM action, resource ARN) pairs a call needs, or None for a call that is not checked."""
    action = _ACTION_ALIASES.get(f"{service}:{operation}", f"{service}:{operation}")
    if service == "sqs":
        url = params.get("QueueUrl")
        if not url:
            return [(action, "*")]
        parts = urlsplit(url).path.strip("/").split("/")
        return [(action, f"arn:aws:sqs:{region}:{parts[-2] if len(parts) > 1 else account}:{parts[-1]}")]
    if service == "secretsmanager":
        secret = params.get("SecretId") or params.get("Name")
        if not secret:
            return [(action, "*")]
        # A secret's ARN ends in a random suffix the policy's trailing * covers.
        return [(action, secret if secret.startswith("arn:") else
                 f"arn:aws:secretsmanager:{region}:{account}:secret:{secret}-AbCdEf")]
    if service == "dynamodb":
        tables: list[str] = []
        if "TableName" in params:
            tables.append(params["TableName"] + (f"/index/{params['IndexName']}" if params.get("IndexName") else ""))
        tables += list(params.get("RequestItems") or {})
        for item in params.get("TransactItems") or []:
            tables += [op["TableName"] for op in item.values() if isinstance(op, dict) and "TableName" in op]
        return [(action, f"arn:aws:dynamodb:{region}:{account}:table/{t}") for t in tables] or [(action, "*")]
    if service == "s3":  # the object calls gitferry makes (bucket-level ones are not checked)
        if operation in ("PutObject", "DeleteObject", "GetObject"):
            return [(action, f"arn:aws:s3:::{params['Bucket']}/{params['Key']}")]
        if operation == "HeadObject":
            return [("s3:GetObject", f"arn:aws:s3:::{params['Bucket']}/{params['Key']}")]
        if operation == "CopyObject":  # a manifest's lifecycle age reset: read + write
            source = params["CopySource"]
            if isinstance(source, str):
                bucket, _, key = source.lstrip("/").partition("/")
                source = {"Bucket": bucket, "Key": key.split("?")[0]}
            return [("s3:GetObject", f"arn:aws:s3:::{source['Bucket']}/{source['Key']}"),
                    ("s3:PutObject", f"arn:aws:s3:::{params['Bucket']}/{params['Key']}")]
        return None
    if service == "kms":  # Decrypt names no key: the ciphertext says which, as in KMS
        key = params.get("KeyId")
        if key is None and params.get("CiphertextBlob"):
            from moto.kms.utils import _deserialize_ciphertext_blob  # moto's own blob format

            key = _deserialize_ciphertext_blob(bytes(params["CiphertextBlob"])).key_id
        if key is None:
            return [(action, "*")]
        return [(action, key if key.startswith("arn:") else f"arn:aws:kms:{region}:{account}:key/{key}")]
    if service == "ecr":
        return [(action, "*")] if operation == "GetAuthorizationToken" else None  # only "*" exists for it
    if service == "sns" and operation == "Publish":
        return [(action, params.get("TopicArn") or params.get("TargetArn") or "*")]
    if service == "eks" and operation == "DescribeCluster":
        return [(action, f"arn:aws:eks:{region}:{account}:cluster/{params['name']}")]
    if service == "sts" and operation == "AssumeRole":
        return [(action, params["RoleArn"])]
    return None


class _Registry:
    """Access key id -> (function, statements, region, account); one per process, shared by every
    runner (pytest runs several local stacks in one process, one after another)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[str, list[Statement], str, str]] = {}
        self.denied: list[str] = []
        self.calls: dict[str, set[tuple[str, str, str]]] = {}  # access key -> (function, action, resource)

    def register(self, access_key: str, function: str, statements: list[Statement], region: str,
                 account: str) -> None:
        with self._lock:
            self._keys[access_key] = (function, statements, region, account)

    def watch(self, session: boto3.session.Session) -> None:
        """Check the calls of clients made from ``session`` (a function's default session)."""
        # The API parameters are seen before they are serialised; the signer's key only at the call.
        session.events.register("before-parameter-build", self._keep_params, unique_id="gitferry-local-iam-params")
        session.events.register("before-call", self._check, unique_id="gitferry-local-iam")

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
        if context is not None:
            context["gitferry_iam_params"] = dict(params)

    def _check(self, model: Any, context: dict[str, Any] | None = None, request_signer: Any = None,
               **_: Any) -> None:
        if request_signer is None:
            return
        credentials = getattr(request_signer, "_credentials", None)
        key = getattr(credentials, "access_key", None)
        entry = self._keys.get(key) if key else None
        if entry is None:
            return  # not a function's role: the harness, the runner
        function, statements, region, account = entry
        params = (context or {}).get("gitferry_iam_params") or {}
        service = model.service_model.signing_name
        needs = resources_of(service, model.name, params, region, account)
        for action, resource in needs or []:
            self.calls.setdefault(key, set()).add((function, action, resource))
            if allowed(statements, action, resource):
                continue
            message = (f"User: {function}'s execution role is not authorized to perform: {action} on "
                       f"resource: {resource} because no identity-based policy allows the {action} action")
            self.denied.append(message)
            if os.environ.get("GITFERRY_LOCAL_IAM") == "record":  # survey mode: note it, let it pass
                with open(os.environ.get("GITFERRY_LOCAL_IAM_LOG", "/dev/null"), "a") as log:
                    log.write(message + "\n")
                continue
            code = "AccessDenied" if service in ("sqs", "s3", "sts", "sns") else "AccessDeniedException"
            raise ClientError({"Error": {"Code": code, "Message": message}}, model.name)


REGISTRY = _Registry()
