"""Property-based tests (hypothesis) of the input parsers: the Application parser, the
manifest loader, the webhook parsers and diff normalisation. Example counts are bounded so
the whole file runs in seconds; ``make fuzz`` explores the same properties for longer."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.properties import (
    APP_PATHS,
    PROVIDER_HEADERS,
    check_application,
    check_diff,
    check_manifest_text,
    check_webhook,
)

# make test: 150 fixed (derandomized) examples each, so a run never fails on luck; make fuzz's
# fallback sets GITFERRY_HYPOTHESIS_EXAMPLES and explores at random.
EXAMPLES = settings(max_examples=int(os.environ.get("GITFERRY_HYPOTHESIS_EXAMPLES", "150")), deadline=None, database=None,
                    derandomize="GITFERRY_HYPOTHESIS_EXAMPLES" not in os.environ,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
                    st.text(max_size=20), st.sampled_from(["HEAD", "main", "v1.2.3", "5s", "-1", "", "https://x/y.git"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)
keyed = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["name", "value", "key", "port", "image", "data", "spec", "items", "x"]),
                    inner, max_size=4)), max_leaves=10)

seen: Counter[str] = Counter()


@EXAMPLES
@given(st.lists(st.tuples(st.sampled_from(APP_PATHS), json_values), max_size=4))
def test_application_parser_accepts_or_names_every_bad_field(mutations: list[tuple[tuple[str, ...], Any]]) -> None:
    seen[f"app:{check_application(mutations)}"] += 1


@EXAMPLES
@given(st.one_of(
    st.text(max_size=300),
    json_values.map(lambda v: yaml.safe_dump(v)),
    st.lists(json_values, max_size=3).map(lambda docs: yaml.safe_dump_all(docs)),
    st.tuples(json_values, st.integers(0, 200), st.sampled_from(["\t", ":", "- ", "{", "]", "&a", "*a", "!!python/object", "\x00", "---\n"]))
      .map(lambda t: (lambda s: s[:t[1]] + t[2] + s[t[1]:])(yaml.safe_dump(t[0]))),
))
def test_manifest_loader_loads_or_names_the_file(text: str) -> None:
    seen[f"yaml:{check_manifest_text(text)}"] += 1


@EXAMPLES
@given(st.one_of(st.text(max_size=200), json_values.map(json.dumps)))
def test_json_manifest_loader_loads_or_names_the_file(text: str) -> None:
    seen[f"json:{check_manifest_text(text, 'objects.json')}"] += 1


push_shapes = st.fixed_dictionaries({}, optional={
    "ref": json_values, "after": json_values, "repository": json_values, "project": json_values,
    "push": json_values, "changes": json_values,
})


@EXAMPLES
@given(st.sampled_from(sorted(PROVIDER_HEADERS)), st.one_of(
    push_shapes.map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=100),
    json_values.map(lambda v: json.dumps(v).encode()),
))
def test_webhook_parsers_parse_or_refuse_with_400(provider: str, body: bytes) -> None:
    seen[f"webhook:{check_webhook(provider, body)}"] += 1


k8s_objects = st.fixed_dictionaries(
    {"apiVersion": st.sampled_from(["v1", "apps/v1", "example.com/v1"]),
     "kind": st.sampled_from(["ConfigMap", "Secret", "Deployment", "Service", "Widget"]),
     "metadata": st.fixed_dictionaries({"name": st.text("abc-", min_size=1, max_size=8)},
                                       optional={"namespace": st.just("ns"), "labels": st.dictionaries(
                                           st.text("abk", min_size=1, max_size=4), st.text(max_size=4), max_size=3),
                                           "annotations": st.dictionaries(st.text("abk", min_size=1, max_size=4),
                                                                          st.text(max_size=4), max_size=3)})},
    optional={"template": st.fixed_dictionaries({"spec": st.fixed_dictionaries({"containers": st.lists(
                  st.fixed_dictionaries({"name": json_values}, optional={"image": st.text(max_size=5),
                                                                          "ports": st.lists(keyed, max_size=2)}),
                  max_size=3)})}),
              "data": st.dictionaries(st.text("abk", min_size=1, max_size=4), st.text(max_size=6), max_size=3),
              "stringData": st.dictionaries(st.text("abk", min_size=1, max_size=4), st.text(max_size=6), max_size=3),
              "spec": keyed, "status": keyed})


@EXAMPLES
@given(k8s_objects)
def test_diff_normalise_is_idempotent_and_self_comparison_is_synced(obj: dict[str, Any]) -> None:
    seen[f"diff:{check_diff(obj)}"] += 1


def test_property_report(outcome: Any) -> None:
    """One report row per input class (runs after the property tests in this file)."""
    groups: dict[str, Counter[str]] = {}
    for key, n in seen.items():
        cls, result = key.split(":")
        groups.setdefault(cls, Counter())[result] += n
    names = {"app": "Application parser (hypothesis)", "yaml": "YAML manifest loader (hypothesis)",
             "json": "JSON manifest loader (hypothesis)", "webhook": "webhook parsers (hypothesis)",
             "diff": "diff normalise / self-compare (hypothesis)"}
    for cls, counts in sorted(groups.items()):
        outcome(names[cls], cases=sum(counts.values()),
                result=", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ", no crash")
    assert groups, "no property test ran before the report"
