"""Selective sync (Argo CD's ``resources`` in a sync request): only the named objects are
applied or pruned, everything else the app owns is left as it is, and hooks do not run (as in
Argo CD, where a selective sync skips hooks). Pure functions over manifests."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from gitferry import tracking

Key = tuple[str, str, str, str]  # (group, kind, namespace, name), tracking.resource_key's shape


class _Named(Protocol):
    group: str
    kind: str
    namespace: str
    name: str


def key_of(resource: _Named) -> Key:
    return (resource.group, resource.kind, resource.namespace, resource.name)


def describe(key: Key) -> str:
    """``Kind.group namespace/name`` as users read it in messages."""
    group, kind, namespace, name = key
    return f"{kind}{'.' + group if group else ''} {namespace + '/' if namespace else ''}{name}"


def desired_key(obj: Mapping[str, Any], namespace: str | None, is_namespaced: Callable[[str, str], bool]) -> Key:
    """The key a rendered object will have once applied: the destination namespace defaulted on
    namespaced kinds (a kind the cluster does not serve yet counts as namespaced)."""
    group, kind, ns, name = tracking.resource_key(obj)
    try:
        namespaced = is_namespaced(str(obj.get("apiVersion", "")), kind)
    except Exception:  # noqa: BLE001 - not served (yet): as prepare_desired assumes
        namespaced = True
    if not namespaced:
        ns = ""
    elif not ns:
        ns = namespace or ""
    return (group, kind, ns, name)


def select(
    desired: list[dict[str, Any]],
    live: list[dict[str, Any]],
    resources: Iterable[_Named],
    namespace: str | None,
    is_namespaced: Callable[[str, str], bool],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """(desired, live, missing): the rendered objects and the live objects named by
    ``resources``, and the names found in neither (the operation must fail naming them)."""
    wanted = {key_of(r) for r in resources}
    chosen = [o for o in desired if not tracking.is_hook(o) and desired_key(o, namespace, is_namespaced) in wanted]
    live_chosen = [o for o in live if tracking.resource_key(o) in wanted]
    found = {desired_key(o, namespace, is_namespaced) for o in chosen} | {tracking.resource_key(o) for o in live_chosen}
    missing = sorted(describe(k) for k in wanted - found)
    return chosen, live_chosen, missing


def not_found(app: str, missing: list[str]) -> Any:
    """The failed result of a selective sync naming objects the app does not have."""
    from gitferry.sync import SyncResult, _now

    now = _now()
    return SyncResult("Failed", f"selective sync: not resources of application {app}: {', '.join(missing)}",
                      [], now, now)


__all__ = ["describe", "desired_key", "key_of", "not_found", "select"]
