"""Bounded YAML / JSON parsing: the one parser for everything gitferry reads.

Manifests, kustomizations, ``Chart.yaml``, values, a Helm repository's ``index.yaml``,
the output of helm and kustomize and API request bodies all go through :func:`load_all`
/ :func:`load_one`. A hostile document must cost bounded memory and time and end in an
error naming the file (and line), never in a ``RecursionError`` or an exhausted Lambda:

- size: the text is refused above ``limits.max_bytes`` before it is parsed;
- documents: at most ``limits.max_documents`` per stream;
- aliases: YAML ``*alias`` references share one node, so ``a: &a [*b, *b, ...]`` chains
  expand exponentially the moment anyone walks the data (1 KB -> 10^7 nodes). Each
  document's node graph is measured *as expanded* (memoised over shared nodes) before
  anything is constructed, and refused above ``limits.max_nodes``; at most
  ``limits.max_aliases`` alias references, and recursive anchors are refused;
- depth: nesting deeper than ``limits.max_depth`` is refused (JSON too: Python's json
  raises RecursionError around 1000 levels, which is not a parse error).

YAML is read the way Kubernetes tooling reads it: timestamps stay strings and mapping
keys become strings, so the result is plain JSON data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["LoadError", "Limits", "DEFAULT_LIMITS", "load_all", "load_one"]

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _K8sLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """SafeLoader without the timestamp resolver (``2024-01-01`` stays a string)."""


_K8sLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Limits:
    """What one parsed text may cost (see the README's "Bounds")."""

    max_bytes: int = 64 * 1024 * 1024
    max_documents: int = 50_000
    #: scalars + collections of one document counted as if every alias were expanded
    max_nodes: int = 2_000_000
    max_aliases: int = 10_000
    max_depth: int = 200


DEFAULT_LIMITS = Limits()


class LoadError(ValueError):
    """A text that is not valid or exceeds a bound; ``line`` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def load_all(text: str | bytes, *, as_json: bool = False, limits: Limits = DEFAULT_LIMITS) -> list[Any]:
    """Every non-empty document of ``text`` (one for JSON), as plain JSON data."""
    if isinstance(text, bytes):
        if len(text) > limits.max_bytes:
            raise LoadError(_too_big(len(text), limits))
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise LoadError(f"not UTF-8 text (invalid byte at offset {exc.start})") from None
    if len(text) > limits.max_bytes:
        raise LoadError(_too_big(len(text), limits))
    if as_json:
        return _load_json(text, limits)
    return _load_yaml(text, limits)


def load_one(text: str | bytes, *, as_json: bool = False, limits: Limits = DEFAULT_LIMITS) -> Any:
    """The single document of ``text`` (None when empty); more than one is an error."""
    docs = load_all(text, as_json=as_json, limits=limits)
    if len(docs) > 1:
        raise LoadError(f"expected one document, found {len(docs)}")
    return docs[0] if docs else None


def _too_big(size: int, limits: Limits) -> str:
    return f"{size} bytes is larger than the {_mib(limits.max_bytes)} limit"


def _mib(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n} bytes"


# --------------------------------------------------------------------------- JSON


def _load_json(text: str, limits: Limits) -> list[Any]:
    if not text.strip():
        return []
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(f"invalid JSON: {exc.msg}", exc.lineno) from None
    except RecursionError:
        raise LoadError(f"nested deeper than {limits.max_depth} levels") from None
    _check_depth(doc, limits)
    return [doc]


def _check_depth(doc: Any, limits: Limits) -> None:
    """Iterative: a deep document must not exhaust the stack while being measured."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    nodes = 0
    while stack:
        obj, depth = stack.pop()
        nodes += 1
        if depth > limits.max_depth:
            raise LoadError(f"nested deeper than {limits.max_depth} levels")
        if isinstance(obj, dict):
            stack.extend((v, depth + 1) for v in obj.values())
        elif isinstance(obj, list):
            stack.extend((v, depth + 1) for v in obj)
    if nodes > limits.max_nodes:
        raise LoadError(f"more than {limits.max_nodes} values in one document")


# --------------------------------------------------------------------------- YAML


def _line(exc: yaml.YAMLError) -> int | None:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else None


#: an anchor (``&name``): without one in the text no alias can exist
_ANCHOR = re.compile(r"&[^\s,\[\]{}]")


def _load_yaml(text: str, limits: Limits) -> list[Any]:
    aliases_possible = _ANCHOR.search(text) is not None
    loader = _K8sLoader(text)
    docs: list[Any] = []
    count = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            count += 1
            if count > limits.max_documents:
                raise LoadError(f"more than {limits.max_documents} YAML documents", node.start_mark.line + 1)
            line = node.start_mark.line + 1
            if aliases_possible:
                _measure(node, limits)
            data = _NOT_PLAIN if aliases_possible else _construct_plain(loader, node, limits, line)
            if data is _NOT_PLAIN:
                try:
                    data = loader.construct_document(node)
                except RecursionError:
                    raise LoadError(f"nested deeper than {limits.max_depth} levels", line) from None
                if data is not None:
                    # Shared (aliased) objects are copied into a tree; without anchors none can be
                    # shared, so keys are fixed in place while depth and size are checked.
                    docs.append(_stringify_keys(data) if aliases_possible else _check_tree(data, limits, line))
            elif data is not None:
                docs.append(data)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "maximum nesting depth" in str(problem):
            problem = f"nested deeper than {limits.max_depth} levels"
        raise LoadError(f"invalid YAML: {problem}", _line(exc)) from None
    finally:
        loader.dispose()
    return docs


_NOT_PLAIN = object()
_STR, _MAP, _SEQ = "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
#: the other tags a plain document holds, with the SafeConstructor method that reads each
_SCALARS = {"tag:yaml.org,2002:int": "construct_yaml_int", "tag:yaml.org,2002:float": "construct_yaml_float",
            "tag:yaml.org,2002:bool": "construct_yaml_bool", "tag:yaml.org,2002:null": "construct_yaml_null"}


def _construct_plain(loader: Any, root: yaml.Node, limits: Limits, line: int) -> Any:
    """The document of ``root`` as PyYAML's SafeConstructor builds it, then as
    :func:`_check_tree` leaves it (depth and size checked, keys made strings), in one
    iterative pass; or :data:`_NOT_PLAIN` when the document holds anything else than
    mappings with scalar keys, sequences and str / int / float / bool / null scalars (merge
    keys, ``=``, sets, binary, explicit or unknown tags), which the reference constructor then
    builds. Only for documents without aliases (no node is shared).

    SafeConstructor's own walk (generators and a dispatch per node) is most of the parse time of
    a large render; this one calls its methods only for the non-string scalars."""
    scalar_of = {tag: getattr(loader, name) for tag, name in _SCALARS.items()}

    def scalar(node: yaml.Node) -> Any:
        if node.tag == _STR:
            return node.value
        read = scalar_of.get(node.tag)
        if read is None or not isinstance(node, yaml.ScalarNode):
            raise _NotPlain
        return read(node)

    try:
        if isinstance(root, yaml.ScalarNode):
            return scalar(root)
        top = _empty(root)
        pending: list[tuple[yaml.Node, Any, int]] = [(root, top, 1)]
        nodes = 0
        while pending:
            node, into, depth = pending.pop()
            nodes += 1
            if depth > limits.max_depth:
                raise LoadError(f"nested deeper than {limits.max_depth} levels", line)
            if type(into) is dict:
                odd_keys = False
                for key_node, value_node in node.value:
                    if type(key_node) is not yaml.ScalarNode:
                        raise _NotPlain
                    key = key_node.value if key_node.tag == _STR else scalar(key_node)
                    if type(value_node) is yaml.ScalarNode:
                        into[key] = value_node.value if value_node.tag == _STR else scalar(value_node)
                    else:
                        into[key] = child = _empty(value_node)
                        pending.append((value_node, child, depth + 1))
                    odd_keys = odd_keys or type(key) is not str
                if odd_keys:
                    for k in [k for k in into if not isinstance(k, str)]:
                        into[str(k)] = into.pop(k)
                if len(into) != len(node.value):
                    raise _NotPlain  # a repeated key: its first value must not be walked, nor counted
            else:
                for item in node.value:
                    if type(item) is yaml.ScalarNode:
                        into.append(item.value if item.tag == _STR else scalar(item))
                    else:
                        into.append(child := _empty(item))
                        pending.append((item, child, depth + 1))
        if nodes > limits.max_nodes:
            raise LoadError(f"more than {limits.max_nodes} values in one document", line)
        return top
    except _NotPlain:
        return _NOT_PLAIN


class _NotPlain(Exception):
    pass


def _empty(node: yaml.Node) -> Any:
    if type(node) is yaml.MappingNode and node.tag == _MAP:
        return {}
    if type(node) is yaml.SequenceNode and node.tag == _SEQ:
        return []
    raise _NotPlain


def _measure(root: yaml.Node, limits: Limits) -> None:
    """Refuse a node graph whose expansion exceeds the budget, before constructing it.

    Iterative post-order walk; ``size`` memoises every node's expanded size, so a node
    shared by N aliases is walked once but counted N times."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    aliases = 0
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(size[id(c)] for c in _children(node))
            if total > limits.max_nodes:
                raise LoadError(
                    f"document expands to more than {limits.max_nodes} nodes (YAML aliases); refused",
                    node.start_mark.line + 1)
            size[key] = total
            continue
        if key in size:
            aliases += 1  # a node met again is an alias reference
            if aliases > limits.max_aliases:
                raise LoadError(f"more than {limits.max_aliases} YAML alias references "
                                "(the line is the anchor's); refused", node.start_mark.line + 1)
            continue
        if key in on_path:
            raise LoadError("recursive YAML alias (an anchor used inside itself)", node.start_mark.line + 1)
        if depth > limits.max_depth:
            raise LoadError(f"nested deeper than {limits.max_depth} levels", node.start_mark.line + 1)
        on_path.add(key)
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in _children(node))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_tree(doc: Any, limits: Limits, line: int) -> Any:
    """Depth and size of an unshared document checked, non-string keys made strings, in place."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    nodes = 0
    while stack:
        obj, depth = stack.pop()
        nodes += 1
        if depth > limits.max_depth:
            raise LoadError(f"nested deeper than {limits.max_depth} levels", line)
        if isinstance(obj, dict):
            if not all(isinstance(k, str) for k in obj):
                for k in [k for k in obj if not isinstance(k, str)]:
                    obj[str(k)] = obj.pop(k)
            stack.extend((v, depth + 1) for v in obj.values() if isinstance(v, (dict, list)))
        elif isinstance(obj, list):
            stack.extend((v, depth + 1) for v in obj if isinstance(v, (dict, list)))
    if nodes > limits.max_nodes:
        raise LoadError(f"more than {limits.max_nodes} values in one document", line)
    return doc


def _stringify_keys(obj: Any) -> Any:
    """Mapping keys as strings, iteratively (depth is bounded but the stack need not be)."""
    if not isinstance(obj, (dict, list)):
        return obj
    # Rebuild bottom-up; shared sub-objects (aliases) are copied so the result is a tree.
    def fresh(o: Any) -> Any:
        return {} if isinstance(o, dict) else [] if isinstance(o, list) else o

    out = fresh(obj)
    stack: list[tuple[Any, Any]] = [(obj, out)]
    while stack:
        src, dst = stack.pop()
        if isinstance(src, dict):
            for k, v in src.items():
                nv = fresh(v)
                dst[k if isinstance(k, str) else str(k)] = nv
                if nv is not v:
                    stack.append((v, nv))
        else:
            for v in src:
                nv = fresh(v)
                dst.append(nv)
                if nv is not v:
                    stack.append((v, nv))
    return out


