"""Jsonnet directory sources (``spec.source.directory.jsonnet``) rendered as Argo CD renders them,
compared with what the ``jsonnet`` binding itself gives for the same input."""

from __future__ import annotations

import json
from pathlib import Path

import _jsonnet
import pytest
from gitferry.errors import RenderError
from gitferry.render import render_directory

LIB = """\
{
  deployment(name, replicas, image, port):: {
    apiVersion: "apps/v1", kind: "Deployment", metadata: { name: name },
    spec: { replicas: replicas, selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } },
        spec: { containers: [{ name: name, image: image, ports: [{ containerPort: port }] }] } } },
  },
  service(name, port):: {
    apiVersion: "v1", kind: "Service", metadata: { name: name },
    spec: { ports: [{ port: port, targetPort: port }], selector: { app: name } },
  },
}
"""

MAIN = """\
local k = import "k.libsonnet";
local local_part = import "parts/labels.libsonnet";
function(name="guestbook-ui", replicas=1, containerPort=80)
  [
    k.deployment(name, replicas, std.extVar("image"), containerPort) + local_part,
    k.service(name, containerPort) + std.extVar("extra"),
  ]
"""

OPTIONS = {
    "extVars": [{"name": "image", "value": "nginx:1.27"},
                {"name": "extra", "value": '{metadata+: {labels: {tier: "web"}}}', "code": True}],
    "tlas": [{"name": "replicas", "value": "2", "code": True}, {"name": "name", "value": "gb"}],
    "libs": ["vendor/k"],
}


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def guestbook(tmp_path: Path) -> Path:
    return write(tmp_path / "repo", {
        "app/guestbook.jsonnet": MAIN,
        "app/parts/labels.libsonnet": '{metadata+: {labels: {part: "yes"}}}',
        "app/README.md": "not a manifest",
        "vendor/k/k.libsonnet": LIB,
    })


def test_tlas_ext_vars_and_libs_give_what_the_binding_gives(tmp_path: Path) -> None:
    repo = guestbook(tmp_path)
    got = render_directory(repo, "app", {"jsonnet": OPTIONS})
    expected = json.loads(_jsonnet.evaluate_file(
        str(repo / "app/guestbook.jsonnet"), jpathdir=[str(repo / "vendor/k")],
        ext_vars={"image": "nginx:1.27"}, ext_codes={"extra": '{metadata+: {labels: {tier: "web"}}}'},
        tla_vars={"name": "gb"}, tla_codes={"replicas": "2"}))
    assert got == expected
    assert [o["kind"] for o in got] == ["Deployment", "Service"] and got[0]["spec"]["replicas"] == 2
    assert got[1]["metadata"]["labels"] == {"tier": "web"} and got[0]["metadata"]["labels"] == {"part": "yes"}


def test_a_later_lib_wins_as_with_jsonnet_J(tmp_path: Path) -> None:
    repo = write(tmp_path / "r", {"a/main.jsonnet": 'import "x.libsonnet"',
                                  "one/x.libsonnet": '{apiVersion: "v1", kind: "ConfigMap", metadata: {name: "one"}}',
                                  "two/x.libsonnet": '{apiVersion: "v1", kind: "ConfigMap", metadata: {name: "two"}}'})
    got = render_directory(repo, "a", {"jsonnet": {"libs": ["one", "two"]}})
    # one object becomes a list of one, as in Argo CD
    assert got == [json.loads(_jsonnet.evaluate_file(str(repo / "a/main.jsonnet"),
                                                     jpathdir=[str(repo / "one"), str(repo / "two")]))]
    assert got[0]["metadata"]["name"] == "two"


@pytest.mark.parametrize(("source", "needle", "line"), [
    ('local x = import "../../outside.libsonnet";\nx\n', "resolves outside the repository", 1),
    ('\nlocal x = import "/etc/passwd";\nx\n', "absolute paths are not allowed", 2),
    ('local x = importstr "https://example.com/x";\nx\n', "remote resources are not supported by gitferry", 1),
    ('{\n  apiVersion: "v1",\n  kind: error "no kind here",\n}\n', "RUNTIME ERROR: no kind here", 3),
    ('{\n  a: }\n', "STATIC ERROR: unexpected", 2),
    ('std.extVar("missing")\n', "undefined external variable: missing", 1),
])
def test_errors_name_the_file_and_line(tmp_path: Path, source: str, needle: str, line: int) -> None:
    (tmp_path / "outside.libsonnet").write_text('{apiVersion: "v1", kind: "Secret", metadata: {name: "stolen"}}')
    repo = write(tmp_path / "repo", {"app/main.jsonnet": source})
    with pytest.raises(RenderError) as info:
        render_directory(repo, "app")
    assert info.value.file == "app/main.jsonnet" and info.value.line == line, str(info.value)
    assert needle in str(info.value) and str(tmp_path) not in str(info.value)


def test_an_error_in_a_lib_names_the_lib(tmp_path: Path) -> None:
    repo = write(tmp_path / "repo", {"app/main.jsonnet": 'local l = import "l.libsonnet";\nl.f(1)\n',
                                     "lib/l.libsonnet": '{\n  f(x):: error "bad " + x,\n}\n'})
    with pytest.raises(RenderError) as info:
        render_directory(repo, "app", {"jsonnet": {"libs": ["lib"]}})
    assert (info.value.file, info.value.line) == ("lib/l.libsonnet", 2) and "bad 1" in str(info.value)


def test_a_lib_outside_the_repository_is_refused(tmp_path: Path) -> None:
    repo = write(tmp_path / "repo", {"app/main.jsonnet": "{}"})
    with pytest.raises(RenderError, match="spec.source.directory.jsonnet.libs '../..' resolves outside"):
        render_directory(repo, "app", {"jsonnet": {"libs": ["../.."]}})


def test_output_goes_through_the_object_checks(tmp_path: Path) -> None:
    repo = write(tmp_path / "repo", {"app/main.jsonnet": '[{apiVersion: "v1", kind: "ConfigMap"}]'})
    with pytest.raises(RenderError, match="document 0: missing metadata.name") as info:
        render_directory(repo, "app")
    assert info.value.file == "app/main.jsonnet"


def test_a_runaway_evaluation_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = write(tmp_path / "repo", {"app/main.jsonnet": 'std.makeArray(100000000, function(i) "x" + i)'})
    monkeypatch.setenv("TOOL_MEMORY_MB", "256")
    with pytest.raises(RenderError, match="jsonnet ran out of memory .limit 256 MiB") as info:
        render_directory(repo, "app")
    assert info.value.file == "app/main.jsonnet"
