"""Render hardening with the real kubectl (kustomize) and helm: what a hostile repository
tried and must be refused with a RenderError naming the file, bounded in memory and time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gitferry import loader
from gitferry.errors import RenderError
from gitferry.model import ApplicationSource
from gitferry.render import render_source

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: outside\ndata:\n  secret: stolen\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def source(path: str, **extra: Any) -> ApplicationSource:
    return ApplicationSource.model_validate({"repoURL": "https://git.example.com/r.git", "path": path, **extra},
                                            by_alias=True, by_name=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write(tmp_path / "outside", {"kustomization.yaml": "resources: [cm.yaml]\n", "cm.yaml": CM,
                                 "env.txt": "A=1\n"})
    return write(tmp_path / "repo", {"app/cm.yaml": CM.replace("outside", "inside")})


# kustomize reads its keys through Go's encoding/json: any case of any key counts.
@pytest.mark.parametrize("kustomization", [
    "RESOURCES: [../../outside]\n",
    "Resources: [../../outside]\n",
    "Bases: [../../outside]\n",
    "resources: [cm.yaml]\nComponents: [../../outside]\n",
    "resources: [cm.yaml]\nPatchesStrategicMerge: [../../outside/cm.yaml]\n",
    "resources: [cm.yaml]\nconfigMapGenerator:\n- name: g\n  FILES: [../../outside/cm.yaml]\n",
    "resources: [cm.yaml]\nSecretGenerator:\n- name: g\n  Envs: [../../outside/env.txt]\n",
    "resources: [cm.yaml]\npatches:\n- Path: ../../outside/cm.yaml\n",
    "resources: [cm.yaml]\nReplacements:\n- path: ../../outside/cm.yaml\n",
    "resources: [cm.yaml]\nOpenAPI:\n  PATH: ../../outside/cm.yaml\n",
    "resources: [cm.yaml]\nTransformers: [../../outside/cm.yaml]\n",
    "resources: [cm.yaml]\nCRDs: [../../outside/cm.yaml]\n",
])
def test_kustomize_keys_are_checked_case_insensitively(repo: Path, kustomization: str) -> None:
    write(repo, {"app/kustomization.yaml": kustomization})
    with pytest.raises(RenderError, match=r"^app/kustomization.yaml: \w+ '../../outside[^']*' resolves outside"):
        render_source(repo, source("app"), app_name="a", namespace=None)


@pytest.mark.parametrize("ref", [
    "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v3.3.1",
    "git@github.com:org/repo.git//base",
    "github.com/org/repo/base?ref=main",
    "git::https://example.com/org/repo.git",
    "ssh://git@example.com/org/repo.git",
])
def test_remote_bases_in_any_case_are_refused(repo: Path, ref: str) -> None:
    write(repo, {"app/kustomization.yaml": f"Resources: ['{ref}']\n"})
    with pytest.raises(RenderError, match="remote resources are not supported by gitferry") as err:
        render_source(repo, source("app"), app_name="a", namespace=None)
    assert err.value.file == "app/kustomization.yaml"


def test_absolute_kustomize_paths_are_refused(repo: Path) -> None:
    """kustomize reads ``/x`` from the Lambda's filesystem, not from the repository."""
    write(repo, {"app/kustomization.yaml": f"resources: [{repo.parent / 'outside'}]\n"})
    with pytest.raises(RenderError, match="absolute paths are not allowed"):
        render_source(repo, source("app"), app_name="a", namespace=None)


def test_inline_transformer_file_references_are_checked(repo: Path) -> None:
    write(repo, {"app/kustomization.yaml": (
        "resources: [cm.yaml]\ntransformers:\n- |\n  apiVersion: builtin\n  kind: PatchTransformer\n"
        "  metadata: {name: p}\n  Path: ../../outside/cm.yaml\n")})
    with pytest.raises(RenderError, match="resolves outside"):
        render_source(repo, source("app"), app_name="a", namespace=None)


def test_helm_charts_inside_kustomize_are_refused_in_any_case(repo: Path) -> None:
    write(repo, {"app/kustomization.yaml": "HelmCharts:\n- name: x\n  repo: https://charts.example.com\n"})
    with pytest.raises(RenderError, match="not supported by gitferry"):
        render_source(repo, source("app"), app_name="a", namespace=None)


def test_inside_references_still_render(repo: Path) -> None:
    write(repo, {"app/kustomization.yaml": "RESOURCES: [cm.yaml]\n"})
    objs = render_source(repo, source("app"), app_name="a", namespace=None)
    assert [o["metadata"]["name"] for o in objs] == ["inside"]


# --------------------------------------------------------------------------- bounded parsing

ALIAS_BOMB = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(7))


