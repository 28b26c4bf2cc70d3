"""render_source with the real helm and kubectl (kustomize) binaries on charts and
kustomizations written into temporary repos, and one render of a real git checkout."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitferry import git
from gitferry.errors import InvalidSpecError, RenderError
from gitferry.model import Application, ApplicationSource
from gitferry.render import detect_source_type, find_tool, render_source

from local.gitserver import GitServer

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
"""

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: webchart\nversion: 0.1.0\n",
    "values.yaml": "image: nginx:1.25\nreplicas: 1\ncolor: blue\nport: 80\n",
    "templates/deploy.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  namespace: {{ .Release.Namespace }}
  labels:
    color: {{ .Values.color | quote }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: {{ .Values.image }}
        ports:
        - containerPort: {{ .Values.port }}
""",
    "templates/cm.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  version: {{ .Values.version | quote }}
  {{- with .Values.extra }}
  extra: {{ . | quote }}
  {{- end }}
""",
    "crds/widget.yaml": """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object}
""",
}


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def source(path: str, **extra: Any) -> ApplicationSource:
    """Through the same validation as a registered Application (Argo CD field names)."""
    return ApplicationSource.model_validate({"repoURL": "https://git.example.com/r.git", "path": path, **extra},
                                            by_alias=True, by_name=False)


def by_kind_name(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in objs}


def container(deploy: dict[str, Any]) -> dict[str, Any]:
    return deploy["spec"]["template"]["spec"]["containers"][0]


def test_tools_are_found() -> None:
    assert os.access(find_tool("helm"), os.X_OK)
    assert os.access(find_tool("kubectl"), os.X_OK)
    with pytest.raises(RenderError, match="not-a-tool is not installed"):
        find_tool("not-a-tool")


# --------------------------------------------------------------------------- kustomize


def kustomize_repo(tmp_path: Path) -> Path:
    return write(tmp_path / "repo", {
        "base/kustomization.yaml": "resources: [deploy.yaml, svc.yaml]\n",
        "base/deploy.yaml": DEPLOY,
        "base/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n"
                         "  selector: {app: web}\n  ports: [{port: 80}]\n",
        "overlays/prod/kustomization.yaml": "resources: [../../base]\npatches:\n- path: more-replicas.yaml\n",
        "overlays/prod/more-replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
                                            "spec:\n  replicas: 2\n",
        "overlays/prod/extra-label.yaml": "- op: add\n  path: /metadata/labels\n  value: {tier: frontend}\n",
    })


def test_kustomize_overlay_as_is(tmp_path: Path) -> None:
    repo = kustomize_repo(tmp_path)
    objs = by_kind_name(render_source(repo, source("overlays/prod"), app_name="a", namespace="ns"))
    assert set(objs) == {"Deployment/web", "Service/web"}
    assert objs["Deployment/web"]["spec"]["replicas"] == 2  # the overlay's own patch
    assert container(objs["Deployment/web"])["image"] == "nginx:1.25"
    # the checked-out tree is a shared cache: nothing may be written into it
    assert sorted(p.name for p in (repo / "overlays/prod").iterdir()) == [
        "extra-label.yaml", "kustomization.yaml", "more-replicas.yaml"]


def test_kustomize_options_from_the_application(tmp_path: Path) -> None:
    repo = kustomize_repo(tmp_path)
    src = source("overlays/prod", kustomize={
        "namePrefix": "prod-",
        "nameSuffix": "-v1",
        "images": ["nginx=registry.example.com/nginx:1.27"],
        "replicas": [{"name": "web", "count": 5}],
        "commonLabels": {"team": "shop"},
        "commonAnnotations": {"owner": "ops"},
        "namespace": "shop",
        "patches": [
            {"target": {"kind": "Service"}, "patch": "- op: add\n  path: /spec/type\n  value: NodePort\n"},
            {"target": {"kind": "Deployment", "name": "web"}, "path": "extra-label.yaml"},
        ],
    })
    objs = by_kind_name(render_source(repo, src, app_name="a", namespace="ns"))
    assert set(objs) == {"Deployment/prod-web-v1", "Service/prod-web-v1"}
    dep, svc = objs["Deployment/prod-web-v1"], objs["Service/prod-web-v1"]
    assert dep["spec"]["replicas"] == 5
    assert container(dep)["image"] == "registry.example.com/nginx:1.27"
    assert dep["metadata"]["namespace"] == svc["metadata"]["namespace"] == "shop"
    assert dep["metadata"]["labels"] == {"team": "shop", "tier": "frontend"}
    assert dep["spec"]["selector"]["matchLabels"] == {"app": "web", "team": "shop"}  # as commonLabels
    assert dep["spec"]["template"]["metadata"]["labels"]["team"] == "shop"
    assert svc["metadata"]["annotations"] == {"owner": "ops"}
    assert svc["spec"]["type"] == "NodePort" and "type" not in dep["spec"]
    assert not (repo / "overlays/prod/kustomization.yaml").read_text().count("prod-")


