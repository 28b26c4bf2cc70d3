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

Two parsers, one meaning. PyYAML (YAML 1.1, what Kubernetes' go-yaml follows for ``0644``,
``yes`` and ``1:20``) is the reference; its constructor is Python, about 60 us per object of
helm's output. ``yaml_rs`` (Rust, YAML 1.2's core schema) parses the same text ten times
faster, but 1.1 and 1.2 read some plain scalars differently. The fast path takes a text only
when a lexical scan proves no such scalar can be in it (:func:`_fast_refused`: octal, sexagesimal,
``0b``/``0o``/``0x``, ``_`` in numbers, exponents, ``.inf``/``.nan``, ``yes``/``no``/``on``/``off``,
``=``, anchors, aliases, tags, merge keys, directives, non-ASCII, control characters), and
sends it to PyYAML on every doubt: anything yaml_rs refuses, any bound reached, any key
that is not a plain scalar. A tested property (``tests/unit/test_loader_fast.py``): whenever
the fast path answers, its answer equals PyYAML's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml
import yaml_rs

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


#: characters outside the fast path: anchors, aliases, tags; tabs, CR, control characters
#: (and ``<<``, a merge key, as a substring)
_FAST_BAD_CHAR = re.compile(r"[&*!\t\r\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: a line opening with a directive, a document end marker or a block scalar (yaml_rs reads
#: ``---`` into a top-level one)
_FAST_BAD_LINE = re.compile(r"\n(?:%|\.\.\.|(?:--- *)?[|>])")
#: an empty block scalar ending the stream (yaml_rs reads it as a line break)
_ENDS_IN_BLOCK_SCALAR = re.compile(r"[|>][-+0-9]*\s*$")
#: in a flow (found by its opening bracket on the same line): ``|`` / ``>`` opening a token,
#: ``:`` right before a flow indicator; or a flow left open at the end of its line (multi-line
#: flows are where the two grammars part most)
_FAST_BAD_FLOW = re.compile(r"[\[{](?:(?:[^\n]*?[\s,:\[{])?[|>]|[^\n]*?:[,\[\]{}]|[^\n\]}]*\n)")
#: a token (a run between whitespace and flow indicators, before an optional key ``:``) that
#: may be a number or a 1.1 boolean, or that opens with an indicator where the grammars part
#: (``?`` complex key, ``:``, reserved ``@`` and backquote); scanning quoted strings and
#: comments too only refuses more
_CANDIDATE = re.compile(r"[\s,\[\]{}]([-+._0-9?:@`][^\s,\[\]{}]*?|[yYnNoO=][a-zA-Z]{0,2})(?=:?[\s,\[\]{}])")
#: read alike by both: a plain decimal integer (at most 18 digits) or fraction
_PLAIN_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]+)?")
#: every int / float form of YAML 1.1 (PyYAML's resolver) or of yaml_rs (1.2 core, read
#: leniently: ``_`` anywhere in a number): wider than either, since refusing costs only time
_NUMBER_LIKE = re.compile(r"[-+]?(?:[0-9_]*[0-9][0-9a-fA-FxXoO_]*(?::[0-9_]+)*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9_]*)?"
                          r"|[_.][0-9_]+(?:[eE][-+]?[0-9]+)?|\.(?:inf|Inf|INF|nan|NaN|NAN))")
