"""The render cache: the same inputs are rendered once.

Rendering is a pure function of its inputs, so the render stage looks the inputs up before it
checks anything out or starts a tool. The key is the SHA-256 of the canonical JSON of
(:func:`cache_inputs`):

- ``v``: the cache format (:data:`FORMAT`);
- ``app``: the app name (Helm's default release name) and destination namespace (Helm's default
  namespace), and the destination's Kubernetes version (``.Capabilities.KubeVersion``);
- ``sources``: per source, in order, its whole spec (repoURL, path / chart, targetRevision,
  directory / helm / kustomize options, ref) and its pinned revision: the commit SHA of a Git
  source, the chart version **and the chart's digest from the repository index** for a chart
  (a republished chart under the same version is another input);
- ``tools``: the SHA-256 of the helm and kubectl binaries, the jsonnet binding's version and the
  SHA-256 of gitferry's render code (``render.py``, ``jsonnet_eval.py``, ``sources.py``,
  ``loader.py``, ``helmdeps.py``), so an
  upgrade of either renders again.

The entry ``render-cache/<key>.json`` in the manifest bucket holds the S3 key of the rendered
manifests (``manifests/<sha256>.json``, content-addressed already) and the RepeatedResource
warnings; an entry whose manifests have expired is a miss, and so is one past its own
``expires``: a render that used Helm dependencies resolved from ranges without a ``Chart.lock``
(:mod:`gitferry.helmdeps`) is kept only until those are due to be re-resolved (24 h), since the
commit alone does not pin them. Entries expire with the template's
lifecycle rule (``render-cache/``, 30 days). Never cached: apps rendering with Helm ``lookup``
(their output depends on the cluster), and renders asked with a hard refresh (they are looked
up nowhere, and their result replaces the entry).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from gitferry.blobs import ManifestStore, canonical_json
from gitferry.errors import NotFoundError, StateError
from gitferry.model import Application

__all__ = ["FORMAT", "PREFIX", "RenderCache", "cache_inputs", "cache_key", "tool_fingerprint"]

FORMAT = 1
PREFIX = "render-cache/"
_fingerprints: dict[tuple[str, int, int], str] = {}
_code_digest: str | None = None


def _file_digest(path: str) -> str:
    """SHA-256 of a binary, remembered by (path, size, mtime) so a warm Lambda hashes it once."""
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    found = _fingerprints.get(key)
    if found is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        found = _fingerprints[key] = h.hexdigest()
    return found


def tool_fingerprint() -> dict[str, str]:
    """What identifies the renderers without running them (no ``helm version`` process)."""
    global _code_digest
    from gitferry import render

    out: dict[str, str] = {}
    for tool in ("helm", "kubectl"):
        try:
            out[tool] = _file_digest(os.path.realpath(render.find_tool(tool)))
        except (OSError, Exception):  # noqa: BLE001 - a missing tool fails the render itself, not the key
            out[tool] = "missing"
    try:
        import _jsonnet

        out["jsonnet"] = str(getattr(_jsonnet, "version", "unknown"))
    except ImportError:
        out["jsonnet"] = "missing"
    if _code_digest is None:
        here = Path(__file__).resolve().parent
        h = hashlib.sha256()
        for name in ("render.py", "jsonnet_eval.py", "sources.py", "rendercache.py", "loader.py", "helmdeps.py"):
            h.update((here / name).read_bytes())
        _code_digest = h.hexdigest()
    out["gitferry"] = _code_digest
    return out


def cache_inputs(app: Application, revisions: list[str], chart_digests: dict[int, str],
                 kube_version: str | None) -> dict[str, Any]:
    """Everything a render of ``app`` at ``revisions`` depends on (see the module docstring)."""
    sources = []
    for i, (source, revision) in enumerate(zip(app.spec.all_sources, revisions, strict=True)):
        entry: dict[str, Any] = {"spec": source.model_dump(mode="json", by_alias=True, exclude_none=True),
                                 "revision": revision}
        if source.chart is not None:
            entry["digest"] = chart_digests.get(i, "")
        sources.append(entry)
    return {
        "v": FORMAT,
        "app": {"name": app.name, "namespace": app.spec.destination.namespace, "kubeVersion": kube_version},
        "sources": sources,
        "tools": tool_fingerprint(),
    }


def cache_key(inputs: dict[str, Any]) -> str:
    return f"{PREFIX}{hashlib.sha256(canonical_json(inputs)).hexdigest()}.json"


class RenderCache:
    """Entries in the manifest bucket: ``render-cache/<key>.json`` -> the manifests' key."""

    def __init__(self, store: ManifestStore) -> None:
        self.store = store

    def get(self, key: str) -> tuple[str, list[str]] | None:
        """(manifests key, warnings) of a live hit whose manifests are still stored, or None."""
        try:
            entry = self.store.get_json(key)
        except NotFoundError:
            return None
        except (StateError, json.JSONDecodeError):
            return None  # unreadable entry: render again and overwrite it
        if not isinstance(entry, dict) or not isinstance(entry.get("manifests"), str):
            return None
        expires = entry.get("expires")
        if isinstance(expires, (int, float)) and expires <= time.time():
            return None  # it used unlocked Helm dependencies, whose ranges are due to be re-resolved
        if not self.store.exists(entry["manifests"]):
            return None  # expired by the lifecycle rule
        warnings = entry.get("warnings")
        return entry["manifests"], [str(w) for w in warnings] if isinstance(warnings, list) else []

    def put(self, key: str, manifests: str, warnings: list[str], *, expires: float | None = None) -> None:
        """Remember a render; ``expires`` (epoch seconds) when its inputs are not all pinned."""
        entry: dict[str, Any] = {"manifests": manifests, "warnings": warnings}
        if expires is not None:
            entry["expires"] = expires
        self.store.put_json(key, entry)
