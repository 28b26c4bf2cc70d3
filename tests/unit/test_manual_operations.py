"""Pure parts of manual operations: the sync request body, selective sync, deletion order."""

from __future__ import annotations

import pytest
from gitferry import deletion, selection
from gitferry.errors import InvalidSpecError
from gitferry.messages import SyncResource
from gitferry.service import _delete_options, _sync_request


def cm(name: str, wave: int | None = None, namespace: str | None = "ns", app: str = "a", **annotations: str) -> dict:
    meta: dict = {"name": name, "annotations": dict(annotations)}
    if namespace:
        meta["namespace"] = namespace
    if wave is not None:
        meta["annotations"]["argocd.argoproj.io/sync-wave"] = str(wave)
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    meta["annotations"]["gitferry.dev/tracking-id"] = f"{app}:/ConfigMap:{namespace or ''}/{name}"
    return obj


def test_sync_request_names_every_bad_field() -> None:
    with pytest.raises(InvalidSpecError) as err:
        _sync_request("a", {"name": "b", "revision": "", "dryRun": "no", "syncOptions": ["Foo=1"],
                            "resources": [{"kind": "", "name": "x", "extra": 1}, "bad"], "infos": []})
    problems = err.value.problems
    assert "infos: not supported by gitferry" in problems
    assert any(p.startswith("name: 'b' is not the application") for p in problems)
    assert "revision: must be a non-empty string" in problems
    assert "dryRun: must be true or false" in problems
    assert any(p.startswith("syncOptions: unsupported sync option(s) 'Foo=1'") for p in problems)
    assert "resources[0].extra: unknown field" in problems and "resources[0].kind: field required" in problems
    assert "resources[1]: must be a mapping of group, kind, namespace, name" in problems


def test_sync_request_accepts_argo_cd_shapes() -> None:
    out = _sync_request("a", {"name": "a", "revision": "main", "prune": True, "dryRun": False,
                              "syncOptions": {"items": ["PruneLast=true"]},
                              "resources": [{"kind": "ConfigMap", "name": "x"}]})
    assert out == {"revision": "main", "prune": True, "dryRun": False, "syncOptions": ["PruneLast=true"],
                   "resources": [SyncResource(kind="ConfigMap", name="x")]}


def test_delete_options() -> None:
    assert _delete_options({}) == (True, None)
    assert _delete_options({"cascade": "false", "propagationPolicy": "Background"}) == (False, "background")
    with pytest.raises(InvalidSpecError) as err:
        _delete_options({"cascade": "yes", "propagationPolicy": "orphan"})
    assert err.value.problems == ["cascade: 'yes' is not true or false",
                                  "propagationPolicy: 'orphan' is not foreground or background"]


def test_selection_defaults_the_namespace_and_leaves_hooks_out() -> None:
    desired = [cm("x", namespace=None), cm("y", namespace=None),
               {**cm("h", namespace=None), "metadata": {"name": "h", "annotations": {"argocd.argoproj.io/hook": "PreSync"}}}]
    live = [cm("y"), cm("z")]
    wanted = [SyncResource(kind="ConfigMap", namespace="ns", name=n) for n in ("x", "z", "h", "w")]
    chosen, live_chosen, missing = selection.select(desired, live, wanted, "ns", lambda _v, _k: True)
    assert [o["metadata"]["name"] for o in chosen] == ["x"]
    assert [o["metadata"]["name"] for o in live_chosen] == ["z"]
    assert missing == ["ConfigMap ns/h", "ConfigMap ns/w"]


def test_deletion_goes_by_reverse_wave_and_keeps_delete_false() -> None:
    objs = [cm("w0", 0), cm("w2", 2), cm("w-1", -1), cm("keep", 5, **{"argocd.argoproj.io/sync-options": "Delete=false"}),
            cm("other", 9, app="b"), cm("w2b", 2)]
    managed = deletion.managed_objects("a", objs)
    assert {o["metadata"]["name"] for o in managed} == {"w0", "w2", "w-1", "w2b"}
    order = []
    while managed:
        batch = deletion.deletion_batch(managed)
        order.append([o["metadata"]["name"] for o in batch])
        managed = [o for o in managed if o not in batch]
    assert order == [["w2", "w2b"], ["w0"], ["w-1"]]


def test_propagation() -> None:
    assert deletion.propagation_for([deletion.FINALIZER], None) == "Foreground"
    assert deletion.propagation_for([deletion.BACKGROUND_FINALIZER], None) == "Background"
    assert deletion.propagation_for([deletion.BACKGROUND_FINALIZER], "foreground") == "Foreground"