def test_kustomize_image_forms(tmp_path: Path) -> None:
    repo = kustomize_repo(tmp_path)
    for image, want in [("nginx:1.27", "nginx:1.27"), ("nginx=example.com/web", "example.com/web:1.25"),
                        ("nginx@sha256:" + "a" * 64, "nginx@sha256:" + "a" * 64)]:
        objs = by_kind_name(render_source(repo, source("base", kustomize={"images": [image]}),
                                          app_name="a", namespace=None))
        assert container(objs["Deployment/web"])["image"] == want, image


def test_kustomize_cannot_leave_the_repository(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside", {"kustomization.yaml": "resources: [cm.yaml]\n",
                                           "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"})
    repo = write(tmp_path / "repo", {"app/kustomization.yaml": "resources: [../../outside]\n"})
    with pytest.raises(RenderError, match=r"app/kustomization.yaml: resources '../../outside' resolves outside"):
        render_source(repo, source("app"), app_name="a", namespace=None)
    write(repo, {"app/kustomization.yaml": "resources: [github.com/org/repo//base?ref=v1]\n"})
    with pytest.raises(RenderError, match="remote resources are not supported"):
        render_source(repo, source("app"), app_name="a", namespace=None)
    (repo / "app/kustomization.yaml").write_text("resources: [link]\n")
    (repo / "app/link").symlink_to(outside)
    with pytest.raises(RenderError, match="resolves outside the repository"):
        render_source(repo, source("app"), app_name="a", namespace=None)
    write(repo, {"b/kustomization.yaml": "resources: [d.yaml]\n", "b/d.yaml": DEPLOY})
    with pytest.raises(RenderError, match=r"^spec.source.kustomize.patches\[0\].path '../../outside/cm.yaml' resolves outside"):
        render_source(repo, source("b", kustomize={"patches": [{"path": "../../outside/cm.yaml"}]}),
                      app_name="a", namespace=None)


def test_kustomize_errors_name_the_file(tmp_path: Path) -> None:
    repo = write(tmp_path / "repo", {
        "base/kustomization.yaml": "resources: [cm.yaml]\n",
        "base/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n x: [\n",
        "app/kustomization.yaml": "resources: [../base]\n",
    })
    with pytest.raises(RenderError) as err:
        render_source(repo, source("app"), app_name="a", namespace=None)
    assert (err.value.file, err.value.line) == ("base/cm.yaml", 4) and "did not find expected key" in str(err.value)
    assert str(tmp_path) not in str(err.value)
    write(repo, {"base/kustomization.yaml": "resources: [cm.yaml]\nbogus: 1\n"})
    with pytest.raises(RenderError) as err:
        render_source(repo, source("app"), app_name="a", namespace=None)
    assert err.value.file == "base/kustomization.yaml" and 'unknown field "bogus"' in str(err.value)


# --------------------------------------------------------------------------- helm


def helm_repo(tmp_path: Path) -> Path:
    return write(tmp_path / "repo", {
        **{f"charts/web/{k}": v for k, v in CHART.items()},
        "charts/web/values-prod.yaml": "replicas: 3\ncolor: green\n",
        "envs/prod/extra.yaml": "extra: from-env-dir\n",
    })


def test_helm_chart_defaults(tmp_path: Path) -> None:
    repo = helm_repo(tmp_path)
    objs = render_source(repo, source("charts/web"), app_name="shop", namespace="shop-ns")
    by = by_kind_name(objs)
    assert set(by) == {"CustomResourceDefinition/widgets.example.com", "Deployment/shop-web",
                       "ConfigMap/shop-settings"}  # release = app name, CRDs included
    dep = by["Deployment/shop-web"]
    assert dep["metadata"]["namespace"] == "shop-ns"  # destination namespace
    assert dep["spec"]["replicas"] == 1 and container(dep)["image"] == "nginx:1.25"


