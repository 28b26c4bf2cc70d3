"""Sources rendered as Argo CD does: plain directories (with Jsonnet), Kustomize and Helm.

:func:`render_source` detects the type (:func:`detect_source_type`) and dispatches;
Kustomize runs ``kubectl kustomize`` and Helm ``helm template`` (binaries from the
tools layer, :func:`find_tool`) in a throw-away directory under the temp dir, never
writing into the checked-out tree (a cache shared by renders). Both get a minimal
environment, a timeout and a bound on output; their errors become RenderErrors
naming the file. Every reference a kustomization or a Helm source makes (bases,
patches, value files, symlinks in charts) is resolved and refused when it leaves
the repository; remote bases are not fetched, and chart dependencies only by
:mod:`gitferry.helmdeps` when the caller gives it the registered credentials.

Directory sources, a path of plain YAML/JSON manifests:

Argo CD's rules (repo-server ``findManifests``), kept because users rely on them:

- files ending ``.yaml``, ``.yml`` or ``.json`` are manifests, ``.jsonnet`` files are
  evaluated (``directory.jsonnet`` extVars / tlas / libs; one object or an array of
  objects; ``.libsonnet`` files are only imported); everything else (README.md,
  scripts ...) is ignored;
- ``recurse`` (default false) descends into sub-directories; ``include`` /
  ``exclude`` are globs matched against the path relative to ``path``, where
  ``*`` also crosses ``/`` and ``{a.yaml,b.yaml}`` is a set of alternatives;
- multi-document YAML, empty documents skipped, ``kind: List`` (and any
  ``*List`` with ``items``) flattened;
- files in lexical path order, documents in file order: the same commit always
  gives the same list, so the content-addressed S3 key is stable.

Security (Argo CD advisories): ``path`` and every symlink are resolved, and
anything that lands outside the checked-out repository is refused.

YAML is read the way Kubernetes tooling reads it: timestamps stay strings and
mapping keys become strings, so the result is plain JSON data.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import yaml

from gitferry import loader
from gitferry.children import remember_source
from gitferry.errors import RenderError, redact_url
from gitferry.model import ApplicationSource, DirectoryOptions, ref_value_file
from gitferry.paths import _REMOTE, _inside, _repo_rel, resolve_in_repo  # noqa: F401 - re-exported

__all__ = [
    "render_directory",
    "render_source",
    "detect_source_type",
    "find_tool",
    "tool_runs",
    "glob_match",
    "MAX_TOTAL_BYTES",
    "TOOL_TIMEOUT_SECONDS",
]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json", ".jsonnet")
#: bound on what one render reads (a hostile repo must not exhaust a Lambda's memory)
MAX_TOTAL_BYTES = 64 * 1024 * 1024
#: one object as the API server would store it (etcd's default request limit is 1.5 MiB)
MAX_OBJECT_BYTES = 1536 * 1024
#: objects one application may render
MAX_OBJECTS = 50_000
HOOK_ANNOTATION = "argocd.argoproj.io/hook"
HELM_HOOK_ANNOTATION = "helm.sh/hook"

# --------------------------------------------------------------------------- globs


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """gobwas/glob semantics without separators (as Argo CD calls it): ``*`` and
    ``**`` match anything, ``?`` one character, ``[abc]`` / ``[!abc]`` classes,
    ``{a,b}`` alternatives (nestable), ``\\`` escapes."""
    out: list[str] = []
    depth = 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            while i + 1 < len(pattern) and pattern[i + 1] == "*":
                i += 1
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    out.extend(")" * depth)
    return re.compile("".join(out), re.DOTALL)


def glob_match(pattern: str, rel_path: str) -> bool:
    """Whether ``rel_path`` (``/``-separated, relative to the source path) matches."""
    return _glob_regex(pattern).fullmatch(rel_path) is not None


# --------------------------------------------------------------------------- render


def _options(directory_options: DirectoryOptions | dict[str, Any] | None) -> DirectoryOptions:
    if directory_options is None:
        return DirectoryOptions()
    if isinstance(directory_options, DirectoryOptions):
        return directory_options
    return DirectoryOptions.model_validate(directory_options)


def _candidate_files(root: Path, base: Path, opts: DirectoryOptions) -> Iterator[tuple[str, Path]]:
    """(path relative to ``base``, real file) for each manifest file, in lexical order."""
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d != ".git") if opts.recurse else []
        here = Path(dirpath)
        for fname in sorted(filenames):
            full = here / fname
            rel = full.relative_to(base).as_posix()
            if not fname.endswith(MANIFEST_SUFFIXES):
                continue
            if full.is_symlink():
                real = _symlink_target(full, root)
                if not real.is_file():
                    continue  # dangling, or to a directory / device: Argo CD skips it with a warning
            if opts.exclude and glob_match(opts.exclude, rel):
                continue
            if opts.include and not glob_match(opts.include, rel):
                continue
            yield rel, full


def _parse(text: str | bytes, rel: str, *, as_json: bool | None = None) -> list[Any]:
    """Documents of one file through the bounded parser (:mod:`gitferry.loader`); every
    failure, including a bound exceeded, is a RenderError naming ``rel`` (and the line)."""
    try:
        return loader.load_all(text, as_json=rel.endswith(".json") if as_json is None else as_json)
    except loader.LoadError as exc:
        raise RenderError(exc.message, rel, exc.line) from None


def _check_object(obj: Any, rel: str, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise RenderError(f"{where}: expected a Kubernetes object (a mapping), got {type(obj).__name__}", rel)
    missing = [f for f in ("apiVersion", "kind") if not isinstance(obj.get(f), str) or not obj.get(f)]
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not (isinstance(name, str) and name):
        annotations = (meta or {}).get("annotations") or {} if isinstance(meta, dict) else {}
        # hooks (Argo CD's or Helm's annotation) may leave the name to the API server
        generated = isinstance(meta, dict) and meta.get("generateName") and (
            HOOK_ANNOTATION in annotations or HELM_HOOK_ANNOTATION in annotations)
        if not generated:
            missing.append("metadata.name")
    if missing:
        raise RenderError(f"{where}: missing {', '.join(missing)}", rel)
    size = len(json.dumps(obj, separators=(",", ":")))
    if size > MAX_OBJECT_BYTES:
        raise RenderError(f"{where}: {obj['kind']} {name or ''} is {size} bytes; the API server stores at most "
                          f"{MAX_OBJECT_BYTES} (etcd's request limit)", rel)
    return remember_source(obj, rel)  # an Application (app of apps) keeps its file for its errors


def _is_list(obj: dict[str, Any]) -> bool:
    kind = obj.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list)


def render_directory(
    root: Path | str,
    path: str = ".",
    directory_options: DirectoryOptions | dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Manifests of directory ``path`` inside checked-out repo ``root``.

    Raises :class:`RenderError` naming the file (relative to the repo) and, for
    parse errors, the line; or the document index for objects that are not
    Kubernetes objects.
    """
    root, base, rel_path = _source_base(Path(root), path)
    opts = _options(directory_options)

    manifests: list[dict[str, Any]] = []
    total = 0
    for _rel, full in _candidate_files(root, base, opts):
        repo_rel = _repo_rel(full, root)
        try:
            raw = Path(os.path.realpath(full)).read_bytes()
        except OSError as exc:
            raise RenderError(f"cannot read: {exc.strerror}", repo_rel) from None
        total += len(raw)
        if total > MAX_TOTAL_BYTES:
            raise RenderError(f"manifests under {rel_path!r} exceed {MAX_TOTAL_BYTES // (1024 * 1024)} MiB")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise RenderError("not UTF-8 text", repo_rel) from None
        if full.name.endswith(".jsonnet"):
            text = _evaluate_jsonnet(root, base, Path(os.path.realpath(full)), repo_rel, opts)
            total += len(text)
            if total > MAX_TOTAL_BYTES:
                raise RenderError(f"manifests under {rel_path!r} exceed {MAX_TOTAL_BYTES // (1024 * 1024)} MiB")
            docs = _parse(text, repo_rel, as_json=True)
            # Argo CD: the result is one object or an array of objects
            docs = docs[0] if len(docs) == 1 and isinstance(docs[0], list) else docs
        else:
            docs = _parse(text, repo_rel)
        for index, doc in enumerate(docs):
            where = f"document {index}"
            if isinstance(doc, dict) and _is_list(doc):
                for j, item in enumerate(doc["items"]):
                    manifests.append(_check_object(item, repo_rel, f"{where}, item {j}"))
                continue
            manifests.append(_check_object(doc, repo_rel, where))
    return manifests


