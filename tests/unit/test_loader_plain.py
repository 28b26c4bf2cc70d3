"""The loader's direct constructor answers exactly as PyYAML's SafeConstructor followed by the
tree check, or leaves the document to them.

The reference here is what the loader did before: ``yaml.load_all`` with the loader's own
resolver (timestamps stay strings), then ``_check_tree`` (keys made strings, bounds checked)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from gitferry import loader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def reference(text: str, limits: loader.Limits = loader.DEFAULT_LIMITS) -> list[Any]:
    out = []
    for i, doc in enumerate(yaml.load_all(text, Loader=loader._K8sLoader)):  # noqa: S506 - SafeLoader based
        if doc is not None:
            out.append(loader._check_tree(doc, limits, i + 1))
    return out


def typed(value: Any) -> Any:
    """``value`` with every scalar's type beside it, so 1 / 1.0 / True and "1" differ."""
    if isinstance(value, dict):
        return [(typed(k), typed(v)) for k, v in value.items()]  # in order: key order is kept too
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, repr(value))


SCALARS = ["0644", "0o17", "0x1F", "0b101", "1_000", "1:20", "190:20:30", "1e3", "1.0e+3", ".5", "-.inf",
           ".NaN", "yes", "No", "on", "OFF", "y", "n", "~", "null", "Null", "true", "FALSE", "", "2024-01-01",
           "2001-12-14t21:59:43.10-05:00", "12", "-0", "+12", "3.14", "007", "1.", "a b", "'quoted'",
           '"dq"', "!!str 12", "!!int '7'", "!!float 1", "!!binary aGk=", "=", "<<"]
scalar = st.sampled_from(SCALARS) | st.text(alphabet="ab01:.-_ eE+x", min_size=1, max_size=6)
key = st.sampled_from(["a", "1", "1.0", "true", "~", "null", "b", "01", "0x1", "=", "<<", "? c"]) | scalar


def _block(value: Any, indent: int) -> str:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return " {}\n"
        return "\n" + "".join(f"{pad}{k}:{_block(v, indent + 2)}" for k, v in value.items())
    if isinstance(value, list):
        if not value:
            return " []\n"
        return "\n" + "".join(f"{pad}-{_block(v, indent + 2)}" for v in value)
    return f" {value}\n"


tree = st.recursive(scalar, lambda inner: st.lists(inner, max_size=4)
                    | st.lists(st.tuples(key, inner), max_size=4).map(lambda kv: dict(kv)), max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tree, min_size=1, max_size=3), st.booleans())
def test_direct_construction_equals_the_reference(docs: list[Any], flow: bool) -> None:
    parts = []
    for doc in docs:
        parts.append("---" + (_block(doc, 0) if not flow else " " + yaml.safe_dump(doc, default_flow_style=True)))
    text = "".join(parts)
    try:
        expected: Any = typed(reference(text))
    except (yaml.YAMLError, ValueError, loader.LoadError, TypeError) as exc:
        expected = type(exc)
    try:
        got: Any = typed(loader.load_all(text))
    except loader.LoadError:
        got = yaml.YAMLError if expected is not loader.LoadError else loader.LoadError
    except (ValueError, TypeError) as exc:
        got = type(exc)
    if isinstance(expected, type) and issubclass(expected, yaml.YAMLError):
        expected = yaml.YAMLError
    assert got == expected, text


def test_rendered_output_takes_the_direct_path() -> None:
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: {a: b}\n"
            "data:\n  n: 1\n  f: 1.5\n  t: true\n  z: null\n  s: |\n    line\n")
    node = yaml.compose(text, Loader=loader._K8sLoader)  # noqa: S506 - SafeLoader based
    plain = loader._construct_plain(loader._K8sLoader(""), node, loader.DEFAULT_LIMITS, 1)
    assert plain is not loader._NOT_PLAIN and [plain] == reference(text)


@pytest.mark.parametrize("text", ["a: !!binary aGk=\n", "base: {x: 1}\nm:\n  <<: {y: 2}\n", "a: !!set {x}\n",
                                  "? [a]\n: 1\n", "a: 1\na: {b: 2}\n", "1: a\n'1': b\n"])
def test_other_documents_are_left_to_the_reference(text: str) -> None:
    node = yaml.compose(text, Loader=loader._K8sLoader)  # noqa: S506 - SafeLoader based
    assert loader._construct_plain(loader._K8sLoader(""), node, loader.DEFAULT_LIMITS, 1) is loader._NOT_PLAIN


def test_bounds_are_those_of_the_reference() -> None:
    deep = "a:\n" + "".join("  " * i + "- \n" for i in range(1, 4)) + "  " * 4 + "- 1\n"
    with pytest.raises(loader.LoadError, match="nested deeper than 3 levels"):
        loader.load_all(deep, limits=loader.Limits(max_depth=3))
    wide = "a: [" + ", ".join("[1]" for _ in range(10)) + "]\n"
    with pytest.raises(loader.LoadError, match="more than 5 values"):
        loader.load_all(wide, limits=loader.Limits(max_nodes=5))
