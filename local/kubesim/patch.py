"""The three PATCH flavours of the Kubernetes API, with the real server's quirks.

* ``json_merge_patch``: RFC 7386 as implemented by evanphx/json-patch ``MergePatch``
  (what kube-apiserver runs for ``application/merge-patch+json``).
* ``json_patch``: RFC 6902 as implemented by evanphx/json-patch v4 (negative array
  indexes, ``test`` of a missing member against ``null`` passes, ...). Failures are
  answered like the apiserver does: 422 Invalid "the server rejected our request due
  to an error in our request" with empty details — the evanphx text is not sent to
  the client, it is kept as the exception's ``__cause__`` for logs and tests.
* ``strategic_merge_patch``: k8s.io/apimachinery/pkg/util/strategicpatch applied
  with the server's options (MergeParallelList, IgnoreUnmatchedNulls), including the
  list order it produces (patch items are placed before server-only items unless
  the live order says otherwise; ``$setElementOrder`` wins).

Why not the ``jsonpatch`` package: its error texts, negative-index and ``test``
semantics differ from evanphx, and clients (kubectl, controllers) see the latter.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from local.kubesim import errors
from local.kubesim.fieldpath import SchemaLike, child

JSON = Any

MAX_JSON_PATCH_OPERATIONS = 10000
_REJECTED = "the server rejected our request due to an error in our request"

# ============================================================ RFC 7386 merge patch


def json_merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces.

    Lists are replaced whole, which is why kubectl never uses it for containers.
    """
    if not isinstance(patch, dict):
        raise errors.bad_request("Invalid JSON Patch")
    doc = copy.deepcopy(target) if isinstance(target, dict) else {}
    _merge_docs(doc, copy.deepcopy(patch))
    return doc


