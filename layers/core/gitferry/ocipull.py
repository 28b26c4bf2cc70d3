"""Pulling OCI charts and artifacts by manifest digest, and what the render stage renders.

:func:`pull` fetches manifest ``digest`` of an OCI repository (its bytes checked against the
digest), refuses what gitferry does not render (an image index, several content layers, other
media types: :data:`gitferry.oci.MANIFEST_LAYERS`, :data:`gitferry.oci.HELM_CHART_LAYER`), fetches the
one content layer (checked against its digest) and extracts it into ``<cache>/<digest>``: a
chart through :func:`gitferry.helmrepo.chart_from_archive`, an artifact's files with links,
``..``, absolute paths and devices refused and the size bounded. A cached digest makes no
request. :func:`source_tree` turns an Application source and its digest into the directory and
source :mod:`gitferry.render` renders (docs/oci.md).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from gitferry.errors import OciError
from gitferry.oci import (
    DIGEST,
    HELM_CHART_LAYER,
    INDEX_TYPES,
    MANIFEST_LAYERS,
    SIDE_LAYERS,
    Reference,
    RegistryAccess,
    RegistryClient,
    reference_for,
)

__all__ = ["DEFAULT_CACHE_DIR", "Pulled", "pull", "source_tree"]

DEFAULT_CACHE_DIR = "/tmp/gitferry-oci"
MAX_LAYER_BYTES = 64 * 1024 * 1024
MAX_EXTRACTED_BYTES = 128 * 1024 * 1024
MAX_MEMBERS = 10_000
MAX_CACHE_BYTES = 256 * 1024 * 1024  # /tmp also holds the Git and chart caches


@dataclass(frozen=True)
class Pulled:
    """What a manifest digest holds, extracted: ``kind`` ``helm`` (``path`` is the chart
    directory) or ``files`` (``path`` is the root of the artifact's files)."""

    kind: str
    path: Path
    digest: str


def pull(ref: Reference, digest: str, access: RegistryAccess, cache_dir: str | Path = DEFAULT_CACHE_DIR,
         *, chart: str | None = None) -> Pulled:
    """Pull manifest ``digest`` of ``ref`` and extract its content layer, cached by the
    manifest digest (a cached digest makes no request at all)."""
    if not DIGEST.match(digest):
        raise OciError(f"revision {digest!r} of {ref.url} is not a sha256 manifest digest", ref.url, digest)
    cache = Path(cache_dir)
    hit = _cached(cache, digest)
    if hit is not None:
        return hit
    client = RegistryClient(ref.host, access)
    manifest = client.manifest(ref.repository, digest)
    media = str(manifest.get("mediaType") or "")
    if media in INDEX_TYPES or "manifests" in manifest:
        raise OciError(f"{ref.url}@{digest} is an image index (several platforms), not a chart or manifests "
                       "artifact; not supported by gitferry", ref.url, digest)
    layers = [layer for layer in manifest.get("layers") or [] if isinstance(layer, dict)
              and layer.get("mediaType") not in SIDE_LAYERS]
    if len(layers) != 1:
        raise OciError(f"{ref.url}@{digest} has {len(layers)} content layers; gitferry (like Argo CD) renders "
                       "artifacts with exactly one", ref.url, digest)
    layer = layers[0]
    layer_type = str(layer.get("mediaType") or "")
    if layer_type != HELM_CHART_LAYER and layer_type not in MANIFEST_LAYERS:
        raise OciError(f"{ref.url}@{digest}: layer media type {layer_type!r} is not supported by gitferry "
                       f"(supported: {', '.join((HELM_CHART_LAYER, *MANIFEST_LAYERS))})", ref.url, digest)
    size = layer.get("size")
    if isinstance(size, int) and size > MAX_LAYER_BYTES:
        raise OciError(f"{ref.url}@{digest}: its layer is {size} bytes, more than "
                       f"{MAX_LAYER_BYTES // (1024 * 1024)} MiB", ref.url, digest)
    data = client.blob(ref.repository, str(layer.get("digest")), MAX_LAYER_BYTES)
    if layer_type == HELM_CHART_LAYER:
        from gitferry import helmrepo

        name = chart or ref.repository.rsplit("/", 1)[-1]
        chart_dir = helmrepo.chart_from_archive(data, cache / "charts", name, digest, ref.url)
        return _remember(cache, digest, "helm", chart_dir)
    return _remember(cache, digest, "files", _extract_files(data, cache, digest, ref, layer_type))


def _entry(cache: Path, digest: str) -> Path:
    return cache / digest.replace(":", "-")


def _cached(cache: Path, digest: str) -> Pulled | None:
    marker = _entry(cache, digest) / "pulled.json"
    try:
        doc = json.loads(marker.read_text())
        os.utime(marker)
    except (OSError, ValueError):
        return None
    path = Path(doc["path"])
    return Pulled(doc["kind"], path, digest) if path.is_dir() else None


def _remember(cache: Path, digest: str, kind: str, path: Path) -> Pulled:
    entry = _entry(cache, digest)
    entry.mkdir(parents=True, exist_ok=True)
    tmp = entry / f".pulled-{os.getpid()}-{threading.get_ident()}"
    tmp.write_text(json.dumps({"kind": kind, "path": str(path)}))
    os.replace(tmp, entry / "pulled.json")
    return Pulled(kind, path, digest)


def _extract_files(data: bytes, cache: Path, digest: str, ref: Reference, layer_type: str) -> Path:
    """The layer's files under ``<cache>/<digest>/files``, refusing links, absolute paths,
    ``..``, devices and archives too large or too many files once extracted."""
    entry = _entry(cache, digest)
    target = entry / "files"
    if target.is_dir():
        return target
    entry.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=entry))
    where = f"{ref.url}@{digest}"
    try:
        mode = "r:" if layer_type.endswith(".tar") else "r:*"
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as tar:
                total = 0
                for count, member in enumerate(tar):
                    name = member.name
                    pure = PurePosixPath(name)
                    if count >= MAX_MEMBERS:
                        raise OciError(f"{where} has more than {MAX_MEMBERS} files; refused", ref.url, digest)
                    if (not name or name.startswith(("/", "\\")) or pure.is_absolute() or ".." in pure.parts
                            or "\\" in name):
                        raise OciError(f"{where} contains the unsafe path {name!r}; refused", ref.url, digest)
                    if member.issym() or member.islnk():
                        raise OciError(f"{where} contains the link {name!r}; links are refused", ref.url, digest)
                    if member.isdir():
                        (tmp / name).mkdir(parents=True, exist_ok=True)
                        continue
                    if not member.isfile():
                        raise OciError(f"{where} contains {name!r}, which is not a file or directory; refused",
                                       ref.url, digest)
                    total += max(member.size, 0)
                    if total > MAX_EXTRACTED_BYTES:
                        raise OciError(f"{where} extracts to more than {MAX_EXTRACTED_BYTES // (1024 * 1024)} MiB; "
                                       "refused", ref.url, digest)
                    out = tmp / name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(member)
                    if src is not None:
                        with src, open(out, "wb") as dst:
                            shutil.copyfileobj(src, dst)
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise OciError(f"{where}: its layer is not a valid tar archive ({type(exc).__name__})",
                           ref.url, digest) from None
        try:
            os.rename(tmp, target)
        except OSError:
            pass  # another render extracted it first
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _trim(cache, keep=_entry(cache, digest))
    return target