# --------------------------------------------------------------------------- jsonnet

#: ``STATIC ERROR: <file>:<line>:<col>...`` or a trace frame ``\t<file>:<line>:<col>...``
_JSONNET_WHERE = re.compile(r"(?:^STATIC ERROR: |^\t)(/[^\t\n]*?):\(?(\d+):", re.M)


def _evaluate_jsonnet(root: Path, base: Path, file: Path, repo_rel: str, opts: DirectoryOptions) -> str:
    """JSON text of ``.jsonnet`` file ``file`` as Argo CD evaluates it (``directory.jsonnet``
    extVars, tlas, libs; imports searched in the file's directory, then in ``path`` and the
    libs), by :mod:`gitferry.jsonnet_eval` in a child process bounded like helm and kustomize.
    Errors are RenderErrors naming the file and line Jsonnet reports."""
    import _jsonnet

    import gitferry

    jopts = opts.jsonnet
    libs = [resolve_in_repo(root, root, lib, file=None, field="spec.source.directory.jsonnet.libs",
                            absolute="repo") for lib in (jopts.libs if jopts else [])]
    request = {
        "file": str(file), "root": str(root), "jpaths": [str(base), *map(str, libs)],
        "extVars": {v.name: v.value for v in (jopts.ext_vars if jopts else []) if not v.code},
        "extCodes": {v.name: v.value for v in (jopts.ext_vars if jopts else []) if v.code},
        "tlaVars": {v.name: v.value for v in (jopts.tlas if jopts else []) if not v.code},
        "tlaCodes": {v.name: v.value for v in (jopts.tlas if jopts else []) if v.code},
    }
    python_path = os.pathsep.join(dict.fromkeys([str(Path(gitferry.__file__).resolve().parent.parent),
                                                 str(Path(_jsonnet.__file__).resolve().parent)]))
    with tempfile.TemporaryDirectory(prefix="gitferry-jsonnet-") as tmp:
        work = Path(tmp)
        (work / "request.json").write_text(json.dumps(request))
        code, stdout, stderr = _run_tool([sys.executable, "-m", "gitferry.jsonnet_eval", str(work / "request.json")],
                                         work=work, cwd=file.parent, what="jsonnet", subject=repo_rel,
                                         extra_env={"PYTHONPATH": python_path}, go=False)
        if code == 3:
            raise RenderError(f"jsonnet ran out of memory (limit {_tool_memory_mb()} MiB)", repo_rel)
        if code != 0:
            raise _jsonnet_error(stderr, root, work, repo_rel)
    return stdout


