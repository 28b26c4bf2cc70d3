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

Bytecode: Lambda's code directories are read-only, so a package without ``.pyc`` files compiles
every module it imports at every cold start (``import app`` 1.1-1.45 s against 0.45-0.67 s with
bytecode, measured on 3.11). Every zip therefore carries ``__pycache__/*.cpython-3XX.pyc``
compiled by an interpreter of the runtime's version (``--python``, else ``python3.12`` on PATH,
else ``uv python find 3.12``), in ``unchecked-hash`` mode (nothing is stat'ed against the
sources). The pycs' magic number is checked against that interpreter's before zipping, and
bytecode is never labelled for a runtime it was not compiled for: a ``--python`` of another
version is refused. With no such interpreter the build says so and ships no bytecode. The cluster
layer is shipped sourceless (``SOURCELESS_LAYERS``): its source beside its bytecode would take
the render function over 250 MB (measured: +15.8 MB of pycs in core, +25.8 MB in cluster).

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
# Layers shipped as bytecode only (``mod.pyc`` in place of ``mod.py``): the kubernetes client is
# 37 MB of generated source, and its source beside its bytecode would take the render function
# (core + tools + cluster) over Lambda's 250 MB. Tracebacks there keep file and line, not text.
SOURCELESS_LAYERS = frozenset({"cluster"})


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


# --------------------------------------------------------------------------- bytecode


@dataclass(frozen=True)
class Compiler:
    """An interpreter that compiles bytecode for one runtime: its path, ``major.minor`` and the
    magic number its ``.pyc`` files start with."""

    python: str
    version: str
    magic: bytes

    @property
    def tag(self) -> str:  # what its pycs are named: mod.cpython-312.pyc
        return "cpython-" + self.version.replace(".", "")


def probe(python: str) -> Compiler:
    """What ``python`` is; SystemExit when it does not run (a pyenv shim of a version not
    installed, say)."""
    try:
        out = subprocess.run([python, "-c", "import sys, importlib.util as u; "
                              "print('%d.%d' % sys.version_info[:2], u.MAGIC_NUMBER.hex(), sys.implementation.name)"],
                             capture_output=True, text=True, check=True, timeout=60).stdout.split()
    except (OSError, subprocess.SubprocessError) as exc:
        raise SystemExit(f"{python} does not run: {exc}") from None
    if out[2] != "cpython":
        raise SystemExit(f"{python} is {out[2]}, not CPython: Lambda's runtime cannot use its bytecode")
    return Compiler(python, out[0], bytes.fromhex(out[1]))


def find_compiler(runtime: str, given: str | None = None, root: Path = ROOT) -> Compiler | None:
    """The interpreter to compile for ``runtime`` (``python3.12``): ``given`` (refused when it is
    another version), else ``python3.12`` on PATH, else one uv manages. None when there is none."""
    version = runtime.removeprefix("python")
    if given:
        found = probe(given)
        if found.version != version:
            raise SystemExit(f"{given} is Python {found.version}: its bytecode cannot be labelled for the "
                             f"{runtime} runtime (Python {version} would ignore it and compile again)")
        return found
    candidates = [shutil.which(f"python{version}")]
    uv = shutil.which("uv") or str(root / ".cache" / "uv" / "bin" / "uv")
    if Path(uv).is_file():
        try:
            found = subprocess.run([uv, "python", "find", version], capture_output=True, text=True, timeout=60)
            candidates.append(found.stdout.strip() if found.returncode == 0 else None)
        except (OSError, subprocess.TimeoutExpired):
            pass
    for candidate in candidates:
        if candidate:
            try:
                compiler = probe(candidate)
            except SystemExit as exc:  # found but unusable: say so, look further
                print(f"note: {exc}", file=sys.stderr)
                continue
            if compiler.version == version:
                return compiler
    return None


def compile_tree(root: Path, compiler: Compiler, *, sourceless: bool = False) -> set[str]:
    """Compile every ``.py`` under ``root`` with ``compiler``, then check each pyc: present and
    carrying the compiler's magic number. A module the interpreter cannot compile (a package's
    Python 2 example) is named and left as source; returns those (paths relative to ``root``)."""
    subprocess.run([compiler.python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                    str(root)], capture_output=True, text=True, timeout=1800)
    missing: set[str] = set()
    for src in root.rglob("*.py"):
        pyc = src.parent / "__pycache__" / f"{src.stem}.{compiler.tag}.pyc"
        if not pyc.is_file():
            missing.add(str(src.relative_to(root)))
            continue
        with pyc.open("rb") as f:
            if f.read(4) != compiler.magic:
                raise SystemExit(f"{pyc}: not bytecode of Python {compiler.version} (magic number differs)")
    for rel in sorted(missing):
        print(f"note: {rel} does not compile with Python {compiler.version}; shipped as source", file=sys.stderr)
    if sourceless:  # the pyc in the source's place (Python's sourceless loader), the source dropped
        for src in root.rglob("*.py"):
            pyc = src.parent / "__pycache__" / f"{src.stem}.{compiler.tag}.pyc"
            if pyc.is_file():
                pyc.replace(src.with_suffix(".pyc"))
                src.unlink()
        for cache in sorted(root.rglob("__pycache__"), reverse=True):
            if cache.is_dir() and not any(cache.iterdir()):
                cache.rmdir()
    return missing


def check_bytecode(zip_path: Path, compiler: Compiler, source_only: set[str] | frozenset[str] = frozenset()) -> None:
    """Every ``.py`` in the zip (but the ``source_only`` ones :func:`compile_tree` could not
    compile) has its pyc for ``compiler`` beside it with the compiler's magic number, and no pyc
    of another version is in it."""
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        for name in names:
            if name.endswith(".pyc"):
                sourceless = "__pycache__/" not in name
                if (not sourceless and f".{compiler.tag}.pyc" not in name) or zf.read(name)[:4] != compiler.magic:
                    raise SystemExit(f"{zip_path.name}: {name} is not bytecode of Python {compiler.version}")
        uncompiled = sorted(n for n in names if n.endswith(".py") and n not in source_only and
                            _pyc_name(n, compiler) not in names)
        if uncompiled:
            raise SystemExit(f"{zip_path.name}: {len(uncompiled)} modules without bytecode, e.g. {uncompiled[0]}")


def _pyc_name(source: str, compiler: Compiler) -> str:
    parent = Path(source).parent
    return str(parent / "__pycache__" / f"{Path(source).stem}.{compiler.tag}.pyc") if str(parent) != "." else \
        f"__pycache__/{Path(source).stem}.{compiler.tag}.pyc"


def zip_dir(src: Path, dest: Path, *, prefix: str = "", bytecode: bool = False) -> int:
    """Zip ``src`` (keeping exec bits) into ``dest`` under ``prefix``; returns unzipped bytes.
    ``bytecode``: keep ``__pycache__/*.pyc`` (written by :func:`compile_tree`)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".zip.tmp")
    total = 0
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in sorted(src.rglob("*")):
            rel = path.relative_to(src)
            if not path.is_file() or (not bytecode and ("__pycache__" in rel.parts or path.suffix == ".pyc")):
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


def template_runtime(template_path: Path) -> str:
    from local.aws import load_sam_template

    sam = load_sam_template(template_path)
    runtimes = {decl["Properties"].get("Runtime") or sam.get("Globals", {}).get("Function", {}).get("Runtime")
                for decl in sam["Resources"].values() if decl["Type"] == "AWS::Serverless::Function"}
    if len(runtimes) != 1 or not all(isinstance(r, str) and r.startswith("python3.") for r in runtimes):
        raise SystemExit(f"template.yaml: one python3.x Runtime for every function expected, found {sorted(map(str, runtimes))}")
    return runtimes.pop()


def _staged_zip(src: Path, dest: Path, compiler: Compiler | None, staging: Path) -> None:
    """Zip a function's code directory; with bytecode, compiled in a copy (the source tree
    stays free of pycs)."""
    if compiler is None:
        zip_dir(src, dest)
        return
    copy = staging / dest.stem
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    source_only = compile_tree(copy, compiler)
    zip_dir(copy, dest, bytecode=True)
    check_bytecode(dest, compiler, source_only)


def build(root: Path = ROOT, build_dir: Path = BUILD, python: str | None = None) -> list[SizeRow]:
    template = root / "template.yaml"
    layers_of = function_layers(template)
    runtime = template_runtime(template)
    compiler = find_compiler(runtime, python, root)
    if compiler is None:
        print(f"warning: no Python {runtime.removeprefix('python')} here (not on PATH, not found by uv): the "
              f"packages carry NO bytecode and every cold start compiles every module it imports. Install one "
              f"(`uv python install {runtime.removeprefix('python')}`) or pass --python, and package again.",
              file=sys.stderr)
    else:
        print(f"bytecode: compiled by {compiler.python} (Python {compiler.version}) for {runtime}", file=sys.stderr)
    staging = build_dir / "staging"
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
        _staged_zip(src, code_zips[stage], compiler, staging)

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
        source_only = ({f"python/{rel}" for rel in compile_tree(content / "python", compiler,
                                                                sourceless=name in SOURCELESS_LAYERS)}
                       if compiler else set())
        layer_zips[name] = layer_dir / f"{name}.zip"
        zip_dir(content, layer_zips[name], bytecode=compiler is not None)
        if compiler is not None:
            check_bytecode(layer_zips[name], compiler, source_only)

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
    parser.add_argument("--python", help="the interpreter that compiles the bytecode; it must be the runtime's "
                                          "version (template.yaml's Runtime)")
    args = parser.parse_args(argv)
    rows = build(ROOT, args.build_dir, args.python)
    print(format_report(rows))
    bad = oversized(rows)
    if bad:
        print(f"error: over the 250 MB unzipped limit: {', '.join(r.function for r in bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