def test_helm_values_in_argo_cd_order(tmp_path: Path) -> None:
    repo = helm_repo(tmp_path)
    src = source("charts/web", helm={
        "releaseName": "rel",
        "namespace": "helm-ns",
        "skipCrds": True,
        "valueFiles": ["values-prod.yaml", "../../envs/prod/extra.yaml", "missing.yaml"],
        "ignoreMissingValueFiles": True,
        "values": "color: red\nport: 8080\n",
        "parameters": [{"name": "image", "value": "nginx:1.27"},
                       {"name": "version", "value": "1.10", "forceString": True}],
    })
    by = by_kind_name(render_source(repo, src, app_name="shop", namespace="shop-ns"))
    assert set(by) == {"Deployment/rel-web", "ConfigMap/rel-settings"}  # skipCrds
    dep, cm = by["Deployment/rel-web"], by["ConfigMap/rel-settings"]
    assert dep["metadata"]["namespace"] == "helm-ns"
    assert dep["spec"]["replicas"] == 3  # valueFiles over values.yaml
    assert dep["metadata"]["labels"]["color"] == "red"  # values over valueFiles
    assert container(dep)["ports"][0]["containerPort"] == 8080
    assert container(dep)["image"] == "nginx:1.27"  # parameters over everything
    assert cm["data"] == {"version": "1.10", "extra": "from-env-dir"}  # forceString keeps "1.10"

    # valuesObject wins over values; a missing value file is an error unless ignored
    src = source("charts/web", helm={"values": "color: red\n", "valuesObject": {"color": "black", "replicas": 4}})
    dep = by_kind_name(render_source(repo, src, app_name="shop", namespace=None))["Deployment/shop-web"]
    assert dep["metadata"]["labels"]["color"] == "black" and dep["spec"]["replicas"] == 4
    assert dep["metadata"]["namespace"] == "default"
    with pytest.raises(RenderError, match=r"charts/web/Chart.yaml: spec.source.helm.valueFiles\[0\]: 'nope.yaml' does not exist"):
        render_source(repo, source("charts/web", helm={"valueFiles": ["nope.yaml"]}), app_name="a", namespace=None)


def test_helm_value_file_outside_the_repository_is_refused(tmp_path: Path) -> None:
    repo = helm_repo(tmp_path)
    (tmp_path / "secret.yaml").write_text("image: stolen\n")
    with pytest.raises(RenderError, match=r"valueFiles\[0\] '../../../secret.yaml' resolves outside the repository"):
        render_source(repo, source("charts/web", helm={"valueFiles": ["../../../secret.yaml"]}),
                      app_name="a", namespace=None)
    (repo / "charts/web/linked.yaml").symlink_to(tmp_path / "secret.yaml")
    with pytest.raises(RenderError, match="charts/web/linked.yaml: illegal symlink: it points outside the repository"):
        render_source(repo, source("charts/web", helm={"valueFiles": ["linked.yaml"]}), app_name="a", namespace=None)


def test_helm_chart_symlink_out_of_the_repo_is_refused(tmp_path: Path) -> None:
    repo = helm_repo(tmp_path)
    (repo / "charts/web/files").mkdir()
    (repo / "charts/web/files/passwd").symlink_to("/etc/passwd")
    with pytest.raises(RenderError, match="charts/web/files/passwd: illegal symlink"):
        render_source(repo, source("charts/web"), app_name="a", namespace=None)


def test_broken_template_names_the_file_and_line(tmp_path: Path) -> None:
    repo = helm_repo(tmp_path)
    write(repo, {"charts/web/templates/broken.yaml": "a: b\nc: {{ .Values.nope.deeper }}\n"})
    with pytest.raises(RenderError) as err:
        render_source(repo, source("charts/web"), app_name="a", namespace=None)
    assert (err.value.file, err.value.line) == ("charts/web/templates/broken.yaml", 2)
    assert str(tmp_path) not in str(err.value)
    write(repo, {"charts/web/templates/broken.yaml": "a: {{ nosuchfunc }}\n"})
    with pytest.raises(RenderError, match='charts/web/templates/broken.yaml:1: .*function "nosuchfunc" not defined'):
        render_source(repo, source("charts/web"), app_name="a", namespace=None)
    write(repo, {"charts/web/templates/broken.yaml": "kind: x\n  a: b\n"})
    with pytest.raises(RenderError, match="charts/web/templates/broken.yaml: helm: YAML parse error"):
        render_source(repo, source("charts/web"), app_name="a", namespace=None)
    # a template that renders a non-object is named by its file too
    write(repo, {"charts/web/templates/broken.yaml": "apiVersion: v1\nkind: ConfigMap\n"})
    with pytest.raises(RenderError, match="charts/web/templates/broken.yaml: document 0: missing metadata.name"):
        render_source(repo, source("charts/web"), app_name="a", namespace=None)


