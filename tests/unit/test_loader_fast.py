"""The YAML loader's fast path (yaml_rs) answers only for texts both grammars read alike.

Typical rendered output (what helm and kustomize print) must take it, or the render bench
measures PyYAML again; every YAML 1.1 form that YAML 1.2 reads otherwise must be refused to
PyYAML, and the final answer must be PyYAML's."""

from __future__ import annotations

import pytest
import yaml
from gitferry import loader

HELM_LIKE = """\
---
# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app.kubernetes.io/name: web
    helm.sh/chart: web-0.1.0
  annotations:
    argocd.argoproj.io/sync-wave: "2"
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    spec:
      containers:
        - name: web
          image: "nginx:1.27.1"
          args: [--port, "8080", -v]
          ports:
            - containerPort: 8080
              protocol: TCP
          resources:
            limits: {cpu: 250m, memory: 128Mi}
          readinessProbe:
            initialDelaySeconds: 0.5
          env:
            - name: EMPTY
              value: ""
            - name: SCRIPT
              value: |
                echo hello
                exit 0
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  enabled: "true"
  ratio: "1.5"
  nothing: null
  flag: true
"""


def test_helm_like_output_takes_the_fast_path() -> None:
    fast = loader._fast_load(HELM_LIKE, loader.DEFAULT_LIMITS)
    assert fast is not None
    assert fast == [d for d in yaml.safe_load_all(HELM_LIKE) if d is not None]
    assert loader.load_all(HELM_LIKE) == fast


@pytest.mark.parametrize("scalar, meaning", [
    ("0644", 420),            # 1.1 octal; 1.2 reads 644
    ("0o17", "0o17"),         # 1.2 octal; 1.1 a string
    ("yes", True),            # 1.1 boolean; 1.2 a string
    ("Off", False),
    ("1:20", 80),             # 1.1 sexagesimal
    ("1e3", "1e3"),           # 1.1 needs a dot for a float; 1.2 does not
    ("1_000", 1000),          # 1.1 allows "_"
    ("_.17", "_.17"),
    (".inf", float("inf")),
    ("0x1F", 31),
    ("=", loader.LoadError),  # 1.1's value tag: PyYAML has no constructor for it
    ("+12", 12),
])
def test_scalars_the_grammars_read_differently_go_to_pyyaml(scalar: str, meaning: object) -> None:
    text = f"kind: ConfigMap\ndata:\n  v: {scalar}\n"
    assert loader._fast_load(text, loader.DEFAULT_LIMITS) is None
    if meaning is loader.LoadError:
        with pytest.raises(loader.LoadError):
            loader.load_one(text)
    else:
        assert loader.load_one(text)["data"]["v"] == meaning


@pytest.mark.parametrize("text", [
    "a: &x {b: 1}\nc: *x\n",          # anchors and aliases (bounded by the reference's checks)
    "a: !!str 1\n",                   # tags
    "base: {x: 1}\nm:\n  <<: {y: 2}\n",  # merge keys
    "%YAML 1.1\n---\na: 1\n",         # directives
    "a: caf\u00e9\n",                  # non-ASCII
    "a: [1,\n  2]\n",                 # a multi-line flow
    "? [a]\n: 1\n",                   # a complex key
    "a: 1\r\nb: 2\r\n",               # CR line ends
])
def test_constructs_left_to_the_reference(text: str) -> None:
    assert loader._fast_load(text, loader.DEFAULT_LIMITS) is None


def test_a_bound_reached_on_the_fast_path_is_worded_by_the_reference() -> None:
    deep = "a:\n" + "".join("  " * i + "- \n" for i in range(1, 4)) + "  " * 4 + "- 1\n"
    limits = loader.Limits(max_depth=3)
    assert loader._fast_load(deep, limits) is None
    with pytest.raises(loader.LoadError, match="nested deeper than 3 levels"):
        loader.load_all(deep, limits=limits)


def test_a_bad_text_keeps_pyyamls_error_and_line() -> None:
    bad = "a: 1\nb: [unclosed\nc: 2\n"
    with pytest.raises(loader.LoadError) as err:
        loader.load_all(bad)
    assert err.value.line == 3