def test_yaml_alias_bomb_is_refused_naming_the_file(tmp_path: Path) -> None:
    assert len(ALIAS_BOMB) < 1024  # 10^8 nodes once expanded
    repo = write(tmp_path, {"app/bomb.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata:\n"
                            + "".join("  " + line + "\n" for line in ALIAS_BOMB.splitlines())})
    with pytest.raises(RenderError, match=r"^app/bomb.yaml:\d+: document expands to more than \d+ nodes"):
        render_source(tmp_path, source("app"), app_name="a", namespace=None)
    assert repo


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    write(tmp_path, {"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: &l {a: b}, "
                                    "annotations: *l}\n"})
    [cm] = render_source(tmp_path, source("app"), app_name="a", namespace=None)
    assert cm["metadata"]["annotations"] == {"a": "b"}


def test_deep_json_is_a_render_error_not_a_recursion_error(tmp_path: Path) -> None:
    write(tmp_path, {"app/deep.json": "[" * 10_000 + "]" * 10_000})
    with pytest.raises(RenderError, match=r"^app/deep.json: nested deeper than \d+ levels"):
        render_source(tmp_path, source("app"), app_name="a", namespace=None)


def test_deep_yaml_is_a_render_error(tmp_path: Path) -> None:
    write(tmp_path, {"app/deep.yaml": "a: " + "[" * 500 + "]" * 500 + "\n"})
    with pytest.raises(RenderError, match=r"^app/deep.yaml:1: nested deeper than"):
        render_source(tmp_path, source("app"), app_name="a", namespace=None)


def test_too_many_documents_are_refused(tmp_path: Path) -> None:
    doc = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
    write(tmp_path, {"app/many.yaml": doc * (loader.DEFAULT_LIMITS.max_documents + 1)})
    with pytest.raises(RenderError, match=r"^app/many.yaml:\d+: more than \d+ YAML documents"):
        render_source(tmp_path, source("app"), app_name="a", namespace=None)


def test_alias_bomb_in_a_kustomization_is_refused(tmp_path: Path) -> None:
    write(tmp_path, {"app/kustomization.yaml": "resources: []\ncommonAnnotations:\n"
                     + "".join("  " + line + "\n" for line in ALIAS_BOMB.splitlines())})
    with pytest.raises(RenderError, match=r"^app/kustomization.yaml:\d+: document expands"):
        render_source(tmp_path, source("app"), app_name="a", namespace=None)


def test_alias_bomb_in_chart_yaml_is_refused(tmp_path: Path) -> None:
    write(tmp_path, {"chart/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\nannotations:\n"
                     + "".join("  " + line + "\n" for line in ALIAS_BOMB.splitlines())})
    with pytest.raises(RenderError, match=r"^chart/Chart.yaml:\d+: document expands"):
        render_source(tmp_path, source("chart", helm={}), app_name="a", namespace=None)


def test_loader_limits_are_per_call() -> None:
    with pytest.raises(loader.LoadError, match="larger than"):
        loader.load_all("a: 1\n" * 100, limits=loader.Limits(max_bytes=10))
    with pytest.raises(loader.LoadError, match="alias references"):
        loader.load_all("a: &a 1\nb: [" + ",".join(["*a"] * 20) + "]\n", limits=loader.Limits(max_aliases=10))
    with pytest.raises(loader.LoadError, match="recursive YAML alias"):
        loader.load_all("a: &a [*a]\n")
    with pytest.raises(loader.LoadError, match="not UTF-8"):
        loader.load_all(b"a: \xff\n")
    assert loader.load_all(json.dumps({"a": [1, {"b": None}]}), as_json=True) == [{"a": [1, {"b": None}]}]
    assert loader.load_all("d: 2024-01-01\n1: x\n") == [{"d": "2024-01-01", "1": "x"}]


# --------------------------------------------------------------------------- values.schema.json

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\n",
    "values.yaml": "name: x\n",
    "templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.name }}\n",
}


def _schema(ref: str) -> str:
    return json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                       "properties": {"name": {"$ref": ref}}, "$defs": {"n": {"type": "string"}}})


class _Counting:
    """A loopback HTTP server that counts requests: the render must make none."""

    def __enter__(self) -> _Counting:
        import threading
        from http.server import BaseHTTPRequestHandler

        from local.httpserver import LoopbackHTTPServer

        hits = self.hits = []

        class H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                hits.append(self.path)
                body = b'{"type": "string"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: object) -> None:
                pass

        self.server = LoopbackHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/s.json"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_schema_with_file_ref_is_refused_before_helm_runs(tmp_path: Path) -> None:
    secret = write(tmp_path / "lambda", {"secret.json": '{"type": "string"}'}) / "secret.json"
    write(tmp_path / "repo/chart", {**CHART, "values.schema.json": _schema(f"file://{secret}")})
    with pytest.raises(RenderError, match=r"^chart/values.schema.json: \$ref 'file://.*external schema references "
                                          r"are not supported by gitferry"):
        render_source(tmp_path / "repo", source("chart", helm={}), app_name="a", namespace=None)