_WORDS_1_1 = frozenset({"yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "="})


def _fast_refused(text: str) -> bool:
    """Whether ``text`` may hold a scalar that YAML 1.1 and yaml_rs read differently, or a
    construct the fast path leaves to PyYAML."""
    if not text.isascii():
        return True
    framed = "\n" + text + "\n"
    if "<<" in text or _ENDS_IN_BLOCK_SCALAR.search(text[-16:]) or _FAST_BAD_LINE.search(framed):
        return True
    if _FAST_BAD_CHAR.search(text) is not None or _FAST_BAD_FLOW.search(framed) is not None:
        return True
    for token in _CANDIDATE.findall(framed):
        if token in _WORDS_1_1 or token[0] in "?:@`":
            return True
        if (token[0] not in "yYnNoO=" and not _PLAIN_DECIMAL.fullmatch(token)
                and _NUMBER_LIKE.fullmatch(token.replace("_", ""))):  # yaml_rs drops "_" anywhere
            return True
    return False


def _fast_load(text: str, limits: Limits) -> list[Any] | None:
    """The documents of ``text`` by yaml_rs, or None when PyYAML must decide (see the module's
    docstring): a None is never an answer, only "ask the reference"."""
    if _fast_refused(text):
        return None
    try:
        # The leading documents make the result always a list of documents (yaml_rs returns a
        # lone document bare, so a one-document list would be ambiguous).
        parsed = yaml_rs.loads("--- 0\n---\n" + text, parse_datetime=False)
    except Exception:  # noqa: BLE001 - any refusal or oddity: PyYAML words the error
        return None
    if not isinstance(parsed, list) or not parsed or parsed[0] != 0:
        return None
    docs = [d for d in parsed[1:] if d is not None]
    if len(docs) > limits.max_documents:
        return None
    try:
        for doc in docs:
            _check_tree(doc, limits, 0, plain_keys=True)
    except LoadError:
        return None
    return docs


def _load_yaml(text: str, limits: Limits) -> list[Any]:
    fast = _fast_load(text, limits)
    return fast if fast is not None else _reference_load(text, limits)


def _reference_load(text: str, limits: Limits) -> list[Any]:
    """PyYAML: the meaning of every text, and the error (with its line) for a bad one."""
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
            try:
                data = loader.construct_document(node)
            except RecursionError:
                raise LoadError(f"nested deeper than {limits.max_depth} levels", line) from None
            if data is not None:
                # Shared (aliased) objects are copied into a tree; without anchors none can be
                # shared, so keys are fixed in place while depth and size are checked.
                docs.append(_stringify_keys(data) if aliases_possible else _check_tree(data, limits, line))
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "maximum nesting depth" in str(problem):
            problem = f"nested deeper than {limits.max_depth} levels"
        raise LoadError(f"invalid YAML: {problem}", _line(exc)) from None
    finally:
        loader.dispose()
    return docs


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


_PLAIN_KEYS = (str, int, float, bool, type(None))


def _check_tree(doc: Any, limits: Limits, line: int, *, plain_keys: bool = False) -> Any:
    """Depth and size of an unshared document checked, non-string keys made strings, in place.
    ``plain_keys``: a key that is not a scalar (a flow mapping or sequence as a key) is refused.

    Level by level (the stack is bounded by the widest level, never by the depth); tight loops,
    since every object of every render passes here."""
    level: list[Any] = [doc] if isinstance(doc, (dict, list)) else []
    depth, nodes = 1, 1 if level else 0
    while level:
        if depth > limits.max_depth:
            raise LoadError(f"nested deeper than {limits.max_depth} levels", line)
        below: list[Any] = []
        for obj in level:
            if isinstance(obj, dict):
                if not all([type(k) is str for k in obj]):
                    _keys_to_str(obj, plain_keys, line)
                below += [v for v in obj.values() if isinstance(v, (dict, list))]
            else:
                below += [v for v in obj if isinstance(v, (dict, list))]
        nodes += len(below)
        if nodes > limits.max_nodes:
            raise LoadError(f"more than {limits.max_nodes} values in one document", line)
        level, depth = below, depth + 1
    return doc


def _keys_to_str(obj: dict[Any, Any], plain_keys: bool, line: int) -> None:
    if plain_keys and not all(isinstance(k, _PLAIN_KEYS) for k in obj):
        raise LoadError("a mapping key that is not a scalar", line)
    for k in [k for k in obj if not isinstance(k, str)]:
        obj[str(k)] = obj.pop(k)


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


