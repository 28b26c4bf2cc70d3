"""Shared value types of kubesim: what a served resource is, and field causes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS: tuple[str, ...] = (
    "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
)


@dataclass(frozen=True)
class ResourceType:
    """One served resource (a group/version/kind with its REST names).

    ``definition`` is the key in the Kubernetes 1.37 ``_definitions.json`` for
    built-in kinds (e.g. ``io.k8s.api.apps.v1.Deployment``); ``crd_schema`` is the
    ``openAPIV3Schema`` of a custom resource version (None when the CRD gave none).
    """

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: frozenset[str] = frozenset()  # subset of {"status", "scale"}
    definition: str | None = None
    crd_schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    # For CRDs with the scale subresource: JSON paths as in the CRD (".spec.replicas").
    scale_paths: dict[str, str] | None = field(default=None, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def group_resource(self) -> str:
        """``deployments.apps`` / ``configmaps``: how the API server names it in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """``Deployment.apps`` / ``ConfigMap``: the prefix of Invalid messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def is_custom(self) -> bool:
        return self.definition is None


@dataclass(frozen=True)
class Cause:
    """One entry of ``Status.details.causes`` (reason is e.g. FieldValueInvalid)."""

    reason: str
    message: str
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"reason": self.reason, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out