def _jsonnet_error(stderr: str, root: Path, work: Path, repo_rel: str) -> RenderError:
    """The binding's message as a RenderError at the first location inside the repository it
    names (where the error happened; an imported library's line when it is there)."""
    file, line = repo_rel, None
    for m in _JSONNET_WHERE.finditer(stderr):
        where = Path(m.group(1))
        if _inside(where, root):
            file, line = where.relative_to(root).as_posix(), int(m.group(2))
            break
    first = stderr.strip().splitlines()[0] if stderr.strip() else "jsonnet failed without a message"
    first = re.sub(r"^STATIC ERROR: /[^\t\n]*?:[\d:()-]+:? ?", "STATIC ERROR: ", first)
    return RenderError(_clean_stderr(first, root, work), file, line)


# --------------------------------------------------------------------------- sources: detection

SourceType = Literal["directory", "kustomize", "helm"]

#: file names that make a directory a kustomization (kustomize's own list, Argo CD's test)
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
#: seconds one helm / kubectl kustomize run may take; the render Lambda has 300 in all
TOOL_TIMEOUT_SECONDS = 120
#: where ``make tools`` extracts helm and kubectl; PATH (``/opt/bin`` in Lambda) wins
_LOCAL_TOOLS = Path(__file__).resolve().parent.parent.parent / "tools" / "bin"
_STDERR_MAX = 2000


def _source_base(root: Path, path: str) -> tuple[Path, Path, str]:
    """(real repo root, real source directory, the path as written) with the same refusals
    as :func:`render_directory`: absolute paths and anything resolving outside the repo."""
    real_root = Path(os.path.realpath(root))
    rel_path = (path or ".").strip()
    base = resolve_in_repo(real_root, real_root, rel_path, file=None, field="path")
    if not base.is_dir():
        raise RenderError(f"path {rel_path!r} does not exist in the repository (or is not a directory)")
    return real_root, base, rel_path


def _kustomization_file(directory: Path) -> Path | None:
    # os.listdir, not Path.exists: on a case-insensitive filesystem ``Kustomization`` would
    # also match ``kustomization.yaml`` and name the wrong file in messages.
    try:
        present = set(os.listdir(directory))
    except OSError:
        return None
    return next((directory / n for n in KUSTOMIZATION_FILES if n in present), None)


def detect_source_type(root: Path | str, source: ApplicationSource) -> SourceType:
    """How Argo CD would render ``source``: an explicit ``helm`` / ``kustomize`` /
    ``directory`` block decides; otherwise a kustomization file at ``path`` means Kustomize
    (it wins over a ``Chart.yaml`` beside it, as in Argo CD's discovery), a ``Chart.yaml``
    means Helm, anything else is a plain directory.

    A ``directory`` block on a path holding a chart or kustomization is refused naming
    both: rendering the chart's YAML files as manifests would deploy templates verbatim."""
    real_root, base, rel_path = _source_base(Path(root), source.path)
    if source.helm is not None:
        return "helm"
    if source.kustomize is not None:
        return "kustomize"
    kfile = _kustomization_file(base)
    chart = base / "Chart.yaml"
    if source.directory is not None:
        found, kind = (kfile, "Kustomize") if kfile else (chart, "Helm") if chart.is_file() else (None, "")
        if found is not None:
            raise RenderError(
                f"spec.source.directory is set but path {rel_path!r} is a {kind} source ({found.name}); "
                f"remove spec.source.directory to render it with {kind.lower()}, or point path at plain manifests",
                _repo_rel(found, real_root),
            )
        return "directory"
    if kfile is not None:
        return "kustomize"
    if chart.is_file():
        return "helm"
    return "directory"


def render_source(
    root: Path,
    source: ApplicationSource,
    *,
    app_name: str,
    namespace: str | None,
    kube_version: str | None = None,
    refs: dict[str, Path] | None = None,
    kubeconfig: Path | None = None,
    dependencies: Any = None,
) -> list[dict[str, Any]]:
    """Manifests of ``source`` in checked-out repo ``root``: a directory, a kustomization or
    a Helm chart (see :func:`detect_source_type`). ``app_name`` is the default Helm release
    name and ``namespace`` (the destination namespace) the default Helm namespace, as in
    Argo CD. Every failure is a :class:`RenderError` naming the file when known.

    ``refs``: repository roots of a multi-source app's ``ref`` sources, for ``$<ref>/<path>``
    value files. ``kubeconfig``: a Helm source renders with ``--dry-run=server`` against it so
    ``lookup`` reads the cluster (:mod:`gitferry.lookup_proxy`, read-only); without it charts
    render offline and ``lookup`` returns nothing, as in Argo CD. ``dependencies`` (a
    :class:`gitferry.helmdeps.Access`) lets a chart's missing dependencies be built
    (:mod:`gitferry.helmdeps`); without it they must be vendored."""
    kind = detect_source_type(root, source)
    if kind == "kustomize":
        manifests = _render_kustomize(Path(root), source)
    elif kind == "helm":
        manifests = _render_helm(Path(root), source, app_name=app_name, namespace=namespace,
                                 kube_version=kube_version, refs=refs or {}, kubeconfig=kubeconfig,
                                 dependencies=dependencies)
    else:
        manifests = render_directory(root, source.path, source.directory)
    if len(manifests) > MAX_OBJECTS:
        raise RenderError(f"path {source.path!r} renders {len(manifests)} objects; gitferry manages at most "
                          f"{MAX_OBJECTS} per application")
    return manifests


# --------------------------------------------------------------------------- running the tools


def find_tool(name: str) -> str:
    """Path of ``helm`` / ``kubectl``: PATH first (``/opt/bin`` from the tools layer in
    Lambda, the runner puts ``layers/tools/bin`` there locally), then ``layers/tools/bin``
    of this checkout so engine tests and scripts work without the runner."""
    found = shutil.which(name)
    if found:
        return found
    local = _LOCAL_TOOLS / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    raise RenderError(f"{name} is not installed: not on PATH nor in {_LOCAL_TOOLS} (run `make tools`)")


