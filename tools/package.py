"""Build the Lambda artefacts without Docker: one zip per function and one per layer.

Why this way: the target is python3.12 on x86_64 Amazon Linux, while this machine may run another
Python. ``pip install --platform manylinux2014_x86_64 --python-version 3.12 --implementation cp
--only-binary=:all:`` fetches exactly the wheels Lambda needs, pinned by ``uv export`` from
uv.lock, so what is deployed is what the tests ran against.

Layer split (see template.yaml): Lambda allows 250 MB unzipped per function *including* its
layers, and helm + kubectl alone weigh ~125 MB, so the dependencies are cut by who needs them:

* ``core``    - the engine (layers/core/gitferry) and every runtime dependency that is not only
                needed by the kubernetes client (powertools, pydantic, dulwich, pyyaml, boto3...)
* ``cluster`` - ``kubernetes`` and the packages only it needs; ``kubernetes/aio`` is removed
                (the engine uses the synchronous client), used by diff, apply, api and render (Helm lookup)
* ``tools``   - helm and kubectl from layers/tools/bin (``bin/`` -> /opt/bin on PATH), render only

The api function's zip carries the web console's build output (functions/api/console/, written by
``make console``; never committed), so the page and its assets are served by the function itself.

``python tools/package.py`` writes build/functions/<stage>.zip, build/layers/<layer>/ (the
directories template.yaml's ContentUri point at, for ``sam deploy``) and build/layers/<layer>.zip,
then prints each function's unzipped size with its layers and exits 1 if one exceeds 250 MB.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
# The documented quota is "250 MB"; the service enforces 262,144,000 bytes.
LIMIT_BYTES = 262_144_000
LAYERS = ("core", "cluster", "tools")
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
PYTHON_VERSION = "3.12"
# Only imported by other packages' tests or not at runtime at all.
STRIP_DIRS = {"__pycache__", "tests", "test"}
STRIP_PATHS = ("kubernetes/aio",)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --------------------------------------------------------------------------- requirements


def export_requirements(root: Path = ROOT) -> list[str]:
    """Runtime requirements pinned by uv.lock (no dev group, no project itself)."""
    uv = shutil.which("uv") or str(root / ".cache" / "uv" / "bin" / "uv")
    out = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project", "--no-header", "--no-annotate"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [ln.strip() for ln in out.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", "-e"))]


def dependency_graph(lock_path: Path) -> tuple[dict[str, set[str]], set[str]]:
    """(package -> direct dependencies, the project's own direct dependencies) from uv.lock."""
    lock = tomllib.loads(lock_path.read_text())
    graph: dict[str, set[str]] = {}
    roots: set[str] = set()
    for pkg in lock.get("package", []):
        deps = {_norm(d["name"]) for d in pkg.get("dependencies", [])}
        for extra in pkg.get("optional-dependencies", {}).values():
            deps |= {_norm(d["name"]) for d in extra}
        graph[_norm(pkg["name"])] = deps
        if pkg.get("source", {}).get("editable") == "." or pkg.get("source", {}).get("virtual") == ".":
            roots = {_norm(d["name"]) for d in pkg.get("dependencies", [])}
    return graph, roots


def closure(graph: dict[str, set[str]], start: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen


def split_requirements(requirements: list[str], graph: dict[str, set[str]], roots: set[str]) -> dict[str, list[str]]:
    """core / cluster requirement lines: cluster gets what only ``kubernetes`` pulls in."""
    cluster_only = closure(graph, {"kubernetes"}) - closure(graph, roots - {"kubernetes"})
    out: dict[str, list[str]] = {"core": [], "cluster": []}
    for line in requirements:
        name = _norm(re.split(r"[=<>!~; \[]", line, maxsplit=1)[0])
        out["cluster" if name in cluster_only else "core"].append(line)
    return out


# --------------------------------------------------------------------------- building


def pip_install(requirements: list[str], target: Path) -> None:
    """Wheels for python3.12 / manylinux x86_64 into ``target`` (no resolution: uv.lock pinned it)."""
    req_file = target.parent / f"{target.parent.name}-requirements.txt"
    req_file.write_text("\n".join(requirements) + "\n")
    pip = [sys.executable, "-m", "pip"]
    if subprocess.run([*pip, "--version"], capture_output=True).returncode != 0:
        pip = [shutil.which("python3") or "python3", "-m", "pip"]
    cmd = [*pip, "install", "-qq", "--disable-pip-version-check", "--root-user-action=ignore", "--no-deps", "--no-compile"]
    for plat in PLATFORMS:
        cmd += ["--platform", plat]
    cmd += [
        "--python-version", PYTHON_VERSION, "--implementation", "cp", "--only-binary=:all:",
        "--target", str(target), "-r", str(req_file),
    ]
    subprocess.run(cmd, check=True)


def strip_tree(root: Path) -> int:
    """Remove what Lambda never imports; returns bytes removed."""
    removed = 0
    for rel in STRIP_PATHS:
        p = root / rel
        if p.exists():
            removed += tree_size(p)
            shutil.rmtree(p)
    for dirpath, dirnames, filenames in os.walk(root, topdown=True):
        for d in list(dirnames):
            if d in STRIP_DIRS:
                p = Path(dirpath) / d
                removed += tree_size(p)
                shutil.rmtree(p)
                dirnames.remove(d)
        for f in filenames:
            if f.endswith((".pyc", ".pyo")):
                p = Path(dirpath) / f
                removed += p.stat().st_size
                p.unlink()
            elif ".so" in f and not (Path(dirpath) / f).is_symlink():
                removed += strip_debug(Path(dirpath) / f)
    return removed


def strip_debug(lib: Path) -> int:
    """Drop the debug sections of a shared library (``strip --strip-debug``: the symbols it
    exports stay); returns bytes removed. Some wheels ship them: the jsonnet binding's
    ``_jsonnet.abi3.so`` is 27 MB with them and 2 MB without, which is what lets the render
    function carry the cluster layer (Helm lookup) within Lambda's 250 MB."""
    with lib.open("rb") as f:
        if f.read(4) != b"\x7fELF":
            return 0
    strip = shutil.which("strip")
    if strip is None:
        raise SystemExit("strip (binutils) is needed to package the layers: apt-get install binutils")
    before = lib.stat().st_size
    subprocess.run([strip, "--strip-debug", str(lib)], check=True)
    return before - lib.stat().st_size


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def zip_dir(src: Path, dest: Path, *, prefix: str = "") -> int:
    """Zip ``src`` (keeping exec bits) into ``dest`` under ``prefix``; returns unzipped bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".zip.tmp")
    total = 0
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in sorted(src.rglob("*")):
            rel = path.relative_to(src)
            if any(part in ("__pycache__",) for part in rel.parts) or path.suffix == ".pyc" or not path.is_file():
                continue
            info = zipfile.ZipInfo(str(Path(prefix) / rel) if prefix else str(rel), date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (path.stat().st_mode & 0o777 | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as fh:
                data = fh.read()
            zf.writestr(info, data)
            total += len(data)
    tmp.replace(dest)
    return total


def unzipped_size(zip_path: Path) -> int:
    with zipfile.ZipFile(zip_path) as zf:
        return sum(i.file_size for i in zf.infolist())


# --------------------------------------------------------------------------- sizes


@dataclass
class SizeRow:
    function: str
    code_bytes: int
    layers: dict[str, int]

    @property
    def total(self) -> int:
        return self.code_bytes + sum(self.layers.values())


def function_layers(template_path: Path) -> dict[str, list[str]]:
    """stage -> layer names (build/layers/<name>) for every function in the template."""
    from local.aws import load_sam_template

    sam = load_sam_template(template_path)
    res = sam["Resources"]
    glob_layers = sam.get("Globals", {}).get("Function", {}).get("Layers", [])
    out: dict[str, list[str]] = {}
    for decl in res.values():
        if decl["Type"] != "AWS::Serverless::Function":
            continue
        stage = Path(decl["Properties"]["CodeUri"]).name
        names = []
        for ref in [*glob_layers, *decl["Properties"].get("Layers", [])]:
            layer = res[ref["Ref"]]["Properties"]["ContentUri"] if isinstance(ref, dict) else ref
            names.append(Path(layer).name)
        out[stage] = names
    return out


def size_report(
    layers_of: dict[str, list[str]], code_zips: dict[str, Path], layer_zips: dict[str, Path]
) -> list[SizeRow]:
    layer_bytes = {name: unzipped_size(path) for name, path in layer_zips.items()}
    return [
        SizeRow(fn, unzipped_size(code_zips[fn]), {name: layer_bytes[name] for name in layers})
        for fn, layers in sorted(layers_of.items())
    ]


def format_report(rows: list[SizeRow], limit: int = LIMIT_BYTES) -> str:
    mb = 1024 * 1024
    lines = [f"{'function':<10} {'code MB':>8} {'layers':<22} {'total MB':>9}  limit {limit / mb:.0f} MB"]
    for r in rows:
        layers = "+".join(f"{n}:{b / mb:.0f}" for n, b in r.layers.items())
        flag = "  TOO BIG" if r.total > limit else ""
        lines.append(f"{r.function:<10} {r.code_bytes / mb:>8.2f} {layers:<22} {r.total / mb:>9.1f}{flag}")
    return "\n".join(lines)


def oversized(rows: list[SizeRow], limit: int = LIMIT_BYTES) -> list[SizeRow]:
    return [r for r in rows if r.total > limit]


# --------------------------------------------------------------------------- main


def build(root: Path = ROOT, build_dir: Path = BUILD) -> list[SizeRow]:
    template = root / "template.yaml"
    layers_of = function_layers(template)
    fn_dir = build_dir / "functions"
    layer_dir = build_dir / "layers"
    code_zips: dict[str, Path] = {}
    for stage in layers_of:
        src = root / "functions" / stage
        if not src.is_dir():
            raise SystemExit(f"functions/{stage}/ does not exist (template.yaml names it)")
        if stage == "api" and not (src / "console" / "index.html").is_file():
            raise SystemExit("functions/api/console/index.html missing: run `make console` (npm ci + esbuild) first")
        code_zips[stage] = fn_dir / f"{stage}.zip"
        zip_dir(src, code_zips[stage])

    graph, roots = dependency_graph(root / "uv.lock")
    reqs = split_requirements(export_requirements(root), graph, roots)
    layer_zips: dict[str, Path] = {}
    for name in ("core", "cluster"):
        content = layer_dir / name
        shutil.rmtree(content, ignore_errors=True)
        (content / "python").mkdir(parents=True)
        pip_install(reqs[name], content / "python")
        if name == "core":
            shutil.copytree(root / "layers" / "core" / "gitferry", content / "python" / "gitferry")
        strip_tree(content / "python")
        layer_zips[name] = layer_dir / f"{name}.zip"
        zip_dir(content, layer_zips[name])

    tools_src = root / "layers" / "tools" / "bin"
    if not (tools_src / "helm").is_file() or not (tools_src / "kubectl").is_file():
        raise SystemExit("layers/tools/bin/{helm,kubectl} missing: run `make tools` first")
    content = layer_dir / "tools"
    shutil.rmtree(content, ignore_errors=True)
    shutil.copytree(tools_src, content / "bin")
    layer_zips["tools"] = layer_dir / "tools.zip"
    zip_dir(content, layer_zips["tools"])
    return size_report(layers_of, code_zips, layer_zips)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=BUILD)
    args = parser.parse_args(argv)
    rows = build(ROOT, args.build_dir)
    print(format_report(rows))
    bad = oversized(rows)
    if bad:
        print(f"error: over the 250 MB unzipped limit: {', '.join(r.function for r in bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