def _merge_docs(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for k, v in patch.items():
        if v is None:
            doc.pop(k, None)
        elif k not in doc or doc[k] is None:
            doc[k] = _prune_nulls(v)
        else:
            doc[k] = _merge_value(doc[k], v)


def _merge_value(cur: JSON, patch: JSON) -> JSON:
    # evanphx: a non-object current value is replaced by the (null-pruned) patch value;
    # an object current value with a non-object patch takes the patch as is.
    if not isinstance(cur, dict):
        return _prune_nulls(patch)
    if not isinstance(patch, dict):
        return patch
    _merge_docs(cur, patch)
    return cur


def _prune_nulls(v: JSON) -> JSON:
    """Nulls inside a newly added object mean nothing (RFC 7386 applies it to {})."""
    if isinstance(v, dict):
        return {k: _prune_nulls(w) for k, w in v.items() if w is not None}
    if isinstance(v, list):
        return [_prune_nulls(w) if w is not None else None for w in v]
    return v


# ============================================================ RFC 6902 JSON patch


class JsonPatchFailure(Exception):
    """An evanphx/json-patch error; its text is what the Go library would report."""


def json_patch(target: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply RFC 6902 operations in order; any failure rejects the whole patch (422)."""
    if not isinstance(ops, list):
        raise errors.bad_request(
            f"json: cannot unmarshal {_go_json_type(ops)} into Go value of type jsonpatch.Patch"
        )
    for op in ops:
        if not isinstance(op, dict):
            raise errors.bad_request(
                f"json: cannot unmarshal {_go_json_type(op)} into Go value of type jsonpatch.Operation"
            )
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise errors.ApiError(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}",
        )
    holder: list[JSON] = [copy.deepcopy(target)]
    try:
        for op in ops:
            _apply_op(holder, op)
    except JsonPatchFailure as exc:
        raise errors.ApiError(422, "Invalid", _REJECTED, details={}) from exc
    result = holder[0]
    if not isinstance(result, dict):
        raise errors.ApiError(422, "Invalid", _REJECTED, details={}) from JsonPatchFailure(
            "patched document is not an object"
        )
    return result


def _go_json_type(v: JSON) -> str:
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return "null"


def _op_string(op: dict[str, Any], name: str, what: str) -> str:
    v = op.get(name)
    if not isinstance(v, str):
        raise JsonPatchFailure(f"{what}: missing value")
    return v


def _apply_op(holder: list[JSON], op: dict[str, Any]) -> None:
    kind = op.get("op") if isinstance(op.get("op"), str) else "unknown"
    if kind == "add":
        path = _op_string(op, "path", "add operation failed to decode path")
        _op_add(holder, path, copy.deepcopy(op.get("value")))
    elif kind == "remove":
        path = _op_string(op, "path", "remove operation failed to decode path")
        con, key = _find_object(holder, path)
        if con is None:
            raise JsonPatchFailure(f'remove operation does not apply: doc is missing path: "{path}"')
        _con_remove(con, key, f"error in remove for path: '{path}'")
    elif kind == "replace":
        path = _op_string(op, "path", "replace operation failed to decode path")
        value = copy.deepcopy(op.get("value"))
        if path == "":
            if not isinstance(value, (dict, list)):
                raise JsonPatchFailure("replace operation value must be object or array")
            holder[0] = value
            return
        con, key = _find_object(holder, path)
        if con is None:
            raise JsonPatchFailure(f"replace operation does not apply: doc is missing path: {path}")
        if not _con_has(con, key):
            raise JsonPatchFailure(f"replace operation does not apply: doc is missing key: {path}")
        _con_set(con, key, value)
    elif kind == "move":
        src = _op_string(op, "from", "move operation failed to decode from")
        if src == "":
            raise JsonPatchFailure("unable to move entire document to another path")
        con, key = _find_object(holder, src)
        if con is None:
            raise JsonPatchFailure(f"move operation does not apply: doc is missing from path: {src}")
        val = _con_get(con, key, f"error in move for path: '{key}'")
        _con_remove(con, key, f"error in move for path: '{key}'")
        path = _op_string(op, "path", "move operation failed to decode path")
        dcon, dkey = _find_object(holder, path)
        if dcon is None:
            raise JsonPatchFailure(f"move operation does not apply: doc is missing destination path: {path}")
        _con_add(dcon, dkey, val, f"error in move for path: '{path}'")
    elif kind == "copy":
        src = _op_string(op, "from", "copy operation failed to decode from")
        con, key = _find_object(holder, src)
        if con is None:
            raise JsonPatchFailure(f"copy operation does not apply: doc is missing from path: {src}")
        val = _con_get(con, key, f"error in copy for from: '{src}'")
        path = _op_string(op, "path", "copy operation failed to decode path")
        dcon, dkey = _find_object(holder, path)
        if dcon is None:
            raise JsonPatchFailure(f"copy operation does not apply: doc is missing destination path: {path}")
        _con_add(dcon, dkey, copy.deepcopy(val), "error while adding value during copy")
    elif kind == "test":
        path = _op_string(op, "path", "test operation failed to decode path")
        _op_test(holder, path, op)
    else:
        raise JsonPatchFailure(f"Unexpected kind: {kind}")


def _op_add(holder: list[JSON], path: str, value: JSON) -> None:
    if path == "":
        holder[0] = value
        return
    con, key = _find_object(holder, path)
    if con is None:
        raise JsonPatchFailure(f'add operation does not apply: doc is missing path: "{path}"')
    _con_add(con, key, value, f"error in add for path: '{path}'")


def _op_test(holder: list[JSON], path: str, op: dict[str, Any]) -> None:
    failed = f"testing value {path} failed: test failed"
    if path == "":
        if not json_equal(holder[0], op.get("value")):
            raise JsonPatchFailure(failed)
        return
    con, key = _find_object(holder, path)
    if con is None:
        raise JsonPatchFailure(f"test operation does not apply: is missing path: {path}")
    if isinstance(con, dict):
        val = con.get(key)  # a missing member tests equal to null (evanphx v4)
    else:
        val = _con_get(con, key, f"error in test for path: '{path}'")
    if val is None:
        if op.get("value") is None:
            return
        raise JsonPatchFailure(failed)
    if "value" not in op or not json_equal(val, op["value"]):
        raise JsonPatchFailure(failed)


def _decode_token(t: str) -> str:
    return t.replace("~1", "/").replace("~0", "~")


def _find_object(holder: list[JSON], path: str) -> tuple[dict[str, Any] | list[JSON] | None, str]:
    """evanphx ``findObject``: walk to the parent container; (None, "") if it does not exist."""
    split = path.split("/")
    if len(split) < 2:
        return None, ""
    doc = holder[0]
    for part in split[1:-1]:
        token = _decode_token(part)
        if isinstance(doc, dict):
            nxt = doc.get(token)
        elif isinstance(doc, list):
            try:
                nxt = doc[_array_index(doc, token, len(doc) - 1)]
            except JsonPatchFailure:
                return None, ""
        else:
            return None, ""
        if not isinstance(nxt, (dict, list)):
            return None, ""
        doc = nxt
    if not isinstance(doc, (dict, list)):
        return None, ""
    return doc, _decode_token(split[-1])


def _array_index(arr: list[JSON], key: str, max_index: int) -> int:
    """Parse an array index like Go's strconv.Atoi, with evanphx's negative indexes."""
    try:
        if not key or key.strip() != key or "_" in key:
            raise ValueError(key)
        idx = int(key, 10)
    except ValueError as exc:
        raise JsonPatchFailure(f'strconv.Atoi: parsing "{key}": invalid syntax') from exc
    if idx > max_index:
        raise JsonPatchFailure(f"Unable to access invalid index: {idx}: invalid index referenced")
    if idx < 0:
        if idx < -(max_index + 1):
            raise JsonPatchFailure(f"Unable to access invalid index: {idx}: invalid index referenced")
        idx += max_index + 1
    return idx


def _con_has(con: dict[str, Any] | list[JSON], key: str) -> bool:
    if isinstance(con, dict):
        return key in con
    try:
        _array_index(con, key, len(con) - 1)
    except JsonPatchFailure:
        return False
    return True


def _con_get(con: dict[str, Any] | list[JSON], key: str, context: str) -> JSON:
    if isinstance(con, dict):
        if key not in con:
            raise JsonPatchFailure(f"{context}: unable to get nonexistent key: {key}: missing value")
        return con[key]
    try:
        return con[_array_index(con, key, len(con) - 1)]
    except JsonPatchFailure as exc:
        raise JsonPatchFailure(f"{context}: {exc}") from exc


def _con_set(con: dict[str, Any] | list[JSON], key: str, value: JSON) -> None:
    if isinstance(con, dict):
        con[key] = value
    else:
        con[_array_index(con, key, len(con) - 1)] = value


def _con_add(con: dict[str, Any] | list[JSON], key: str, value: JSON, context: str) -> None:
    if isinstance(con, dict):
        con[key] = value
        return
    if key == "-":
        con.append(value)
        return
    try:
        idx = _array_index(con, key, len(con))
    except JsonPatchFailure as exc:
        raise JsonPatchFailure(f"{context}: value was not a proper array index: '{key}': {exc}") from exc
    con.insert(idx, value)


def _con_remove(con: dict[str, Any] | list[JSON], key: str, context: str) -> None:
    if isinstance(con, dict):
        if key not in con:
            raise JsonPatchFailure(f"{context}: Unable to remove nonexistent key: {key}: missing value")
        del con[key]
        return
    try:
        idx = _array_index(con, key, len(con) - 1)
    except JsonPatchFailure as exc:
        raise JsonPatchFailure(f"{context}: {exc}") from exc
    del con[idx]


def json_equal(a: JSON, b: JSON) -> bool:
    """JSON equality without Python's ``True == 1`` / ``1 == 1.0`` coercions.

    Why: the Go server compares decoded JSON where bool, int64 and float64 differ.
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# ============================================================ strategic merge patch

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList"

_ERR_PRIMITIVE_LIST = "invalid patch format of primitive list"
_ERR_RETAIN_KEYS = "invalid patch format of retainKeys"
_ERR_SET_ORDER = "invalid patch format of setElementOrder list"
_ERR_LIST_OF_LISTS = "lists of lists are not supported"


class _SmpError(Exception):
    """A strategicpatch error; ``code`` is how the apiserver answers it."""

    def __init__(self, message: str, code: int = 500) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def strategic_merge_patch(original: dict[str, Any], patch: dict[str, Any], node: SchemaLike) -> dict[str, Any]:
    """Apply a strategic merge patch to ``original`` using the schema's patch metadata.

    Errors are answered as the apiserver's ``interpretStrategicMergePatchError`` does:
    malformed directives -> 400 BadRequest, lists of lists -> 422, anything else (a
    missing merge key, an unknown ``$patch`` value) -> 500 with the Go error text.
    """
    if not isinstance(patch, dict):
        raise errors.bad_request("invalid JSON document")
    try:
        return _merge_map(copy.deepcopy(original), copy.deepcopy(patch), node)
    except _SmpError as exc:
        if exc.code == 400:
            raise errors.bad_request(exc.message) from exc
        if exc.code == 422:
            raise errors.ApiError(422, "Invalid", _REJECTED, details={}) from exc
        # a plain Go error: ErrorToAPIStatus answers 500 with reason StatusReasonUnknown ("")
        raise errors.ApiError(500, "", exc.message) from exc


def _go_kind(v: JSON) -> str:
    """The Go dynamic type of a decoded JSON value (json.Unmarshal with PreserveInts)."""
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "slice"
    return "map"


def _go_eq(a: JSON, b: JSON) -> bool:
    """Go ``interface{} == interface{}`` for scalars (different dynamic types differ)."""
    return _go_kind(a) == _go_kind(b) and a == b


def _go_fmt(v: JSON) -> str:
    """Rough ``%v`` of a decoded JSON value, for error texts."""
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_fmt(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(_go_fmt(x) for x in v) + "]"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _strategies(node: SchemaLike) -> tuple[bool, str]:
    """``extractRetainKeysPatchStrategy``: (has retainKeys, the remaining strategy)."""
    raw = node.patch_strategy or ""
    parts = [p for p in raw.split(",") if p] if raw else []
    if len(parts) <= 1:
        s = parts[0] if parts else ""
        return (s == "retainKeys", "" if s == "retainKeys" else s)
    if len(parts) == 2:
        if parts[0] == "retainKeys":
            return True, parts[1]
        if parts[1] == "retainKeys":
            return True, parts[0]
    raise _SmpError(f"unexpected patch strategy: {raw}")


def _merge_map(original: dict[str, Any] | None, patch: dict[str, Any], node: SchemaLike) -> dict[str, Any]:
    if _DIRECTIVE in patch:
        return _directive_in_map(patch[_DIRECTIVE], patch)
    if original is None:
        original = {}
    _apply_retain_keys(original, patch)
    _merge_set_element_order(original, patch, node)

    for key in list(patch):
        patch_v = patch[key]
        is_delete_list = False
        k = key
        if key.startswith(_DELETE_PRIMITIVE):
            k = _extract_key(key, _DELETE_PRIMITIVE, _ERR_PRIMITIVE_LIST)
            is_delete_list = True
        if patch_v is None:
            original.pop(k, None)
            continue
        if k not in original or _go_kind(original[k]) != _go_kind(patch_v):
            if not is_delete_list:
                _discard_nulls(patch_v)
                keep, cleaned = _remove_directives(patch_v)
                if keep:
                    original[k] = cleaned
                else:
                    original.pop(k, None)
            continue
        sub = child(node, k)
        kind = _go_kind(patch_v)
        if kind == "map":
            _, strategy = _strategies(sub)
            if strategy == "replace":
                original[k] = patch_v
            else:
                original[k] = _merge_map(original[k], patch_v, sub)
        elif kind == "slice":
            original[k] = _merge_slice_handler(original[k], patch_v, sub, is_delete_list)
        else:
            original[k] = patch_v
    return original


def _directive_in_map(directive: JSON, patch: dict[str, Any]) -> dict[str, Any]:
    """``$patch: replace`` -> the patch itself; ``$patch: delete`` -> ``{}``."""
    if directive == "replace":
        patch.pop(_DIRECTIVE)
        return patch
    if directive == "delete":
        return {}
    raise _SmpError(f"unknown patch type: {_go_fmt(directive)} in map: {_go_fmt(patch)}")


def _discard_nulls(v: JSON) -> None:
    """Nulls in a value that is added whole mean nothing (IgnoreUnmatchedNulls)."""
    if isinstance(v, dict):
        for k in list(v):
            if v[k] is None:
                del v[k]
            else:
                _discard_nulls(v[k])
    elif isinstance(v, list):
        for x in v:
            _discard_nulls(x)


def _remove_directives(v: JSON) -> tuple[bool, JSON]:
    """Directive maps never reach the stored object (strategicpatch ``removeDirectives``)."""
    if isinstance(v, dict):
        if _DIRECTIVE in v:
            return False, None
        out: dict[str, Any] = {}
        for k, x in v.items():
            keep, cleaned = _remove_directives(x)
            if keep:
                out[k] = cleaned
        return True, out
    if isinstance(v, list):
        items = []
        for x in v:
            keep, cleaned = _remove_directives(x)
            if keep:
                items.append(cleaned)
        return True, items
    return True, v


def _extract_key(key: str, prefix: str, err: str) -> str:
    parts = key.split("/", 1)
    if len(parts) <= 1 or parts[0] != prefix:
        raise _SmpError(err, 400)
    return parts[1]


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """``$retainKeys``: drop every original key not listed (used for union fields
    such as Deployment strategy and volume sources)."""
    if _RETAIN_KEYS not in patch:
        return
    retain = patch.pop(_RETAIN_KEYS)
    if not isinstance(retain, list):
        raise _SmpError(_ERR_RETAIN_KEYS, 400)
    allowed = {json.dumps(x) for x in retain}
    for k, v in patch.items():
        if v is None or k.startswith(_DELETE_PRIMITIVE) or k.startswith(_SET_ORDER):
            continue
        if json.dumps(k) not in allowed:
            raise _SmpError(_ERR_RETAIN_KEYS, 400)
    for k in list(original):
        if json.dumps(k) not in allowed:
            del original[k]


def _merge_set_element_order(original: dict[str, Any], patch: dict[str, Any], node: SchemaLike) -> None:
    """``$setElementOrder/<list>``: merge that list now and put it in the given order."""
    for key in [k for k in patch if k.startswith(_SET_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise _SmpError(f"expected a []interface {{}}, but received a {_go_kind(order)}")
        field = _extract_key(key, _SET_ORDER, _ERR_SET_ORDER)
        found_original = field in original
        found_patch = field in patch
        original_list = original.get(field)
        patch_list = patch.get(field)
        if found_original and not isinstance(original_list, list):
            raise _SmpError(f"expected a []interface {{}}, but received a {_go_kind(original_list)}")
        if found_patch and not isinstance(patch_list, list):
            raise _SmpError(f"expected a []interface {{}}, but received a {_go_kind(patch_list)}")
        sub = child(node, field)
        _, strategy = _strategies(sub)
        merge_key = sub.patch_merge_key or ""
        _validate_set_order(patch_list or [], order, merge_key)
        if found_original and not found_patch:
            merged = list(original_list or [])
        elif found_patch and not found_original:
            merged = list(patch_list or [])
        elif found_original and found_patch:
            merged = _merge_slice_handler(original_list, patch_list, sub, False)
        else:
            continue
        kind = _slice_element_kind(list(original_list or []), list(patch_list or []))
        if merge_key:
            patch_items, server_only = _partition_maps(merged, order, merge_key)
        else:
            patch_items, server_only = _partition_primitives(merged, order)
        original[field] = _normalize_element_order(
            patch_items, server_only, order, list(original_list or []), merge_key, kind
        )
        patch.pop(field, None)


def _validate_set_order(patch_list: list[JSON], order: list[JSON], merge_key: str) -> None:
    if not order or not patch_list:
        return
    non_delete = [x for x in patch_list if not _is_delete_item(x)] if merge_key else patch_list
    pi = si = 0
    while pi < len(non_delete) and si < len(order):
        item = non_delete[pi]
        if isinstance(item, dict) and _DIRECTIVE in item:
            pi += 1
            continue
        if _merge_key_equal(item, order[si], merge_key):
            pi += 1
        si += 1
    if pi < len(non_delete) and si >= len(order):
        raise _SmpError(
            f"The order in patch list:\n{_go_fmt(patch_list)}\n doesn't match {_SET_ORDER} list:\n{_go_fmt(order)}\n"
        )


def _merge_key_equal(left: JSON, right: JSON, merge_key: str) -> bool:
    if not merge_key:
        return _go_eq(left, right)
    if not isinstance(left, dict) or not isinstance(right, dict):
        raise _SmpError(f"expected a map[string]interface {{}}, but received a {_go_kind(left)}")
    if merge_key not in left:
        raise _no_merge_key(left, merge_key)
    if merge_key not in right:
        raise _no_merge_key(right, merge_key)
    return _go_eq(left[merge_key], right[merge_key])


def _no_merge_key(m: dict[str, Any], merge_key: str) -> _SmpError:
    return _SmpError(f"map: {_go_fmt(m)} does not contain declared merge key: {merge_key}")


def _is_delete_item(x: JSON) -> bool:
    return isinstance(x, dict) and x.get(_DIRECTIVE) == "delete"


def _merge_slice_handler(original: JSON, patch: JSON, node: SchemaLike, is_delete_list: bool) -> list[JSON]:
    if not isinstance(original, list) or not isinstance(patch, list):
        raise _SmpError(f"expected a []interface {{}}, but received a {_go_kind(original)}")
    _, strategy = _strategies(node)
    if strategy == "merge":
        return _merge_slice(original, patch, node.items, node.patch_merge_key or "", is_delete_list)
    return patch


def _slice_element_kind(*lists: list[JSON]) -> str:
    prev: str | None = None
    for lst in lists:
        for v in lst:
            k = _go_kind(v)
            if prev is None:
                prev = k
                if k == "slice":
                    raise _SmpError(_ERR_LIST_OF_LISTS, 422)
            elif prev != k:
                raise _SmpError(f"list element types are not identical: {_go_fmt(list(lists))}")
    if prev is None:
        raise _SmpError("no elements in any of the given slices")
    return prev


def _merge_slice(
    original: list[JSON], patch: list[JSON], item_node: SchemaLike, merge_key: str, is_delete_list: bool
) -> list[JSON]:
    if not original and not patch:
        return original
    kind = _slice_element_kind(original, patch)
    if kind != "map":
        if is_delete_list:
            return _delete_from_slice(original, patch)
        merged = _deduplicate_scalars([*original, *patch])
    else:
        if not merge_key:
            raise _SmpError("cannot merge lists without merge key for type map")
        original, patch = _merge_slice_with_special_elements(original, patch, merge_key)
        merged = _merge_slice_without_special_elements(list(original), patch, merge_key, item_node)
    if merge_key:
        patch_items, server_only = _partition_maps(merged, patch, merge_key)
    else:
        patch_items, server_only = _partition_primitives(merged, patch)
    return _normalize_element_order(patch_items, server_only, patch, original, merge_key, kind)


def _delete_from_slice(current: list[JSON], to_delete: list[JSON]) -> list[JSON]:
    """``$deleteFromPrimitiveList``: drop every listed value."""
    return [v for v in current if not any(_go_eq(v, d) for d in to_delete)]


def _deduplicate_scalars(s: list[JSON]) -> list[JSON]:
    """strategicpatch's in-place dedup: a duplicate is overwritten by the last item.

    Why copied literally: it reorders items, and clients see that order.
    """
    s = list(s)
    length = len(s) - 1
    i = 0
    while i < length:
        j = i + 1
        while j <= length:
            if _go_eq(s[i], s[j]):
                s[j] = s[length]
                s = s[:length]
                length -= 1
                j -= 1
            j += 1
        i += 1
    return s


def _merge_slice_with_special_elements(
    original: list[JSON], patch: list[JSON], merge_key: str
) -> tuple[list[JSON], list[JSON]]:
    """Handle ``$patch`` items of a merging list: delete by key, or replace the list."""
    plain: list[JSON] = []
    replace = False
    for v in patch:
        if not isinstance(v, dict):
            raise _SmpError(f"expected a map[string]interface {{}}, but received a {_go_kind(v)}")
        if _DIRECTIVE not in v:
            plain.append(v)
            continue
        directive = v[_DIRECTIVE]
        if directive == "delete":
            if merge_key not in v:
                raise _no_merge_key(v, merge_key)
            original = [
                o for o in original if not (isinstance(o, dict) and merge_key in o and _go_eq(o[merge_key], v[merge_key]))
            ]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise _SmpError("merging lists cannot yet be specified in the patch")
        else:
            raise _SmpError(f"unknown patch type: {_go_fmt(directive)} in map: {_go_fmt(v)}")
    if replace:
        return plain, []
    return original, plain


def _find_by_key(items: list[JSON], merge_key: str, value: JSON) -> int:
    for i, v in enumerate(items):
        if not isinstance(v, dict):
            raise _SmpError(f"value for key {i} is not a map.")
        if merge_key in v and _go_eq(v[merge_key], value):
            return i
    return -1


def _merge_slice_without_special_elements(
    original: list[JSON], patch: list[JSON], merge_key: str, item_node: SchemaLike
) -> list[JSON]:
    for v in patch:
        assert isinstance(v, dict)
        if merge_key not in v:
            raise _no_merge_key(v, merge_key)
        idx = _find_by_key(original, merge_key, v[merge_key])
        if idx >= 0:
            original[idx] = _merge_map(original[idx], v, item_node)
        else:
            original.append(v)
    return original


def _partition_primitives(items: list[JSON], by: list[JSON]) -> tuple[list[JSON], list[JSON]]:
    in_patch: list[JSON] = []
    server_only: list[JSON] = []
    for v in items:
        (in_patch if any(_go_eq(v, b) for b in by) else server_only).append(v)
    return in_patch, server_only


def _partition_maps(items: list[JSON], by: list[JSON], merge_key: str) -> tuple[list[JSON], list[JSON]]:
    in_patch: list[JSON] = []
    server_only: list[JSON] = []
    for v in items:
        if not isinstance(v, dict):
            raise _SmpError(f"expected a map[string]interface {{}}, but received a {_go_kind(v)}")
        if merge_key not in v:
            raise _no_merge_key(v, merge_key)
        (in_patch if _find_by_key(by, merge_key, v[merge_key]) >= 0 else server_only).append(v)
    return in_patch, server_only


def _index(items: list[JSON], value: JSON, merge_key: str, kind: str) -> int:
    def get(x: JSON) -> JSON:
        if kind == "map":
            return x.get(merge_key) if isinstance(x, dict) else None
        return x

    want = get(value)
    for i, v in enumerate(items):
        if _go_eq(want, get(v)):
            return i
    return -1


def _normalize_slice_order(to_sort: list[JSON], order: list[JSON], merge_key: str, kind: str) -> list[JSON]:
    to_delete: list[JSON] = []
    if kind == "map":
        for lst in (to_sort, order):
            for x in lst:
                if not isinstance(x, dict):
                    raise _SmpError(f"expected a map[string]interface {{}}, but received a {_go_kind(x)}")
                if merge_key not in x:
                    raise _no_merge_key(x, merge_key)
        to_delete = [x for x in to_sort if _is_delete_item(x)]
        to_sort = [x for x in to_sort if not _is_delete_item(x)]

    def less(a: JSON, b: JSON) -> bool:
        ia = _index(order, a, merge_key, kind)
        if ia >= 0:
            ib = _index(order, b, merge_key, kind)
            if ib >= 0:
                return ia < ib
        return True  # sic: strategicpatch's comparator; kept for identical orders

    return [*_go_slice_stable(list(to_sort), less), *to_delete]


def _merge_sorted_slice(
    left: list[JSON], right: list[JSON], server_order: list[JSON], merge_key: str, kind: str
) -> list[JSON]:
    """Interleave server-only items (left) into patch items (right) by live order."""
    out: list[JSON] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index(server_order, left[i], merge_key, kind)
            ri = _index(server_order, right[j], merge_key, kind)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _normalize_element_order(
    patch: list[JSON],
    server_only: list[JSON],
    patch_order: list[JSON],
    server_order: list[JSON],
    merge_key: str,
    kind: str,
) -> list[JSON]:
    patch = _normalize_slice_order(patch, patch_order, merge_key, kind)
    server_only = _normalize_slice_order(server_only, server_order, merge_key, kind)
    return _merge_sorted_slice(server_only, patch, server_order, merge_key, kind)


# ---------------------------------------------------------------- Go's sort.SliceStable


def _go_slice_stable(data: list[JSON], less: Callable[[JSON, JSON], bool]) -> list[JSON]:
    """Go's ``sort.SliceStable`` (insertion sort on blocks of 20, then SymMerge).

    Why not ``sorted``: strategicpatch's comparator is not a strict weak order (it
    answers True for unknown items), so only Go's exact algorithm gives Go's order.
    """
    n = len(data)
    block = 20
    a, b = 0, block
    while b <= n:
        _insertion_sort(data, a, b, less)
        a, b = b, b + block
    _insertion_sort(data, a, n, less)
    while block < n:
        a, b = 0, 2 * block
        while b <= n:
            _sym_merge(data, a, a + block, b, less)
            a, b = b, b + 2 * block
        m = a + block
        if m < n:
            _sym_merge(data, a, m, n, less)
        block *= 2
    return data


def _insertion_sort(data: list[JSON], a: int, b: int, less: Callable[[JSON, JSON], bool]) -> None:
    for i in range(a + 1, b):
        j = i
        while j > a and less(data[j], data[j - 1]):
            data[j], data[j - 1] = data[j - 1], data[j]
            j -= 1


def _sym_merge(data: list[JSON], a: int, m: int, b: int, less: Callable[[JSON, JSON], bool]) -> None:
    if m - a == 1:
        i, j = m, b
        while i < j:
            h = (i + j) >> 1
            if less(data[h], data[a]):
                i = h + 1
            else:
                j = h
        for k in range(a, i - 1):
            data[k], data[k + 1] = data[k + 1], data[k]
        return
    if b - m == 1:
        i, j = a, m
        while i < j:
            h = (i + j) >> 1
            if not less(data[m], data[h]):
                i = h + 1
            else:
                j = h
        for k in range(m, i, -1):
            data[k], data[k - 1] = data[k - 1], data[k]
        return
    mid = (a + b) >> 1
    n = mid + m
    if m > mid:
        start, r = n - b, mid
    else:
        start, r = a, m
    p = n - 1
    while start < r:
        c = (start + r) >> 1
        if not less(data[p - c], data[c]):
            start = c + 1
        else:
            r = c
    end = n - start
    if start < m < end:
        data[start:end] = data[m:end] + data[start:m]
    if a < start < mid:
        _sym_merge(data, a, start, mid, less)
    if mid < end < b:
        _sym_merge(data, mid, end, b, less)