def _tool_env(work: Path) -> dict[str, str]:
    """A minimal environment: no AWS credentials or tokens reach a chart or a kustomize
    plugin, and every home/cache directory is under ``work`` (Lambda's only writable place
    is /tmp, and one render must not see another's helm repositories or plugins)."""
    homes = {
        "HOME": work / "home",
        "HELM_CACHE_HOME": work / "helm" / "cache",
        "HELM_CONFIG_HOME": work / "helm" / "config",
        "HELM_DATA_HOME": work / "helm" / "data",
        "XDG_CACHE_HOME": work / "cache",
    }
    for d in homes.values():
        d.mkdir(parents=True, exist_ok=True)
    env = {k: str(v) for k, v in homes.items()}
    env.update({
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KUBECONFIG": str(work / "no-kubeconfig"),  # template/kustomize never talk to a cluster
        "HELM_PLUGINS": str(work / "helm" / "plugins"),
        "LANG": "C.UTF-8",
    })
    return env


def _clean_stderr(text: str, root: Path, work: Path) -> str:
    """Tool stderr fit for a status condition: repo paths made relative, the temporary
    overlay hidden, URL credentials dropped, helm's hints removed, bounded in size."""
    text = redact_url(text)
    # kubectl >= 1.30 logs errors through klog: E1126 16:05:22.244325 12160 run.go:72] "command failed" err="..."
    klog = re.search(r'\] "command failed" err="((?:[^"\\]|\\.)*)"', text)
    if klog:
        text = json.loads(f'"{klog.group(1)}"')
    for prefix, repl in ((str(work) + "/", "<overlay>/"), (str(work), "<overlay>"),
                         (str(root) + "/", ""), (str(root), ".")):
        text = text.replace(prefix, repl)
    lines = [ln.rstrip() for ln in text.splitlines()
             if ln.strip() and not ln.startswith(("Use --debug flag", "WARNING:", "walk.go:"))]
    text = "\n".join(lines)
    text = re.sub(r"^(?:Error|error): ", "", text)
    if len(text) > _STDERR_MAX:
        text = text[:_STDERR_MAX] + " ..."
    return text or "failed without a message"


#: address space one helm / kustomize run may map (RLIMIT_AS); Go reserves several hundred MiB
#: of it up front, so this is about 1 GiB of heap. ``TOOL_MEMORY_MB`` overrides it.
TOOL_MEMORY_MB = 1536
_GO_OOM = re.compile(r"fatal error: (?:runtime: )?out of memory|runtime: out of memory|"
                     r"failed to reserve page summary memory|cannot allocate memory|runtime: mmap")
_GO_DUMP = re.compile(r"^(?:goroutine \d+ |runtime stack:|\t|\S+\.go:\d+|created by )", re.M)


_TOOL_RUNS = 0


def tool_runs() -> int:
    """How many helm / kustomize / jsonnet processes this process has started (the render
    cache's proof: a second render of the same inputs starts none)."""
    return _TOOL_RUNS


def _tool_memory_mb() -> int:
    return int(os.environ.get("TOOL_MEMORY_MB") or TOOL_MEMORY_MB)


def _limits(memory_bytes: int) -> Callable[[], None]:
    def apply() -> None:  # in the child, between fork and exec
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _run_tool(argv: list[str], *, work: Path, cwd: Path, what: str, subject: str = "",
              extra_env: dict[str, str] | None = None, go: bool = True) -> tuple[int, str, str]:
    """Run ``argv`` with a timeout and a memory bound (RLIMIT_AS, and GOMEMLIMIT so Go's
    collector works hard before the bound is reached); stdout goes to a file so its size is
    checked before it is read (a chart looping over a huge range must not exhaust the Lambda's
    memory). A Go out-of-memory dump or a kill by signal becomes one readable RenderError."""
    global _TOOL_RUNS
    _TOOL_RUNS += 1
    out_path = work / "stdout"
    memory_mb = _tool_memory_mb()
    env = _tool_env(work)
    env["GOMEMLIMIT"] = f"{max(64, memory_mb // 3)}MiB"
    env["GOTRACEBACK"] = "none"  # a panic prints its message, not every goroutine's stack
    env.update(extra_env or {})
    try:
        with out_path.open("wb") as out:
            proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=subprocess.PIPE, timeout=TOOL_TIMEOUT_SECONDS,
                                  check=False, preexec_fn=_limits(memory_mb * 1024 * 1024))
    except subprocess.TimeoutExpired:
        raise RenderError(f"{what} did not finish within {TOOL_TIMEOUT_SECONDS}s"
                          + (f" rendering {subject}" if subject else "")) from None
    except OSError as exc:
        raise RenderError(f"cannot run {what}: {exc.strerror}") from None
    stderr = proc.stderr[-256 * 1024:].decode("utf-8", errors="replace")
    tool = what.split()[0]
    if go and proc.returncode != 0 and _GO_OOM.search(stderr):
        raise RenderError(f"{tool} ran out of memory rendering {subject or 'the source'} "
                          f"(limit {memory_mb} MiB)")
    if not go and proc.returncode == -6:  # C++ std::bad_alloc under RLIMIT_AS aborts the process
        raise RenderError(f"{tool} ran out of memory (limit {memory_mb} MiB)", subject or None)
    if proc.returncode < 0:
        raise RenderError(f"{tool} was killed by signal {-proc.returncode} rendering {subject or 'the source'}")
    if out_path.stat().st_size > MAX_TOTAL_BYTES:
        raise RenderError(f"{what} produced more than {MAX_TOTAL_BYTES // (1024 * 1024)} MiB of manifests")
    stdout = out_path.read_bytes().decode("utf-8", errors="replace")
    if go and proc.returncode != 0 and _GO_DUMP.search(stderr):  # a Go panic: its message, not its stacks
        stderr = "\n".join(ln for ln in stderr.splitlines()[:20] if ln.strip() and not _GO_DUMP.match(ln))
    return proc.returncode, stdout, stderr


