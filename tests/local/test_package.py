"""tools/package.py: the layer split, stripping, zipping and the 250 MB check."""

from __future__ import annotations

import importlib.util
import stat
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gitferry_tools_package", ROOT / "tools" / "package.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


pkg = _load()


def test_cluster_layer_gets_only_what_kubernetes_alone_needs() -> None:
    graph = {
        "kubernetes": {"requests", "urllib3", "six", "aiohttp"},
        "requests": {"urllib3", "idna"},
        "aiohttp": {"yarl"},
        "botocore": {"urllib3", "six"},
        "boto3": {"botocore"},
    }
    roots = {"kubernetes", "boto3", "pydantic"}
    reqs = ["kubernetes==37.0.1", "requests==2.3", "urllib3==2.8.0 ; python_version >= '3.10'", "six==1.17.0",
            "aiohttp==3.14", "yarl==1.2", "idna==3.2", "botocore==1.44", "boto3==1.44", "pydantic==2.13"]
    split = pkg.split_requirements(reqs, graph, roots)
    names = {k: {line.split("==")[0] for line in v} for k, v in split.items()}
    assert names["cluster"] == {"kubernetes", "requests", "aiohttp", "yarl", "idna"}
    assert names["core"] == {"urllib3", "six", "botocore", "boto3", "pydantic"}  # shared with boto3 -> core


def test_real_lock_split() -> None:
    graph, roots = pkg.dependency_graph(ROOT / "uv.lock")
    assert {"kubernetes", "boto3", "pydantic"} <= roots
    cluster = pkg.closure(graph, {"kubernetes"}) - pkg.closure(graph, roots - {"kubernetes"})
    assert "kubernetes" in cluster and "pydantic" not in cluster and "urllib3" not in cluster


def test_strip_and_zip(tmp_path: Path) -> None:
    py = tmp_path / "layer" / "python"
    for rel in ("kubernetes/aio/api.py", "kubernetes/client/api.py", "kubernetes/test/t.py",
                "pkg/__pycache__/x.cpython-312.pyc", "pkg/tests/test_x.py", "pkg/mod.py"):
        (py / rel).parent.mkdir(parents=True, exist_ok=True)
        (py / rel).write_text("x = 1\n" * 10)
    tool = tmp_path / "layer" / "bin" / "helm"
    tool.parent.mkdir()
    tool.write_bytes(b"#!/bin/sh\n")
    tool.chmod(0o755)
    assert pkg.strip_tree(py) > 0
    out = tmp_path / "layer.zip"
    size = pkg.zip_dir(tmp_path / "layer", out)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        mode = zf.getinfo("bin/helm").external_attr >> 16
    assert names == {"python/kubernetes/client/api.py", "python/pkg/mod.py", "bin/helm"}
    assert mode & stat.S_IXUSR  # helm stays executable in /opt/bin
    assert size == pkg.unzipped_size(out) == 60 + 60 + 10


def test_size_report_counts_layers_and_flags_oversized(tmp_path: Path) -> None:
    def blob(name: str, n: int) -> Path:
        d = tmp_path / name
        d.mkdir()
        (d / "f").write_bytes(b"\0" * n)
        return pkg.zip_dir(d, tmp_path / f"{name}.zip") and tmp_path / f"{name}.zip"

    code = {"render": blob("render", 100), "poll": blob("poll", 50)}
    layers = {"core": blob("core", 1000), "tools": blob("tools", 5000)}
    rows = pkg.size_report({"render": ["core", "tools"], "poll": ["core"]}, code, layers)
    totals = {r.function: r.total for r in rows}
    assert totals == {"render": 6100, "poll": 1050}
    assert [r.function for r in pkg.oversized(rows, limit=6000)] == ["render"]
    assert pkg.oversized(rows, limit=6100) == []
    report = pkg.format_report(rows, limit=6000).splitlines()
    assert [line.split()[0] for line in report if "TOO BIG" in line] == ["render"]
    assert pkg.LIMIT_BYTES == 262_144_000


def test_function_layers_follow_template() -> None:
    layers = pkg.function_layers(ROOT / "template.yaml")
    assert layers["render"] == ["core", "tools", "cluster"]  # the cluster layer for Helm lookup
    assert layers["diff"] == layers["apply"] == ["core", "cluster"]
    assert layers["poll"] == layers["webhook"] == layers["report"] == ["core"]


@pytest.mark.slow
def test_full_package_build_fits_lambda(tmp_path: Path) -> None:
    rows = pkg.build(ROOT, tmp_path / "build")
    assert not pkg.oversized(rows), pkg.format_report(rows)
    with zipfile.ZipFile(tmp_path / "build" / "layers" / "cluster.zip") as zf:
        names = zf.namelist()
    assert any(n.startswith("python/kubernetes/client/") for n in names)
    assert not any(n.startswith("python/kubernetes/aio/") for n in names)
    with zipfile.ZipFile(tmp_path / "build" / "layers" / "core.zip") as zf:
        assert "python/gitferry/__init__.py" in zf.namelist()
    with zipfile.ZipFile(tmp_path / "build" / "functions" / "api.zip") as zf:
        names = zf.namelist()
    # the web console ships with the api function that serves it
    assert "console/index.html" in names and any(n.startswith("console/assets/app-") and n.endswith(".js") for n in names)
