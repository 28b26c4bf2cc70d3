"""Cluster registration documents: kubeconfig (+ context) or EKS (name / ARN, region, role),
the in-cluster mark, partial updates, and the connection check ``argocd cluster add`` does.

A registration document is ``{name, kubeconfig | eks, context?, server?, namespace?, inCluster?}``
with ``eks = {cluster, region?, roleArn?}``. The service stores the resulting :class:`Cluster`;
the kubeconfig (never returned) goes to Secrets Manager, an EKS cluster stores nothing secret.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from gitferry import loader
from gitferry.errors import InvalidSpecError
from gitferry.model import Cluster, EksCluster, check_cluster_name

FIELDS = {"name", "kubeconfig", "context", "server", "namespace", "eks", "inCluster", "allowHelmLookup"}
EKS_FIELDS = {"cluster", "region", "roleArn"}
_CONNECT_TIMEOUT = 10


@dataclass
class Registration:
    """What to store: the cluster record and, for a kubeconfig cluster, the kubeconfig."""

    cluster: Cluster
    kubeconfig: str | None


def _invalid(problems: list[str]) -> InvalidSpecError:
    return InvalidSpecError(problems, "invalid cluster")


def _namespace(value: str) -> str:
    from gitferry.service import _namespace as check

    return check(value)


def check_document(doc: dict[str, Any]) -> list[str]:
    """``field: reason`` for every problem of a registration document (nothing contacted)."""
    problems = [f"{k}: unknown field" for k in sorted(set(doc) - FIELDS)]
    if not doc.get("name"):
        problems.append("name: field required")
    has_kubeconfig, has_eks = doc.get("kubeconfig") not in (None, ""), doc.get("eks") is not None
    if has_kubeconfig == has_eks:
        problems.append("kubeconfig: exactly one of kubeconfig or eks is required")
    if has_kubeconfig and not isinstance(doc["kubeconfig"], (str, dict)):
        problems.append("kubeconfig: must be a kubeconfig document (a string or a mapping)")
    for key in ("name", "context", "server", "namespace"):
        if doc.get(key) is not None and not isinstance(doc[key], str):
            problems.append(f"{key}: must be a string")
    if isinstance(doc.get("name"), str) and doc["name"]:
        try:
            check_cluster_name(doc["name"])
        except ValueError as exc:
            problems.append(f"name: {exc}")
    if isinstance(doc.get("namespace"), str) and doc["namespace"]:
        try:
            _namespace(doc["namespace"])
        except ValueError as exc:
            problems.append(f"namespace: {exc}")
    for key in ("inCluster", "allowHelmLookup"):
        if key in doc and not isinstance(doc[key], bool):
            problems.append(f"{key}: must be true or false")
    if has_eks:
        eks_doc = doc["eks"]
        if not isinstance(eks_doc, dict):
            problems.append("eks: must be a mapping {cluster, region?, roleArn?}")
        else:
            problems += [f"eks.{k}: unknown field" for k in sorted(set(eks_doc) - EKS_FIELDS)]
            if not eks_doc.get("cluster"):
                problems.append("eks.cluster: field required (the EKS cluster name or ARN)")
            problems += [f"eks.{k}: must be a string" for k in sorted(EKS_FIELDS & set(eks_doc))
                         if eks_doc[k] is not None and not isinstance(eks_doc[k], str)]
        for key in ("context", "server"):
            if doc.get(key):
                problems.append(f"{key}: not supported by gitferry for an EKS cluster "
                                "(its endpoint comes from eks:DescribeCluster)")
    return problems


def prepare(doc: dict[str, Any]) -> Registration:
    """Check ``doc`` and connect once (``/version``): a cluster gitferry cannot reach or is not
    allowed into is refused now, with the reason, instead of failing every comparison later."""
    problems = check_document(doc)
    if problems:
        raise _invalid(problems)
    common = {"name": doc["name"], "namespace": doc.get("namespace") or "default",
              "in_cluster": bool(doc.get("inCluster", False)),
              # apps annotated gitferry.dev/helm-lookup may render Helm lookup here, read-only
              "allow_helm_lookup": bool(doc.get("allowHelmLookup", False))}
    if doc.get("eks") is not None:
        return Registration(_prepare_eks(doc["eks"], common), None)
    kubeconfig = doc["kubeconfig"] if isinstance(doc["kubeconfig"], str) else yaml.safe_dump(doc["kubeconfig"])
    context = doc.get("context") or None
    parsed = _load_kubeconfig(kubeconfig)
    server = doc.get("server") or _context_server(parsed, context)
    version = _kubeconfig_version(kubeconfig, context)
    return Registration(Cluster(server=server, context=context, server_version=version, **common), kubeconfig)


def _prepare_eks(eks_doc: dict[str, Any], common: dict[str, Any]) -> Cluster:
    from gitferry import eks

    try:
        target = eks.parse_target(str(eks_doc["cluster"]), eks_doc.get("region") or None,
                                  eks_doc.get("roleArn") or None, default_region=os.environ.get("AWS_REGION"))
    except ValueError as exc:
        raise _invalid([str(exc)]) from None
    try:
        api, described = eks.api_client(target)
    except eks.EksError as exc:
        raise _invalid([f"eks: {exc}"]) from None
    version = _version(api, "eks", hint=(" (is the functions' role, or eks.roleArn, mapped in the cluster's "
                                         "access entries / aws-auth ConfigMap? see docs/eks.md)"))
    return Cluster(server=described.endpoint, server_version=version,
                   eks=EksCluster(cluster=target.cluster, region=target.region, role_arn=target.role_arn,
                                  arn=described.arn or None), **common)


def _load_kubeconfig(kubeconfig: str) -> dict[str, Any]:
    from gitferry.service import BODY_LIMITS

    try:
        doc = loader.load_one(kubeconfig, limits=BODY_LIMITS)
    except loader.LoadError as exc:
        where = f"line {exc.line}: " if exc.line else ""
        raise _invalid([f"kubeconfig: not YAML: {where}{exc.message}"]) from None
    if not isinstance(doc, dict):
        raise _invalid(["kubeconfig: not a kubeconfig (a YAML mapping with clusters, contexts and users)"])
    return doc


def _context_server(doc: dict[str, Any], context: str | None) -> str:
    """The server of ``context`` (default: the current context); 400 naming what is missing."""
    try:
        contexts = {c["name"]: c["context"] for c in doc.get("contexts") or []}
        clusters = {c["name"]: c["cluster"] for c in doc.get("clusters") or []}
    except (TypeError, KeyError):
        raise _invalid(["kubeconfig: contexts and clusters must be lists of {name, ...}"]) from None
    if context is not None and context not in contexts:
        have = ", ".join(sorted(map(str, contexts))) or "none"
        raise _invalid([f"context: no context {context!r} in the kubeconfig (it has: {have})"])
    chosen = context or doc.get("current-context") or next(iter(contexts), None)
    try:
        return str(clusters[contexts[chosen]["cluster"]]["server"])
    except (KeyError, TypeError):
        raise _invalid([f"kubeconfig: cannot find the server of context {chosen!r}"]) from None


def _kubeconfig_version(kubeconfig: str, context: str | None) -> str:
    from gitferry.kube import KubeError, api_client_from_kubeconfig

    try:
        api = api_client_from_kubeconfig(kubeconfig, context)
    except KubeError as exc:
        raise _invalid([f"kubeconfig: {exc}"]) from None
    return _version(api, "kubeconfig")


def _version(api: Any, field: str, hint: str = "") -> str:
    from kubernetes import client as k8s_client

    try:
        return str(k8s_client.VersionApi(api).get_code(_request_timeout=_CONNECT_TIMEOUT).git_version)
    except Exception as exc:  # noqa: BLE001 - any transport/auth failure is the user's to fix
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise _invalid([f"{field}: cannot reach the cluster's API server: {reason}{hint if reason == 'Unauthorized' else ''}"]) from None
    finally:
        api.close()


def document_of(cluster: Cluster) -> dict[str, Any]:
    """The registration document a stored cluster came from (without its kubeconfig)."""
    doc: dict[str, Any] = {"name": cluster.name, "namespace": cluster.namespace, "inCluster": cluster.in_cluster,
                           "allowHelmLookup": cluster.allow_helm_lookup}
    if cluster.eks is not None:
        doc["eks"] = {"cluster": cluster.eks.cluster, "region": cluster.eks.region}
        if cluster.eks.role_arn:
            doc["eks"]["roleArn"] = cluster.eks.role_arn
    else:
        doc["server"] = cluster.server
        if cluster.context:
            doc["context"] = cluster.context
    return doc


def merge_patch(cluster: Cluster, patch: dict[str, Any], stored_kubeconfig: Any) -> dict[str, Any]:
    """The full registration document after a JSON merge patch (``null`` removes a field).

    The stored server is kept unless the patch names one or changes what the server comes from
    (kubeconfig, context, eks); a kubeconfig cluster keeps its stored kubeconfig unless the patch
    gives one (``stored_kubeconfig`` is only called then)."""
    problems = [f"{k}: unknown field" for k in sorted(set(patch) - FIELDS)]
    if "name" in patch and patch["name"] != cluster.name:
        problems.append("name: cannot be changed (delete and register again)")
    if problems:
        raise _invalid(problems)
    doc = document_of(cluster)
    if {"kubeconfig", "context", "eks"} & set(patch):
        doc.pop("server", None)
    if patch.get("eks") is not None:
        doc.pop("context", None)
        doc.pop("server", None)
        base = doc.get("eks") if isinstance(doc.get("eks"), dict) else {}
        doc["eks"] = ({**base, **patch["eks"]} if isinstance(patch["eks"], dict) else patch["eks"])
        if isinstance(doc["eks"], dict):
            doc["eks"] = {k: v for k, v in doc["eks"].items() if v is not None}
    elif patch.get("kubeconfig"):
        doc.pop("eks", None)
    for key, value in patch.items():
        if key == "eks":
            continue
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    if doc.get("eks") is None and not doc.get("kubeconfig"):
        doc["kubeconfig"] = stored_kubeconfig()
    return doc


def connection_info(cluster: Cluster, kubeconfig: Callable[[], str]) -> dict[str, Any]:
    """Argo CD's ``info`` of a cluster: ``serverVersion`` and ``connectionState`` (Successful /
    Failed with the reason), from one ``/version`` call made now."""
    attempted = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        if cluster.eks is not None:
            from gitferry import eks

            api = eks.api_client(eks.EksTarget(cluster.eks.cluster, cluster.eks.region, cluster.eks.role_arn))[0]
        else:
            from gitferry.kube import api_client_from_kubeconfig

            api = api_client_from_kubeconfig(kubeconfig(), cluster.context)
        version = _version(api, "connection")
    except InvalidSpecError as exc:
        message = "; ".join(exc.problems).removeprefix("connection: ")
        return {"connectionState": {"status": "Failed", "message": message, "attemptedAt": attempted}}
    except Exception as exc:  # noqa: BLE001 - EksError, KubeError, SecretError: shown, never raised
        return {"connectionState": {"status": "Failed", "message": str(exc), "attemptedAt": attempted}}
    return {"serverVersion": version,
            "connectionState": {"status": "Successful", "message": "", "attemptedAt": attempted}}