def _collect(docs: list[Any], rel: str, out: list[dict[str, Any]]) -> None:
    """Append the objects of parsed ``docs`` with directory rules (``*List`` flattened)."""
    for index, doc in enumerate(docs):
        where = f"document {index}"
        if isinstance(doc, dict) and _is_list(doc):
            for j, item in enumerate(doc["items"]):
                out.append(_check_object(item, rel, f"{where}, item {j}"))
            continue
        out.append(_check_object(doc, rel, where))


def _check_symlinks(tree: Path, root: Path) -> None:
    """Refuse any symlink under ``tree`` that resolves outside the repo: helm follows
    symlinks when it loads a chart, so ``.Files.Get`` could otherwise read the Lambda's
    files (Argo CD advisory GHSA-63qx-x74g-jcr7)."""
    seen: set[Path] = set()
    pending = [tree]
    while pending:
        top = pending.pop()
        if top in seen:
            continue
        seen.add(top)
        for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
            dirnames[:] = [d for d in dirnames if d != ".git"]
            for name in [*dirnames, *filenames]:
                full = Path(dirpath) / name
                if not full.is_symlink():
                    continue
                real = _symlink_target(full, root)
                if real.is_dir():
                    pending.append(real)


def _symlink_target(link: Path, root: Path) -> Path:
    """Where symlink ``link`` (inside ``root``) lands, or a RenderError naming it."""
    try:
        return resolve_in_repo(root, link.parent, link.name, file=_repo_rel(link, root), field="symlink")
    except RenderError:
        raise RenderError("illegal symlink: it points outside the repository", _repo_rel(link, root)) from None


def _inside_repo(root: Path, base: Path, ref: str, rel_file: str | None, what: str) -> Path:
    """A Helm value file / Application patch path: repo-absolute ``/x`` allowed (Argo CD)."""
    return resolve_in_repo(root, base, ref, file=rel_file, field=what, absolute="repo")


# --------------------------------------------------------------------------- kustomize

#: kustomization fields naming files or directories, lower-cased: kustomize unmarshals through
#: Go's encoding/json, which matches keys case-insensitively (``RESOURCES:`` is ``resources``)
_LIST_FIELDS = ("resources", "bases", "components", "crds", "configurations", "generators",
                "transformers", "validators", "patchesstrategicmerge")
_PATH_ITEM_FIELDS = ("patches", "patchesjson6902", "replacements")
_GENERATOR_FIELDS = ("configmapgenerator", "secretgenerator")
_HELM_FIELDS = ("helmcharts", "helmchartinflationgenerator", "helmglobals")
#: keys that name a file in inline generator / transformer configs
_INLINE_PATH_KEYS = ("path", "files", "envs", "env", "valuesfile", "charthome")


def _ci(mapping: Any, key: str) -> list[Any]:
    """Every value of ``key`` in ``mapping`` under any spelling of its case."""
    if not isinstance(mapping, dict):
        return []
    return [v for k, v in mapping.items() if isinstance(k, str) and k.lower() == key]


def _ci_items(mapping: Any, key: str) -> list[Any]:
    out: list[Any] = []
    for v in _ci(mapping, key):
        out.extend(v if isinstance(v, list) else [v])
    return out


def _inline_refs(field: str, doc: Any) -> Iterator[tuple[str, str]]:
    """File references anywhere in an inline config (any key spelled like a file key)."""
    stack = [doc]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            for k, v in obj.items():
                if isinstance(k, str) and k.lower() in _INLINE_PATH_KEYS:
                    for item in v if isinstance(v, list) else [v]:
                        if isinstance(item, str):
                            yield field, item.split("=", 1)[-1]
                stack.append(v)
        elif isinstance(obj, list):
            stack.extend(obj)


def _kustomization_refs(doc: dict[str, Any], rel: str) -> Iterator[tuple[str, str]]:
    """(field, path) for every file or directory a kustomization refers to, keys compared
    case-insensitively as kustomize does."""
    for key in _HELM_FIELDS:
        if _ci(doc, key):
            raise RenderError(f"{key}: helm charts inside kustomize are not supported by gitferry "
                              "(use a Helm source: spec.source.helm or spec.source.chart)", rel)
    for key in _LIST_FIELDS:
        for item in _ci_items(doc, key):
            if not isinstance(item, str):
                continue
            if "\n" in item.strip():  # an inline patch / generator config
                yield from _inline_refs(key, _parse(item, rel, as_json=False))
            else:
                yield key, item
    for key in _PATH_ITEM_FIELDS:
        for item in _ci_items(doc, key):
            for path in _ci(item, "path"):
                if isinstance(path, str):
                    yield key, path
    for key in _GENERATOR_FIELDS:
        for gen in _ci_items(doc, key):
            for f in _ci_items(gen, "files"):
                if isinstance(f, str):
                    yield key, f.split("=", 1)[-1]
            for f in [*_ci_items(gen, "envs"), *_ci_items(gen, "env")]:
                if isinstance(f, str):
                    yield key, f
    for openapi in _ci(doc, "openapi"):
        for path in _ci(openapi, "path"):
            if isinstance(path, str):
                yield "openapi", path


