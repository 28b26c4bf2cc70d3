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


def _code_tree(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "app.py").write_text("from pkg import mod\n\ndef handler(event, context):\n    return mod.X\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "mod.py").write_text("X = 42\n")
    (root / "pkg" / "py2_example.py").write_text("print 'a Python 2 example some wheels ship'\n")
    return root


def test_every_zip_carries_bytecode_of_the_building_interpreter(tmp_path: Path) -> None:
    import importlib.util
    import subprocess

    compiler = pkg.probe(sys.executable)
    assert compiler.version == f"{sys.version_info.major}.{sys.version_info.minor}" and compiler.magic == importlib.util.MAGIC_NUMBER
    out = tmp_path / "fn.zip"
    src = _code_tree(tmp_path / "src")
    pkg._staged_zip(src, out, compiler, tmp_path / "staging")
    assert not list(src.rglob("*.pyc"))  # the source tree stays clean
    with zipfile.ZipFile(out) as zf:
        pycs = {n: zf.read(n)[:4] for n in zf.namelist() if n.endswith(".pyc")}
        zf.extractall(tmp_path / "task")
    tag = compiler.tag
    assert set(pycs) == {f"__pycache__/app.{tag}.pyc", f"pkg/__pycache__/__init__.{tag}.pyc",
                         f"pkg/__pycache__/mod.{tag}.pyc"}  # the Python 2 file stays source only
    assert set(pycs.values()) == {compiler.magic}
    pkg.check_bytecode(out, compiler, {"pkg/py2_example.py"})
    with pytest.raises(SystemExit, match="without bytecode"):  # unless compile_tree said it could not
        pkg.check_bytecode(out, compiler)
    # As Lambda runs it: a read-only task directory, and the import reads the pycs, compiling nothing.
    for path in (tmp_path / "task").rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)
    (tmp_path / "task").chmod(0o555)
    run = subprocess.run([sys.executable, "-v", "-c", "import app; assert app.handler(None, None) == 42"],
                         cwd=tmp_path / "task", capture_output=True, text=True, check=True)
    assert f"code object from '{tmp_path / 'task' / '__pycache__' / f'app.{tag}.pyc'}'" in run.stderr
    assert "pkg/__pycache__/mod." in run.stderr and "could not create" not in run.stderr


def test_bytecode_is_never_labelled_for_a_runtime_it_was_not_compiled_for(tmp_path: Path) -> None:
    other = f"python3.{sys.version_info.minor + 1}"
    with pytest.raises(SystemExit) as refused:
        pkg.find_compiler(other, sys.executable)
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in str(refused.value)
    assert other in str(refused.value)
    # a zip holding another interpreter's pycs is refused by the check before it ships
    compiler = pkg.probe(sys.executable)
    foreign = pkg.Compiler(sys.executable, other.removeprefix("python"), b"\x00\x00\r\n")
    out = tmp_path / "fn.zip"
    pkg._staged_zip(_code_tree(tmp_path / "src"), out, compiler, tmp_path / "staging")
    with pytest.raises(SystemExit) as wrong:
        pkg.check_bytecode(out, foreign)
    assert "is not bytecode of Python" in str(wrong.value)


def test_the_template_runtime_is_what_the_bytecode_is_compiled_for() -> None:
    assert pkg.template_runtime(ROOT / "template.yaml") == "python3.12"


def test_a_sourceless_layer_ships_bytecode_in_place_of_its_source(tmp_path: Path) -> None:
    import subprocess

    compiler = pkg.probe(sys.executable)
    layer = tmp_path / "layer"
    _code_tree(layer / "python")
    source_only = {f"python/{rel}" for rel in pkg.compile_tree(layer / "python", compiler, sourceless=True)}
    out = tmp_path / "cluster.zip"
    pkg.zip_dir(layer, out, bytecode=True)
    pkg.check_bytecode(out, compiler, source_only)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "opt")
    assert names == {"python/app.pyc", "python/pkg/__init__.pyc", "python/pkg/mod.pyc", "python/pkg/py2_example.py"}
    run = subprocess.run([sys.executable, "-c", "import app; print(app.handler(None, None), app.__file__)"],
                         cwd=tmp_path / "opt" / "python", capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["42", str(tmp_path / "opt" / "python" / "app.pyc")]
