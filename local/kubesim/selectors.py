"""Label and field selectors, parsed the way the API server parses them.

Clients (kubectl ``-l`` / ``--field-selector``, the Python client's ``label_selector=``)
send the textual form; a selector the real server would reject must be rejected here
too (400 BadRequest) instead of silently matching everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local.kubesim.errors import bad_request

# The fields the real server indexes per resource (besides metadata.name / metadata.namespace).
# Asking for any other field is a 400 there, so it is a 400 here.
_FIELD_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): (
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName",
    ),
    ("", "secrets"): ("type",),
    ("", "namespaces"): ("status.phase",),
    ("", "nodes"): ("spec.unschedulable",),
    ("", "events"): (
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
    ),
    ("events.k8s.io", "events"): (
        "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
        "reason", "reportingController", "type",
    ),
    ("apps", "replicasets"): ("status.replicas",),
    ("batch", "jobs"): ("status.successful",),
    ("certificates.k8s.io", "certificatesigningrequests"): ("spec.signerName",),
}

_KEY_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE_RE = re.compile(r"^(([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?)$")


@dataclass(frozen=True)
class Requirement:
    """One clause: ``key op values`` with op in =, !=, in, notin, exists, !."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        if self.op in ("!=", "notin"):
            return not present or labels[self.key] not in self.values
        raise AssertionError(self.op)


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside ``(...)`` value sets."""
    parts: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _check_key(key: str, text: str) -> None:
    if not _KEY_RE.match(key) or len(key.split("/")[-1]) > 63:
        raise bad_request(f'unable to parse requirement: invalid label key "{key}" in selector "{text}"')


def _check_value(value: str, text: str) -> None:
    if len(value) > 63 or not _VALUE_RE.match(value):
        raise bad_request(f'unable to parse requirement: invalid label value: "{value}" in selector "{text}"')


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse ``a=b,c!=d,e in (f,g),h notin (i),j,!k``; raises 400 on syntax errors."""
    reqs: list[Requirement] = []
    for clause in _split_top(text or ""):
        m = re.match(r"^(\S+)\s+(in|notin)\s*\((.*)\)$", clause)
        if m:
            key, op, raw = m.group(1), m.group(2), m.group(3)
            values = tuple(v.strip() for v in raw.split(",") if v.strip())
            _check_key(key, text)
            for v in values:
                _check_value(v, text)
            if not values and op == "in":
                raise bad_request(f'unable to parse requirement: for \'in\', \'notin\' operators, values set can\'t be empty: "{text}"')
            reqs.append(Requirement(key, op, values))
            continue
        if clause.startswith("!"):
            key = clause[1:].strip()
            _check_key(key, text)
            reqs.append(Requirement(key, "!"))
            continue
        m = re.match(r"^([^=!\s]+)\s*(==|=|!=)\s*(.*)$", clause)
        if m:
            key, op, value = m.group(1), m.group(2), m.group(3).strip()
            _check_key(key, text)
            _check_value(value, text)
            reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
            continue
        if re.search(r"[\s()=!<>]", clause):
            raise bad_request(f'unable to parse requirement: found \'{clause}\', expected: \'=\', \'!=\', \'==\', \'in\', notin\' in selector "{text}"')
        _check_key(clause, text)
        reqs.append(Requirement(clause, "exists"))
    return reqs


def label_matcher(text: str) -> Callable[[dict[str, Any]], bool]:
    """Compile a label selector into a predicate on whole objects."""
    reqs = parse_label_selector(text)
    if not reqs:
        return lambda obj: True

    def match(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r.matches(labels) for r in reqs)

    return match


def _field_value(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if isinstance(cur, dict):
        # events "source" is an object; the server matches source.component.
        return str(cur.get("component", ""))
    return str(cur)


def field_matcher(text: str, group: str, plural: str, kind: str) -> Callable[[dict[str, Any]], bool]:
    """Compile a field selector (``metadata.name=x,status.phase!=Running``) for one resource.

    Only the fields the real server supports for that resource are accepted; anything
    else is the same 400 the server gives (``field label not supported: ...``).
    """
    allowed = {"metadata.name", "metadata.namespace"} | set(_FIELD_PATHS.get((group, plural), ()))
    clauses: list[tuple[str, bool, str]] = []
    for clause in _split_top(text or ""):
        m = re.match(r"^([^=!]+?)\s*(==|=|!=)\s*(.*)$", clause)
        if not m:
            raise bad_request(f'invalid selector: \'{text}\'; can\'t understand \'{clause}\'')
        path, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        if path not in allowed:
            raise bad_request(f'"{path}" is not a known field selector: only "metadata.name", "metadata.namespace"'
                              if not _FIELD_PATHS.get((group, plural)) else f"field label not supported: {path}")
        clauses.append((path, op == "!=", value))
    if not clauses:
        return lambda obj: True

    def match(obj: dict[str, Any]) -> bool:
        for path, negate, value in clauses:
            actual = _field_value(obj, path)
            if (actual == value) == negate:
                return False
        return True

    return match