def _check_kustomization_tree(root: Path, start: Path) -> None:
    """Walk the kustomization graph from ``start`` and refuse what could leave the repo.

    kustomize's ``LoadRestrictionsRootOnly`` keeps *files* inside each kustomization's
    directory but lets ``resources`` name any directory (``../../..``) and fetches remote
    bases over the network; both would escape the checked-out repository, so every
    reference is resolved (symlinks too) by :func:`resolve_in_repo` before kustomize runs."""
    seen: set[Path] = set()
    pending = [start]
    while pending:
        directory = pending.pop()
        if directory in seen:
            continue
        seen.add(directory)
        kfile = _kustomization_file(directory)
        if kfile is None:
            continue
        rel = _repo_rel(kfile, root)
        try:
            docs = _parse(kfile.read_bytes(), rel, as_json=False)
        except OSError:
            raise RenderError("cannot read the kustomization", rel) from None
        doc = docs[0] if docs else {}
        if not isinstance(doc, dict):
            raise RenderError("a kustomization must be a mapping", rel)
        for field, ref in _kustomization_refs(doc, rel):
            real = resolve_in_repo(root, directory, ref, file=rel, field=field)
            if not real.exists():
                raise RenderError(f"{field}: {ref!r} does not exist in the repository", rel)
            if real.is_dir():
                pending.append(real)


def _image_entry(spec: str) -> dict[str, str]:
    """An Argo CD image override (``[old=]new[:tag|@digest]``, what ``kustomize edit set
    image`` accepts) as a kustomization ``images`` entry."""
    name, eq, rest = spec.partition("=")
    if not eq:
        rest = spec
    new, tag, digest = rest, "", ""
    if "@" in new:
        new, digest = new.split("@", 1)
    else:
        colon, slash = new.rfind(":"), new.rfind("/")
        if colon > slash:
            new, tag = new[:colon], new[colon + 1 :]
    entry = {"name": name if eq else new}
    if eq and new:
        entry["newName"] = new
    if tag:
        entry["newTag"] = tag
    if digest:
        entry["digest"] = digest
    return entry


def _overlay(root: Path, base: Path, source: ApplicationSource, overlay: Path) -> None:
    """Write a kustomization in ``overlay`` that builds ``base`` with the Application's
    options: the checked-out tree stays untouched (it is a shared cache) and the options
    apply exactly as ``kustomize edit`` would have written them in Argo CD."""
    opts = source.kustomize
    assert opts is not None
    doc: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # kustomize refuses absolute resource paths; a relative one may leave the overlay root
        "resources": [os.path.relpath(base, overlay)],
    }
    if opts.name_prefix:
        doc["namePrefix"] = opts.name_prefix
    if opts.name_suffix:
        doc["nameSuffix"] = opts.name_suffix
    if opts.namespace:
        doc["namespace"] = opts.namespace
    if opts.images:
        doc["images"] = [_image_entry(i) for i in opts.images]
    if opts.replicas:
        doc["replicas"] = [{"name": r.name, "count": int(r.count)} for r in opts.replicas]
    if opts.common_labels:
        # what commonLabels does (selectors and templates too), without its deprecation warning
        doc["labels"] = [{"pairs": dict(opts.common_labels), "includeSelectors": True}]
    if opts.common_annotations:
        doc["commonAnnotations"] = dict(opts.common_annotations)
    patches: list[dict[str, Any]] = []
    for i, patch in enumerate(opts.patches):
        entry: dict[str, Any] = {}
        if patch.target is not None:
            entry["target"] = patch.target.model_dump(by_alias=True, exclude_none=True)
        if patch.options:
            entry["options"] = dict(patch.options)
        text = patch.patch
        if patch.path:
            where = f"spec.source.kustomize.patches[{i}].path"
            real = _inside_repo(root, base, patch.path, None, where)
            if not real.is_file():
                raise RenderError(f"{where}: {patch.path!r} does not exist in the repository")
            text = real.read_text(encoding="utf-8-sig")  # inlined: the overlay may load no file
        entry["patch"] = text
        patches.append(entry)
    if patches:
        doc["patches"] = patches
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


_KUSTOMIZE_NOISE = re.compile(
    r"accumulating resources: accumulation err='accumulating resources from '[^']*': "
    r"'[^']*' must resolve to a file': (?:recursed accumulation of path '[^']*': )?"
)


def _render_kustomize(root: Path, source: ApplicationSource) -> list[dict[str, Any]]:
    real_root, base, rel_path = _source_base(root, source.path)
    kfile = _kustomization_file(base)
    if kfile is None:
        raise RenderError(f"path {rel_path!r} has no kustomization.yaml (spec.source.kustomize is set)")
    rel = _repo_rel(kfile, real_root)
    _check_kustomization_tree(real_root, base)
    kubectl = find_tool("kubectl")
    with tempfile.TemporaryDirectory(prefix="gitferry-kustomize-") as tmp:
        work = Path(tmp)
        target = base
        if source.kustomize is not None:
            target = work / "overlay"
            target.mkdir()
            _overlay(real_root, base, source, target)
        code, stdout, stderr = _run_tool(
            [kubectl, "kustomize", str(target), "--load-restrictor", "LoadRestrictionsRootOnly"],
            work=work, cwd=work, what="kustomize", subject=rel)
        if code != 0:
            raise _kustomize_error(_clean_stderr(stderr, real_root, work), real_root, rel)
    manifests: list[dict[str, Any]] = []
    _collect(_parse(stdout, rel, as_json=False), rel, manifests)
    return manifests


def _kustomize_error(message: str, root: Path, default_file: str) -> RenderError:
    """kustomize's nested error as a RenderError naming the innermost file it mentions."""
    dirs = re.findall(r"(?:path|target for path) '([^'<][^']*)'", message)
    message = _KUSTOMIZE_NOISE.sub("", message)
    file = default_file
    in_file = re.search(r"in File: (\S+)", message)
    yaml_line = re.search(r"yaml: line (\d+):", message)
    line = int(yaml_line.group(1)) if yaml_line and in_file else None
    if dirs:
        kdir = Path(os.path.realpath(root / dirs[-1]))
        kfile = _kustomization_file(kdir)
        file = _repo_rel(kfile, root) if kfile else _repo_rel(kdir, root)
        if in_file:
            file = _repo_rel(kdir / in_file.group(1), root)
    elif in_file:
        file = _repo_rel(Path(os.path.realpath(root / default_file)).parent / in_file.group(1), root)
    return RenderError(f"kustomize: {message}", file, line)


