"""Application names as DNS-1123 subdomains, and the shorter values derived from them where AWS
or Kubernetes allow less (SQS MessageGroupId, label values)."""

from __future__ import annotations

import re

from gitferry import queues, tracking
from gitferry.model import Application

SQS_GROUP_ID = re.compile(r"^[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _names() -> list[str]:
    return ["example.guestbook", "a" * 63, "a" * 64, "x." * 100 + "y", "b" * 253,
            "b" * 200 + ".one", "b" * 200 + ".two"]


def test_group_ids_fit_sqs_and_stay_distinct() -> None:
    groups = [queues.group_id(n) for n in _names()]
    assert all(SQS_GROUP_ID.match(g) for g in groups), groups
    assert len(set(groups)) == len(groups)
    assert queues.group_id("example.guestbook") == "example.guestbook"


def test_label_values_fit_a_label_and_stay_distinct() -> None:
    values = [tracking.label_value(n) for n in _names()]
    assert all(len(v) <= 63 and LABEL_VALUE.match(v) for v in values), values
    assert len(set(values)) == len(values)
    assert tracking.label_selector("example.guestbook") == "gitferry.dev/app=example.guestbook"


def test_subdomain_names_validate() -> None:
    for name in _names():
        doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": name},
               "spec": {"project": "default", "source": {"repoURL": "https://git.example/r.git", "path": "."},
                        "destination": {"server": "https://kubernetes.default.svc", "namespace": "x"}}}
        assert Application.from_manifest(doc).name == name