def test_helm_local_dependency_in_charts_dir_and_missing_remote_one(tmp_path: Path) -> None:
    repo = helm_repo(tmp_path)
    write(repo, {
        "charts/web/Chart.yaml": CHART["Chart.yaml"] + "dependencies:\n- name: redis\n  version: 1.0.0\n"
                                 "  repository: file://../redis\n",
        "charts/web/charts/redis/Chart.yaml": "apiVersion: v2\nname: redis\nversion: 1.0.0\n",
        "charts/web/charts/redis/templates/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n"
                                                      "  name: {{ .Release.Name }}-redis\nspec:\n  ports: [{port: 6379}]\n",
    })
    by = by_kind_name(render_source(repo, source("charts/web"), app_name="shop", namespace=None))
    assert "Service/shop-redis" in by and "Deployment/shop-web" in by
    with pytest.raises(RenderError) as err:  # a broken sub-chart template is named by its path
        write(repo, {"charts/web/charts/redis/templates/bad.yaml": "x: {{ .Values.a.b }}\n"})
        render_source(repo, source("charts/web"), app_name="shop", namespace=None)
    assert err.value.file == "charts/web/charts/redis/templates/bad.yaml"
    write(repo, {"charts/web/Chart.yaml": CHART["Chart.yaml"] + "dependencies:\n- name: postgres\n"
                 "  version: 12.0.0\n  repository: https://user:hunter2@charts.example.com\n"})
    with pytest.raises(RenderError) as err:
        render_source(repo, source("charts/web"), app_name="shop", namespace=None)
    assert err.value.file == "charts/web/Chart.yaml"
    assert "postgres" in str(err.value) and "helm dependency build" in str(err.value)
    assert "hunter2" not in str(err.value)


# --------------------------------------------------------------------------- detection


def test_detection_rules(tmp_path: Path) -> None:
    repo = write(tmp_path / "repo", {
        "plain/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n",
        "kust/Kustomization": "resources: [cm.yaml]\n",
        "kust/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: k\n",
        "kyml/kustomization.yml": "resources: [cm.yaml]\n",
        "kyml/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kyml\n",
        **{f"chart/{k}": v for k, v in CHART.items()},
        "both/Chart.yaml": "apiVersion: v2\nname: both\nversion: 0.1.0\n",
        "both/kustomization.yaml": "resources: []\n",
    })
    assert detect_source_type(repo, source("plain")) == "directory"
    assert detect_source_type(repo, source("kust")) == "kustomize"
    assert detect_source_type(repo, source("kyml")) == "kustomize"
    assert detect_source_type(repo, source("chart")) == "helm"
    assert detect_source_type(repo, source("both")) == "kustomize"  # Argo CD: kustomization wins
    assert detect_source_type(repo, source("both", helm={})) == "helm"  # an explicit block forces it
    assert detect_source_type(repo, source("plain", directory={})) == "directory"
    with pytest.raises(RenderError, match="no kustomization.yaml"):
        render_source(repo, source("plain", kustomize={"namePrefix": "x-"}), app_name="a", namespace=None)
    with pytest.raises(RenderError, match="no Chart.yaml"):
        render_source(repo, source("plain", helm={}), app_name="a", namespace=None)
    with pytest.raises(RenderError) as err:
        render_source(repo, source("chart", directory={"recurse": True}), app_name="a", namespace=None)
    assert err.value.file == "chart/Chart.yaml"
    assert "spec.source.directory" in str(err.value) and "Helm" in str(err.value)
    with pytest.raises(RenderError, match="kust/Kustomization: spec.source.directory is set .* Kustomize"):
        render_source(repo, source("kust", directory={}), app_name="a", namespace=None)
    assert [o["metadata"]["name"] for o in render_source(repo, source("kust"), app_name="a", namespace=None)] == ["k"]
    assert [o["metadata"]["name"] for o in render_source(repo, source("plain"), app_name="a", namespace=None)] == ["plain"]


# --------------------------------------------------------------------------- the Application model


def app_doc(src: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "a"},
            "spec": {"source": {"repoURL": "https://git.example.com/r.git", "path": "p", **src},
                     "destination": {"server": "https://k", "namespace": "n"}}}


def test_model_accepts_helm_and_kustomize_and_round_trips() -> None:
    for src in ({"helm": {"valueFiles": ["v.yaml"], "values": "a: 1\n", "valuesObject": {"b": [1]},
                          "parameters": [{"name": "x", "value": "1", "forceString": True}],
                          "releaseName": "r", "skipCrds": True, "namespace": "h", "ignoreMissingValueFiles": True}},
                {"kustomize": {"namePrefix": "p-", "nameSuffix": "-s", "images": ["nginx=nginx:1.27", "nginx:1.27"],
                               "replicas": [{"name": "web", "count": 2}, {"name": "w2", "count": "3"}],
                               "commonLabels": {"a": "b"}, "commonAnnotations": {"c": "d"}, "namespace": "k",
                               "patches": [{"target": {"kind": "Deployment", "labelSelector": "a=b"},
                                            "patch": "[]"}, {"path": "p.yaml"}]}}):
        app = Application.from_manifest(app_doc(src))
        manifest = app.to_manifest()
        assert Application.from_manifest(yaml.safe_load(yaml.safe_dump(manifest))) == app
        key = next(iter(src))
        assert src[key].items() <= manifest["spec"]["source"][key].items()