# --------------------------------------------------------------------------- helm


def _chart_yaml(chart: Path, root: Path) -> dict[str, Any]:
    rel = _repo_rel(chart / "Chart.yaml", root)
    if not (chart / "Chart.yaml").is_file():
        raise RenderError(f"no Chart.yaml in {_repo_rel(chart, root)!r} (spec.source.helm is set)")
    try:
        docs = _parse((chart / "Chart.yaml").read_text(encoding="utf-8-sig"), rel, as_json=False)
    except (OSError, UnicodeDecodeError):
        raise RenderError("cannot read Chart.yaml", rel) from None
    if not docs or not isinstance(docs[0], dict) or not docs[0].get("name"):
        raise RenderError("Chart.yaml must be a mapping with a name", rel)
    return docs[0]


def _check_dependencies(chart: Path, meta: dict[str, Any], root: Path) -> None:
    """Dependencies must already be in ``charts/`` (committed): gitferry does not run
    ``helm dependency build``, which would fetch from the network at every render."""
    deps = list(meta.get("dependencies") or [])
    req_file = chart / "requirements.yaml"  # apiVersion v1 charts
    if not deps and req_file.is_file():
        req_docs = _parse(req_file.read_bytes(), _repo_rel(req_file, root), as_json=False)
        req = req_docs[0] if req_docs else {}
        deps = list(req.get("dependencies") or []) if isinstance(req, dict) else []
    charts_dir = chart / "charts"
    present = set(os.listdir(charts_dir)) if charts_dir.is_dir() else set()
    missing = []
    for dep in deps:
        name = dep.get("name") if isinstance(dep, dict) else None
        if not isinstance(name, str):
            continue
        if (charts_dir / name / "Chart.yaml").is_file():
            continue
        if any(f.startswith(f"{name}-") and f.endswith(".tgz") for f in present):
            continue
        missing.append(f"{name} ({redact_url(str(dep.get('repository') or 'no repository'))})")
    if missing:
        raise RenderError(
            f"chart dependencies not in charts/: {', '.join(missing)}; gitferry does not run "
            "`helm dependency build` (remote dependencies are not fetched): vendor them into charts/ and commit",
            _repo_rel(chart / "Chart.yaml", root),
        )


#: the meta-schemas helm's validator has compiled in; any other ``$schema`` would be fetched
_KNOWN_META_SCHEMAS = re.compile(r"^https?://json-schema\.org/(?:draft-0[3467]/|draft/20(?:19-09|20-12)/)?schema#?$")
_MAX_SCHEMA_BYTES = 4 * 1024 * 1024


def _schema_refs(doc: Any) -> Iterator[tuple[str, str]]:
    stack = [doc]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k in ("$ref", "$dynamicRef", "$recursiveRef") and isinstance(v, str):
                    yield k, v
                elif k == "$schema" and isinstance(v, str):
                    yield k, v
                stack.append(v)
        elif isinstance(obj, list):
            stack.extend(obj)


def _refuse_external_refs(text: str | bytes, file: str) -> None:
    doc = _parse(text, file, as_json=True)
    for key, ref in _schema_refs(doc[0] if doc else None):
        if key == "$schema":
            if not _KNOWN_META_SCHEMAS.match(ref):
                raise RenderError(f"$schema {ref!r}: only the json-schema.org drafts are supported by gitferry "
                                  "(helm would fetch any other meta-schema)", file)
        elif not ref.startswith("#"):
            raise RenderError(f"{key} {ref!r}: external schema references are not supported by gitferry "
                              "(helm would read that file or URL); only '#/...' references inside the file", file)


