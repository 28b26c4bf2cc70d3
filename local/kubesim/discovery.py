"""Legacy (``application/json``) discovery documents: /version, /api, /apis, /api/v1, /apis/g/v.

client-go asks for aggregated discovery first but accepts the legacy documents when the
response Content-Type is plain ``application/json``; serving only the legacy form keeps one
source of truth. ``preferredVersion`` must be one of ``versions`` (the Python DynamicClient
compares them exactly).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from local.kubesim.types import ResourceType

KUBE_VERSION = {"major": "1", "minor": "37", "gitVersion": "v1.37.0-kubesim"}

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key giving Kubernetes' version order: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > other."""
    m = _VERSION_RE.match(version)
    if not m:
        return (0, 0, 0, version)
    major = int(m.group(1))
    stage = {None: 3, "beta": 2, "alpha": 1}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, major, minor, "")


def sorted_versions(versions: Iterable[str]) -> list[str]:
    """Versions best first, as discovery lists them."""
    return sorted(set(versions), key=version_priority, reverse=True)


def version_info() -> dict[str, Any]:
    """``GET /version``: what ``kubectl version`` and the DynamicClient read first."""
    return {
        **KUBE_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    """``GET /api``: the core group only has v1."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _groups(types: Iterable[ResourceType]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for rt in types:
        if rt.group:
            groups.setdefault(rt.group, [])
            if rt.version not in groups[rt.group]:
                groups[rt.group].append(rt.version)
    return groups


def _group_doc(name: str, versions: list[str]) -> dict[str, Any]:
    ordered = sorted_versions(versions)
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in ordered]
    return {"name": name, "versions": entries, "preferredVersion": dict(entries[0])}


def group_list(types: Iterable[ResourceType]) -> dict[str, Any]:
    """``GET /apis``: every named group with its served versions, preferred one first."""
    groups = _groups(types)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(name, groups[name]) for name in sorted(groups)],
    }


def api_group(types: Iterable[ResourceType], group: str) -> dict[str, Any] | None:
    """``GET /apis/<group>``; None when the group is not served."""
    versions = _groups(types).get(group)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group, versions)}


def served_group_versions(types: Iterable[ResourceType]) -> list[str]:
    """Every served group-version (``v1``, ``apps/v1`` ...), core first."""
    out: list[str] = []
    types = list(types)
    if any(not rt.group for rt in types):
        out.append("v1")
    groups = _groups(types)
    for name in sorted(groups):
        out.extend(f"{name}/{v}" for v in sorted_versions(groups[name]))
    return out


def resource_list(types: Iterable[ResourceType], group_version: str) -> dict[str, Any] | None:
    """``GET /api/v1`` / ``GET /apis/<g>/<v>``: the APIResourceList; None when not served."""
    resources: list[dict[str, Any]] = []
    found = False
    for rt in sorted(types, key=lambda t: t.plural):
        if rt.api_version != group_version:
            continue
        found = True
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": sorted(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        if "status" in rt.subresources:
            resources.append({
                "name": f"{rt.plural}/status", "singularName": "", "namespaced": rt.namespaced,
                "kind": rt.kind, "verbs": ["get", "patch", "update"],
            })
        if "scale" in rt.subresources:
            resources.append({
                "name": f"{rt.plural}/scale", "singularName": "", "namespaced": rt.namespaced,
                "group": "autoscaling", "version": "v1", "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            })
    if not found:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}
