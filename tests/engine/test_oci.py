"""gitferry.oci against a real registry (Debian's docker-registry on loopback): tag lists
(paginated), tag -> digest, pulls by digest into the cache, and the refusals of hostile or
unsupported artifacts; plus the pure rules (tag choice, URL forms)."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from gitferry import oci
from gitferry.errors import OciError

from local.ociregistry import OCI_LAYER_TAR_GZIP, OciRegistry, tar_gz


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciRegistry]:
    with OciRegistry(tmp_path_factory.mktemp("oci")) as reg:
        yield reg


def access() -> oci.RegistryAccess:
    return oci.RegistryAccess(plain_http=True)


def test_tags_are_paginated_and_resolved_to_digests(registry: OciRegistry) -> None:
    digests = {t: registry.push_artifact("eng/paged", t, {"a.yaml": f"v: {t}\n"}) for t in
               ("1.0.0", "1.1.0", "1.2.0", "2.0.0", "latest")}
    client = oci.RegistryClient(registry.host, access())
    assert sorted(client.tags("eng/paged", page=2)) == sorted(digests)
    # (distribution 2.8 answers the whole list whatever n says; a registry that pages gets its Link followed)
    assert client.digest_of("eng/paged", "1.2.0") == digests["1.2.0"]
    resolve = oci.resolver(oci.Reference(registry.host, "eng/paged"), access())
    assert resolve(None, "^1.0") == digests["1.2.0"]
    assert resolve(None, "latest") == digests["latest"]
    assert resolve(None, digests["1.0.0"]) == digests["1.0.0"]
    with pytest.raises(OciError, match="no tag of .* matches '>=3'"):
        resolve(None, ">=3")


def test_pull_is_cached_by_digest(registry: OciRegistry, tmp_path: Path) -> None:
    digest = registry.push_artifact("eng/cached", "v1", {"deploy/cm.yaml": "kind: ConfigMap\n"})
    ref = oci.Reference(registry.host, "eng/cached")
    first = oci.pull(ref, digest, access(), tmp_path)
    assert first.kind == "files" and (first.path / "deploy" / "cm.yaml").read_text() == "kind: ConfigMap\n"
    before = len(registry.requests())
    assert oci.pull(ref, digest, access(), tmp_path) == first
    assert registry.requests()[before:] == []  # a cached digest makes no request


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _member(name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple[tarfile.TarInfo,
                                                                                                    bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize(("layer", "message"), [
    (_tar([_member("../escape.yaml")]), "unsafe path"),
    (_tar([_member("/etc/passwd")]), "unsafe path"),
    (_tar([_member("link.yaml", kind=tarfile.SYMTYPE, link="/etc/passwd")]), "links are refused"),
    (_tar([_member("dev", kind=tarfile.CHRTYPE)]), "not a file or directory"),
    (b"not a tar at all", "not a valid tar archive"),
])
def test_hostile_layers_are_refused(registry: OciRegistry, tmp_path: Path, layer: bytes, message: str) -> None:
    digest = registry.push_layers("eng/hostile", "bad", [(OCI_LAYER_TAR_GZIP, layer, {})])
    with pytest.raises(OciError, match=message):
        oci.pull(oci.Reference(registry.host, "eng/hostile"), digest, access(), tmp_path)
    assert not list(tmp_path.rglob("escape.yaml")) and not list(tmp_path.rglob("pulled.json"))


def test_unsupported_artifacts_are_named(registry: OciRegistry, tmp_path: Path) -> None:
    ref = oci.Reference(registry.host, "eng/odd")
    two = registry.push_layers("eng/odd", "two", [(OCI_LAYER_TAR_GZIP, tar_gz({"a.yaml": "a"}), {}),
                                                  (OCI_LAYER_TAR_GZIP, tar_gz({"b.yaml": "b"}), {})])
    with pytest.raises(OciError, match="has 2 content layers"):
        oci.pull(ref, two, access(), tmp_path)
    image = registry.push_layers("eng/odd", "image", [("application/vnd.oci.image.layer.v1.tar+zstd", b"z", {})])
    with pytest.raises(OciError, match="layer media type 'application/vnd.oci.image.layer.v1.tar\\+zstd' is not "
                                       "supported by gitferry"):
        oci.pull(ref, image, access(), tmp_path)
    with pytest.raises(OciError, match="not a sha256 manifest digest"):
        oci.pull(ref, "latest", access(), tmp_path)


def test_unreachable_and_unknown_are_clear(registry: OciRegistry) -> None:
    with pytest.raises(OciError, match="repository eng/nothing-here not found"):
        oci.RegistryClient(registry.host, access()).tags("eng/nothing-here")
    with pytest.raises(OciError, match="cannot reach OCI registry 127.0.0.1:9"):
        oci.RegistryClient("127.0.0.1:9", access()).tags("x")


def test_pick_tag_follows_helm_rules() -> None:
    tags = ["1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0", "1.1.1_build.5", "latest"]
    assert oci.pick_tag(tags, "latest", "r") == "latest"
    assert oci.pick_tag(tags, "~1.1", "r") == "1.1.1_build.5"  # helm push writes + as _
    assert oci.pick_tag(tags, "^1.0", "r") == "1.1.1_build.5"  # the rc is no candidate
    assert oci.pick_tag(tags, ">=1.2.0-0 <2", "r") == "1.2.0-rc.1"
    with pytest.raises(OciError, match="tags: 2.0.0"):
        oci.pick_tag(tags, ">=3", "r")


@pytest.mark.parametrize(("url", "chart", "expected"), [
    ("registry.example.com/charts", "web", ("registry.example.com", "charts/web")),
    ("oci://registry.example.com/charts/", "web", ("registry.example.com", "charts/web")),
    ("oci://127.0.0.1:5000/m/app", None, ("127.0.0.1:5000", "m/app")),
])
def test_references(url: str, chart: str | None, expected: tuple[str, str]) -> None:
    assert oci.is_oci_source(url, chart)
    ref = oci.reference_for(url, chart)
    assert (ref.host, ref.repository) == expected


def test_what_is_not_a_registry() -> None:
    assert not oci.looks_like_registry("charts/web")  # a local path
    assert not oci.looks_like_registry("git@github.com:o/r")
    assert not oci.is_oci_source("https://charts.example.com", "web")
    assert not oci.is_oci_source("registry.example.com/charts", None)  # without chart: refused by the model


def test_bearer_token_flow_of_the_distribution_spec(tmp_path: Path) -> None:
    """A registry behind a token service (as Docker Hub, GHCR, Harbor): the 401's Bearer
    challenge is answered with a token fetched from its realm with the registered login,
    reused for the repository's next requests; a wrong or missing login is named."""
    with OciRegistry(tmp_path / "reg", auth=("ci", "tok-pw"), bearer=True) as reg:
        digest = reg.push_artifact("team/app", "1.0.0", {"cm.yaml": "kind: ConfigMap\n"})
        good = oci.RegistryAccess(username="ci", password="tok-pw", plain_http=True)
        client = oci.RegistryClient(reg.host, good)
        assert client.tags("team/app") == ["1.0.0"] and client.digest_of("team/app", "1.0.0") == digest
        assert client.requests == 4  # tags (401 + Bearer challenge), token, tags, HEAD with the same token
        assert reg.token_server is not None
        assert reg.token_server.requests[-1] == (
            "/token?service=gitferry-local&scope=repository%3Ateam%2Fapp%3Apull", True)
        assert oci.pull(oci.Reference(reg.host, "team/app"), digest, good, tmp_path / "cache").kind == "files"
        with pytest.raises(OciError, match="refused the stored credentials"):
            oci.RegistryClient(reg.host, oci.RegistryAccess(username="ci", password="nope", plain_http=True)
                               ).tags("team/app")
        with pytest.raises(OciError, match="requires authentication"):
            oci.RegistryClient(reg.host, oci.RegistryAccess(plain_http=True)).tags("team/app")