def _check_schemas(chart: Path, root: Path) -> None:
    """``values.schema.json`` of the chart and every subchart (directories and vendored
    ``.tgz`` files under ``charts/``) may only refer inside itself: helm resolves a ``$ref``
    to ``file:///...`` or ``http://...`` while validating, which would read the Lambda's
    files or make the render function fetch a URL."""
    pending = [chart]
    while pending:
        here = pending.pop()
        schema = here / "values.schema.json"
        if schema.is_file():
            if schema.stat().st_size > _MAX_SCHEMA_BYTES:
                raise RenderError(f"larger than {_MAX_SCHEMA_BYTES // (1024 * 1024)} MiB", _repo_rel(schema, root))
            _refuse_external_refs(schema.read_bytes(), _repo_rel(schema, root))
        charts = here / "charts"
        if not charts.is_dir():
            continue
        for entry in sorted(charts.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                pending.append(entry)
            elif entry.suffix == ".tgz" and entry.is_file():
                _check_archived_schemas(entry, root)


def _check_archived_schemas(archive: Path, root: Path) -> None:
    import tarfile

    rel = _repo_rel(archive, root)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for count, member in enumerate(tar):
                if count > 10_000:
                    raise RenderError("subchart archive has more than 10000 files", rel)
                if not (member.isfile() and member.name.rsplit("/", 1)[-1] == "values.schema.json"):
                    continue
                if member.size > _MAX_SCHEMA_BYTES:
                    raise RenderError(f"{member.name} is larger than {_MAX_SCHEMA_BYTES // (1024 * 1024)} MiB", rel)
                f = tar.extractfile(member)
                if f is not None:
                    _refuse_external_refs(f.read(), f"{rel}:{member.name}")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise RenderError(f"cannot read subchart archive: {exc}", rel) from None


def _helm_set_value(value: str) -> str:
    """Argo CD's escaping of a ``--set`` value: commas are literal unless it is a ``{a,b}`` list."""
    if value.startswith("{") and value.endswith("}"):
        return value
    return re.sub(r"(?<!\\),", r"\\,", value)


_HELM_FILE = re.compile(
    r"(?P<file>[A-Za-z0-9_.-]+/(?:charts/[^/\s:'\"()]+/)*(?:templates|crds)/[^\s:'\"()]+)"
    r"(?::(?P<line>\d+))?"
)


def _helm_file(ref: str, chart_rel: str) -> str:
    """``mychart/templates/x.yaml`` as helm names it -> path in the repository."""
    inner = ref.split("/", 1)[1] if "/" in ref else ref
    return inner if chart_rel in ("", ".") else f"{chart_rel}/{inner}"


def _helm_error(message: str, chart_rel: str, chart_file: str) -> RenderError:
    """helm's error as a RenderError naming the template (and its line for template errors;
    a YAML error's line is in the rendered output, not in the template, so none is given)."""
    if "missing in charts/ directory" in message or "helm dependency build" in message:
        return RenderError(f"helm: {message} (gitferry does not fetch dependencies: vendor them into charts/)",
                           chart_file)
    match = _HELM_FILE.search(message)
    if match is None:
        return RenderError(f"helm: {message}", chart_file)
    line = int(match.group("line")) if match.group("line") and "YAML parse error" not in message else None
    return RenderError(f"helm: {message}", _helm_file(match.group("file"), chart_rel), line)


def _ref_value_file(refs: dict[str, Path], ref: tuple[str, str], where: str) -> Path:
    """``$<ref>/<path>``: a file of the ref source's repository (relative to its root, Argo CD)."""
    name, rel = ref
    if name not in refs:
        raise RenderError(f"{where}: no source in spec.sources has ref {name!r}")
    ref_root = Path(os.path.realpath(refs[name]))
    return resolve_in_repo(ref_root, ref_root, rel, file=None, field=where, absolute="repo")


def _render_helm(root: Path, source: ApplicationSource, *, app_name: str, namespace: str | None,
                 kube_version: str | None, refs: dict[str, Path] | None = None,
                 kubeconfig: Path | None = None, dependencies: Any = None) -> list[dict[str, Any]]:
    real_root, chart, _rel_path = _source_base(root, source.path)
    opts = source.helm
    meta = _chart_yaml(chart, real_root)
    chart_rel = _repo_rel(chart, real_root)
    chart_file = _repo_rel(chart / "Chart.yaml", real_root)
    _check_symlinks(chart, real_root)
    build = False
    if dependencies is not None:
        from gitferry import helmdeps

        build = bool(helmdeps.missing(chart, meta))
    if not build:
        _check_dependencies(chart, meta, real_root)
    helm = find_tool("helm")

    release = (opts.release_name if opts else None) or app_name
    ns = (opts.namespace if opts else None) or namespace or "default"
    with tempfile.TemporaryDirectory(prefix="gitferry-helm-") as tmp:
        work = Path(tmp)
        values_base = chart  # value files are the repository's, relative to the chart in it
        if build:
            chart = helmdeps.prepare(real_root, chart, meta, work, dependencies)
        if not (opts is not None and opts.skip_schema_validation):
            _check_schemas(chart, work / "deps-tree" if build else real_root)
        argv = [helm, "template", release, str(chart), "--namespace", ns]
        if opts is not None:
            for i, vf in enumerate(opts.value_files):
                where = f"spec.source.helm.valueFiles[{i}]"
                ref = ref_value_file(vf)
                real = (_ref_value_file(refs or {}, ref, where) if ref is not None
                        else _inside_repo(real_root, values_base, vf, chart_file, where))
                if not real.is_file():
                    if opts.ignore_missing_value_files:
                        continue
                    repo = f"the repository of ref {ref[0]!r}" if ref is not None else "the repository"
                    raise RenderError(f"{where}: {vf!r} does not exist in {repo}", chart_file)
                argv += ["--values", str(real)]
            inline: str | None = None
            if opts.values_object is not None:  # Argo CD: valuesObject wins over values
                inline = yaml.safe_dump(opts.values_object, sort_keys=False)
            elif opts.values and opts.values.strip():
                inline = opts.values
            if inline is not None:
                values_file = work / "values.yaml"
                values_file.write_text(inline)
                argv += ["--values", str(values_file)]
            for p in opts.parameters:
                flag = "--set-string" if p.force_string else "--set"
                argv += [flag, f"{p.name}={_helm_set_value(p.value)}"]
            if opts.skip_tests:
                argv.append("--skip-tests")
            if opts.skip_schema_validation:
                argv.append("--skip-schema-validation")
            for api in opts.api_versions:
                argv += ["--api-versions", api]
        argv.append("--skip-crds" if opts is not None and opts.skip_crds else "--include-crds")
        version = (opts.kube_version if opts else None) or kube_version
        if version and kubeconfig is None:  # against a cluster, helm asks it for its version
            argv += ["--kube-version", version]
        extra_env: dict[str, str] = {}
        if kubeconfig is not None:
            argv.append("--dry-run=server")
            extra_env["KUBECONFIG"] = str(kubeconfig)
        code, stdout, stderr = _run_tool(argv, work=work, cwd=work, what="helm template", subject=chart_file,
                                         extra_env=extra_env)
        if code != 0:
            raise _helm_error(_clean_stderr(stderr, real_root, work), chart_rel, chart_file)

    manifests: list[dict[str, Any]] = []
    for chunk in re.split(r"(?m)^---[ \t]*$", stdout):
        source_ref = re.search(r"(?m)^# Source: (\S+)", chunk)
        rel = _helm_file(source_ref.group(1), chart_rel) if source_ref else chart_file
        _collect(_parse(chunk, rel, as_json=False), rel, manifests)
    return manifests