def _trim(cache: Path, keep: Path) -> None:
    """Drop the least recently used pulls until the cache fits MAX_CACHE_BYTES."""
    entries: list[tuple[float, Path, int]] = []
    for entry in cache.iterdir():
        marker = entry / "pulled.json"
        if entry == keep or not marker.is_file() or not (entry / "files").is_dir():
            continue
        size = sum(f.stat().st_size for f in (entry / "files").rglob("*") if f.is_file())
        entries.append((marker.stat().st_mtime, entry, size))
    total = sum(e[2] for e in entries)
    for _mtime, entry, size in sorted(entries):
        if total <= MAX_CACHE_BYTES:
            break
        shutil.rmtree(entry, ignore_errors=True)
        total -= size


def source_tree(source: Any, digest: str, access: RegistryAccess,
                cache_dir: str | Path = DEFAULT_CACHE_DIR) -> tuple[Path, Any]:
    """The extracted content of an OCI source at ``digest`` and the source to render it with:
    a chart (``chart`` set, or a chart layer behind ``oci://``) rendered by Helm from the chart
    directory; an artifact's files rendered from ``path`` like a Git checkout."""
    from gitferry.model import HelmOptions

    ref = reference_for(source.repo_url, source.chart)
    pulled = pull(ref, digest, access, cache_dir, chart=source.chart)
    if pulled.kind == "helm":
        if source.chart is None and (source.path or ".").strip() not in (".", "./", ""):
            raise OciError(f"{ref.url} is a Helm chart: path must be '.' (it is {source.path!r})", ref.url, digest)
        if source.directory is not None or source.kustomize is not None:
            raise OciError(f"{ref.url} is a Helm chart: spec.source.directory / kustomize do not apply", ref.url,
                           digest)
        return pulled.path, source.model_copy(update={"path": ".", "chart": None,
                                                      "helm": source.helm or HelmOptions()})
    if source.chart is not None:
        raise OciError(f"{ref.url}@{digest} is not a Helm chart (its layer is a manifests archive); "
                       "remove chart and use repoURL oci://... with path", ref.url, digest)
    return pulled.path, source
