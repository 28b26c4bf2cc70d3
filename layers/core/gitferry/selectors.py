"""Kubernetes label selectors (``kubectl -l`` / ``argocd app list -l`` syntax), parsed and matched.

Grammar (apimachinery ``labels.Parse``): requirements separated by commas, each one of
``key``, ``!key``, ``key=value``, ``key==value``, ``key!=value``, ``key in (v1,v2)``,
``key notin (v1,v2)``. Keys and values follow the label rules (a key is an optional DNS
subdomain prefix and ``/`` then a name of at most 63 characters; a value is at most 63
characters of alphanumerics, ``-``, ``_`` and ``.``, starting and ending alphanumeric, or empty).
``!=`` and ``notin`` match objects without the key too, as in Kubernetes. Pure functions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Requirement", "SelectorError", "matches", "parse"]

#: the longest selector accepted (a selector is typed by a person)
MAX_SELECTOR_CHARS = 4096

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SET = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQ = re.compile(r"^(?P<key>[^=!\s]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^=!\s]*)$")


class SelectorError(ValueError):
    """A selector that does not parse; the message names the requirement."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # exists | !exists | = | != | in | notin
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # != and notin


def _key(text: str, requirement: str) -> str:
    prefix, _, name = text.rpartition("/")
    if prefix and (len(prefix) > 253 or not _PREFIX.match(prefix)):
        raise SelectorError(f"{requirement!r}: key prefix {prefix!r} must be a DNS-1123 subdomain")
    if not _NAME.match(name):
        raise SelectorError(f"{requirement!r}: key {text!r} must be 63 characters or less, alphanumeric, '-', '_' "
                            "or '.', beginning and ending with an alphanumeric character")
    return text


def _value(text: str, requirement: str) -> str:
    if not _VALUE.match(text):
        raise SelectorError(f"{requirement!r}: value {text!r} must be 63 characters or less, alphanumeric, '-', '_' "
                            "or '.', beginning and ending with an alphanumeric character")
    return text


def _split(selector: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError("unbalanced ')'")
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if depth:
        raise SelectorError("unbalanced '('")
    parts.append("".join(current).strip())
    return parts


def parse(selector: str) -> list[Requirement]:
    """The requirements of ``selector`` (empty: matches everything); SelectorError otherwise."""
    if len(selector) > MAX_SELECTOR_CHARS:
        raise SelectorError(f"longer than {MAX_SELECTOR_CHARS} characters")
    if not selector.strip():
        return []
    out: list[Requirement] = []
    for part in _split(selector):
        if not part:
            raise SelectorError("empty requirement (two commas in a row, or a trailing comma)")
        found = _SET.match(part)
        if found:
            values = tuple(v.strip() for v in found["values"].split(","))
            if values == ("",):
                raise SelectorError(f"{part!r}: for 'in', 'notin' operators, values set can't be empty")
            out.append(Requirement(_key(found["key"], part), found["op"], tuple(_value(v, part) for v in values)))
            continue
        found = _EQ.match(part)
        if found:
            op = "!=" if found["op"] == "!=" else "="
            out.append(Requirement(_key(found["key"], part), op, (_value(found["value"], part),)))
            continue
        if part.startswith("!"):
            out.append(Requirement(_key(part[1:].strip(), part), "!exists"))
            continue
        if re.search(r"[\s=!()]", part):
            raise SelectorError(f"{part!r}: not a requirement (key, !key, key=value, key!=value, "
                                "key in (a,b), key notin (a,b))")
        out.append(Requirement(_key(part, part), "exists"))
    return out


def matches(requirements: list[Requirement], labels: Mapping[str, str]) -> bool:
    return all(r.matches(labels) for r in requirements)