def test_schema_with_http_ref_makes_no_request(tmp_path: Path) -> None:
    with _Counting() as server:
        write(tmp_path / "chart", {**CHART, "values.schema.json": _schema(server.url)})
        with pytest.raises(RenderError, match=r"chart/values.schema.json: \$ref 'http://127.0.0.1"):
            render_source(tmp_path, source("chart", helm={}), app_name="a", namespace=None)
        # in a subchart directory too
        write(tmp_path / "chart", {"values.schema.json": _schema("#/$defs/n"),
                                   **{f"charts/sub/{k}": v for k, v in CHART.items()},
                                   "charts/sub/values.schema.json": _schema(server.url)})
        with pytest.raises(RenderError, match=r"^chart/charts/sub/values.schema.json: \$ref"):
            render_source(tmp_path, source("chart", helm={}), app_name="a", namespace=None)
        assert server.hits == []


def test_schema_in_a_vendored_subchart_archive_is_checked(tmp_path: Path) -> None:
    import io
    import tarfile

    write(tmp_path / "chart", CHART)
    (tmp_path / "chart/charts").mkdir()
    with tarfile.open(tmp_path / "chart/charts/sub-0.1.0.tgz", "w:gz") as tar:
        for name, text in {**CHART, "values.schema.json": _schema("file:///etc/passwd")}.items():
            data = text.replace("name: c", "name: sub").encode()
            info = tarfile.TarInfo(f"sub/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(RenderError, match=r"^chart/charts/sub-0.1.0.tgz:sub/values.schema.json: \$ref 'file:///etc"):
        render_source(tmp_path, source("chart", helm={}), app_name="a", namespace=None)


def test_local_schema_refs_still_validate(tmp_path: Path) -> None:
    write(tmp_path / "chart", {**CHART, "values.schema.json": _schema("#/$defs/n")})
    [cm] = render_source(tmp_path, source("chart", helm={}), app_name="a", namespace=None)
    assert cm["metadata"]["name"] == "x"
    write(tmp_path / "chart", {"values.yaml": "name: 5\n"})
    with pytest.raises(RenderError, match="schema"):  # helm still validates against the schema
        render_source(tmp_path, source("chart", helm={}), app_name="a", namespace=None)


# --------------------------------------------------------------------------- tool limits

HUNGRY = ('{{- $s := "x" }}{{- range until 40 }}{{- $s = print $s $s }}{{- end }}\n'
          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  a: {{ len $s | quote }}\n")


def test_helm_out_of_memory_is_one_readable_render_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A template doubling a string 40 times wants 1 TiB: helm stops at its memory bound and
    the Go runtime's dump becomes one sentence."""
    monkeypatch.setenv("TOOL_MEMORY_MB", "1024")
    write(tmp_path / "charts/hungry", {**CHART, "templates/cm.yaml": HUNGRY})
    with pytest.raises(RenderError) as err:
        render_source(tmp_path, source("charts/hungry", helm={}), app_name="a", namespace=None)
    assert str(err.value) == "helm ran out of memory rendering charts/hungry/Chart.yaml (limit 1024 MiB)"
    assert "goroutine" not in str(err.value)


def test_an_object_larger_than_the_api_server_stores_is_refused(tmp_path: Path) -> None:
    write(tmp_path, {"app/big.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  a: "
                     + "x" * (1600 * 1024) + "\n"})
    with pytest.raises(RenderError, match=r"^app/big.yaml: document 0: ConfigMap big is \d+ bytes; the API server"):
        render_source(tmp_path, source("app"), app_name="a", namespace=None)


def test_loader_gives_the_same_data_with_and_without_anchors() -> None:
    plain = "a: {1: x, b: [1, 2]}\nurl: http://h/?a=1&b=2\n"  # '&b' looks like an anchor: full check
    assert loader.load_all(plain) == [{"a": {"1": "x", "b": [1, 2]}, "url": "http://h/?a=1&b=2"}]
    assert loader.load_all("a: {1: x, b: [1, 2]}\n") == [{"a": {"1": "x", "b": [1, 2]}}]
    shared = loader.load_all("a: &s {k: [1]}\nb: *s\n")[0]
    assert shared == {"a": {"k": [1]}, "b": {"k": [1]}} and shared["a"] is not shared["b"]
    with pytest.raises(loader.LoadError, match="nested deeper than 3 levels"):
        loader.load_all("a: {b: {c: {d: 1}}}\n", limits=loader.Limits(max_depth=3))
    with pytest.raises(loader.LoadError, match="nested deeper than 3 levels"):
        loader.load_all("x: &x 1\na: {b: {c: {d: 1}}}\n", limits=loader.Limits(max_depth=3))
