"""An EKS cluster on the local stack: moto's EKS record pointing at kubesim, kubesim verifying
EKS tokens through moto's STS.

moto's ``CreateCluster`` invents an endpoint (``https://<random>.<x>.<region>.eks.amazonaws.com``)
and a random certificateAuthority, and the EKS API has no way to set them. The local stack
therefore creates the cluster with the real API and then edits moto's own record (moto runs
in-process) so that ``DescribeCluster`` answers kubesim's URL and CA: gitferry's code path is the
AWS one unchanged (DescribeCluster, then a token from the function's role), only the data moto
holds is local. No gitferry setting, field or environment variable exists for this.
"""

from __future__ import annotations

import base64
from typing import Any

from local.kubesim import eksauth
from local.kubesim.server import KubeSim

#: the functions that talk to clusters (template.yaml: ClusterLayer) and so need a mapping
CLUSTER_FUNCTIONS = ("ApiFunction", "DiffFunction", "ApplyFunction")


def function_role_arns(resources: Any) -> list[str]:
    """Execution role ARNs of the functions that reach clusters (what aws-auth must map)."""
    return [resources.functions[lid].role_arn for lid in CLUSTER_FUNCTIONS
            if lid in resources.functions and resources.functions[lid].role_arn]


def create_cluster(resources: Any, kube: KubeSim, name: str, *, map_roles: list[dict[str, Any]] | None = None,
                   account: str | None = None) -> str:
    """Create EKS cluster ``name`` in moto (in ``account``, default the stack's), make its
    DescribeCluster answer ``kube``'s URL and CA, and switch ``kube`` to EKS authentication for
    it: ``map_roles`` (default: the cluster functions' execution roles as ``system:masters``).
    Returns the cluster ARN."""
    from moto.eks.models import eks_backends

    account = account or resources.account_id
    client = resources.client("eks")
    headers = {"x-moto-account-id": account}

    def add_account(request: Any, **_: Any) -> None:
        for key, value in headers.items():
            request.headers[key] = value

    client.meta.events.register("before-sign.eks.*", add_account)
    arn = client.create_cluster(name=name, roleArn=f"arn:aws:iam::{account}:role/eks-cluster",
                                resourcesVpcConfig={})["cluster"]["arn"]
    record = eks_backends[account][resources.region].clusters[name]
    record.endpoint = kube.url
    record.certificate_authority = {"data": base64.b64encode(kube.certs.ca_pem).decode()}
    if map_roles is None:
        map_roles = [{"rolearn": r, "username": "gitferry", "groups": ["system:masters"]}
                     for r in function_role_arns(resources)]
    kube.enable_eks_auth(eksauth.EksAuthConfig(cluster_id=name, sts_endpoints=[resources.endpoint],
                                               map_roles=map_roles))
    return str(arn)