def test_model_refuses_bad_or_unsupported_source_fields_by_path() -> None:
    with pytest.raises(InvalidSpecError) as err:
        Application.from_manifest(app_doc({"helm": {
            "passCredentials": True, "fileParameters": [], "valueFile": ["typo"],
            "values": "- not a mapping", "parameters": [{"value": "no name"}],
            "valueFiles": ["https://example.com/v.yaml", "$values/v.yaml"]}}))
    lines = {ln.split(": ", 1)[0]: ln.split(": ", 1)[1] for ln in err.value.problems}
    assert lines["spec.source.helm.passCredentials"] == "not supported by gitferry"
    assert lines["spec.source.helm.fileParameters"] == "not supported by gitferry"
    assert lines["spec.source.helm.valueFile"] == "unknown field"
    assert "must be a YAML mapping" in lines["spec.source.helm.values"]
    assert lines["spec.source.helm.parameters[0].name"] == "field required"
    assert "remote value files" in lines["spec.source.helm.valueFiles"]
    with pytest.raises(InvalidSpecError) as err:
        Application.from_manifest(app_doc({"kustomize": {
            "components": ["c"], "nameprefix": "x", "replicas": [{"name": "w", "count": "many"}],
            "patches": [{"patch": "[]", "path": "p.yaml"}], "images": ["=bad"]}}))
    lines = {ln.split(": ", 1)[0]: ln.split(": ", 1)[1] for ln in err.value.problems}
    assert lines["spec.source.kustomize.components"] == "not supported by gitferry"
    assert lines["spec.source.kustomize.nameprefix"] == "unknown field"
    assert "non-negative integer" in lines["spec.source.kustomize.replicas[0].count"]
    assert lines["spec.source.kustomize.patches[0]"] == "exactly one of patch or path"
    assert "invalid image" in lines["spec.source.kustomize.images"]
    with pytest.raises(InvalidSpecError) as err:
        Application.from_manifest(app_doc({"helm": {}, "directory": {"recurse": True}}))
    assert err.value.problems == ["spec.source: only one of directory, helm, kustomize may be set (got directory, helm)"]


# --------------------------------------------------------------------------- end to end from git


def test_helm_chart_rendered_from_a_real_checkout(git_server: GitServer, git_cache: Path) -> None:
    name = f"helm-{os.getpid()}-{id(git_cache) % 10000}"
    url = git_server.make_repo(name, {**{f"deploy/web/{k}": v for k, v in CHART.items()},
                                      "deploy/web/prod.yaml": "replicas: 2\n"})
    tree = git.checkout(url, git.resolve(git.ls_remote(url), "HEAD"), None, git_cache)
    app = Application.from_manifest({**app_doc({"helm": {"valueFiles": ["prod.yaml"]}}),
                                     "metadata": {"name": "shop"}})
    app.spec.source.repo_url, app.spec.source.path = url, "deploy/web"
    objs = by_kind_name(render_source(tree, app.spec.source, app_name=app.name,
                                      namespace=app.spec.destination.namespace))
    assert objs["Deployment/shop-web"]["spec"]["replicas"] == 2
    assert objs["Deployment/shop-web"]["metadata"]["namespace"] == "n"
    assert list((tree / "deploy/web").iterdir()) and not (tree / "deploy/web/charts").exists()  # nothing written


def test_kube_version_reaches_helm(tmp_path: Path) -> None:
    repo = helm_repo(tmp_path)
    write(repo, {"charts/web/templates/kv.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kv\n"
                 "data:\n  minor: {{ .Capabilities.KubeVersion.Minor | quote }}\n"})
    by = by_kind_name(render_source(repo, source("charts/web"), app_name="a", namespace=None, kube_version="1.31.0"))
    assert by["ConfigMap/kv"]["data"]["minor"] == "31"
    by = by_kind_name(render_source(repo, source("charts/web", helm={"kubeVersion": "1.29.0"}), app_name="a",
                                    namespace=None, kube_version="1.31.0"))
    assert by["ConfigMap/kv"]["data"]["minor"] == "29"  # the Application's own setting wins
