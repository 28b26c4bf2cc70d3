"""Secret and ConfigMap contents as the real API server checks them.

- :func:`byte_field_error`: the ``[]byte`` fields (Secret ``data``, ConfigMap ``binaryData``) are
  base64 in JSON and decoded by Go's ``encoding/json`` with ``base64.StdEncoding``; a bad value
  fails decoding with ``illegal base64 data at input byte N`` (a 400, before any validation).
  :func:`go_base64_error` reproduces Go's ``CorruptInputError`` offset.
- :func:`validate` : ValidateSecret / ValidateConfigMap of ``pkg/apis/core/validation``: key
  syntax (IsConfigMapKey), total size (1 MiB), the keys typed Secrets require.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from local.kubesim.types import Cause, ResourceType

MAX_SECRET_SIZE = 1024 * 1024  # core.MaxSecretSize, also the ConfigMap limit
_STD = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
            "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")


def go_base64_error(text: str) -> int | None:
    """Offset Go's ``base64.StdEncoding.Decode`` reports for ``text`` (None: it decodes).

    A port of ``decodeQuantum``: quanta of four symbols, ``\\r``/``\\n`` skipped, ``=`` padding
    only at the end, no trailing garbage (StdEncoding is not strict about unused bits).
    """
    src = text.encode("utf-8")
    n = len(src)
    si = 0
    while si < n:
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return None
                return si - j  # padding is required: a short last quantum is corrupt
            c = src[si]
            si += 1
            if c in _STD:
                j += 1
                continue
            if c in (0x0A, 0x0D):
                continue
            if c != 0x3D:  # '='
                return si - 1
            if j in (0, 1):
                return si - 1
            if j == 2:
                while si < n and src[si] in (0x0A, 0x0D):
                    si += 1
                if si == n:
                    return n
                if src[si] != 0x3D:
                    return si - 1
                si += 1
            while si < n and src[si] in (0x0A, 0x0D):
                si += 1
            return si if si < n else None
    return None


def _byte_maps(rt: ResourceType, obj: dict[str, Any]) -> list[Any]:
    if rt.group != "" or rt.is_custom:
        return []
    if rt.kind == "Secret":
        return [obj.get("data")]
    if rt.kind == "ConfigMap":
        return [obj.get("binaryData")]
    return []


def byte_field_error(rt: ResourceType, obj: dict[str, Any]) -> str | None:
    """``illegal base64 data at input byte N`` for the first undecodable ``[]byte`` value."""
    for values in _byte_maps(rt, obj):
        if not isinstance(values, dict):
            continue
        for value in values.values():
            if isinstance(value, str):
                offset = go_base64_error(value)
                if offset is not None:
                    return f"illegal base64 data at input byte {offset}"
    return None


def _decoded(value: Any) -> bytes:
    if not isinstance(value, str):
        return b""
    try:
        return base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=False)
    except (binascii.Error, ValueError):
        return b""


def _key_causes(path: str, key: str) -> list[Cause]:
    msgs: list[str] = []
    if len(key) > 253:
        msgs.append("must be no more than 253 characters")
    if not _KEY.match(key):
        msgs.append(_KEY_MSG)
    if key == ".":
        msgs.append("must not be '.'")
    elif key == "..":
        msgs.append("must not be '..'")
    elif key.startswith(".."):
        msgs.append("must not start with '..'")
    return [Cause("FieldValueInvalid", f"Invalid value: {json.dumps(key)}: {m}", f"{path}[{key}]") for m in msgs]


def _go_quote_char(c: str) -> str:
    """encoding/json ``quoteChar``."""
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    if c.isprintable():
        return f"'{c}'"
    return json.dumps(c)


def _open_container(text: str, pos: int) -> str:
    """'{' or '[': the innermost bracket open at ``pos`` (strings skipped)."""
    stack: list[str] = []
    in_str = esc = False
    for ch in text[:pos]:
        if in_str:
            esc = not esc and ch == "\\"
            if ch == '"' and not esc:
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _go_json_error(raw: bytes) -> str | None:
    """What Go's ``json.Unmarshal(b, &map[string]interface{}{})`` says of ``raw`` (None: fine)."""
    text = raw.decode("utf-8", errors="replace")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text) or exc.msg.startswith("Unterminated string"):
            return "unexpected end of JSON input"
        ch = _go_quote_char(text[exc.pos])
        if exc.msg.startswith("Expecting property name"):
            return f"invalid character {ch} looking for beginning of object key string"
        if exc.msg.startswith("Expecting ':'"):
            return f"invalid character {ch} after object key"
        if exc.msg.startswith("Expecting ','"):
            where = "after object key:value pair" if _open_container(text, exc.pos) == "{" else "after array element"
            return f"invalid character {ch} {where}"
        if exc.msg.startswith("Extra data"):
            return f"invalid character {ch} after top-level value"
        if exc.msg.startswith("Invalid control character"):
            return f"invalid character {ch} in string literal"
        return f"invalid character {ch} looking for beginning of value"
    if not isinstance(value, dict):
        if value is None:
            return None
        kind = {list: "array", str: "string", bool: "bool"}.get(type(value), "number")
        return f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
    return None


def validate(rt: ResourceType, obj: dict[str, Any]) -> list[Cause]:
    """ValidateSecret / ValidateConfigMap causes for a (defaulted) object."""
    if rt.group != "" or rt.is_custom:
        return []
    if rt.kind == "Secret":
        return _secret(obj)
    if rt.kind == "ConfigMap":
        return _configmap(obj)
    return []


def _secret(obj: dict[str, Any]) -> list[Cause]:
    data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
    causes: list[Cause] = []
    total = 0
    for key, value in data.items():
        causes.extend(_key_causes("data", key))
        total += len(_decoded(value))
    if total > MAX_SECRET_SIZE:
        causes.append(Cause("FieldValueTooLong", f"Too long: must have at most {MAX_SECRET_SIZE} bytes", "data"))
    kind = obj.get("type") or "Opaque"
    annotations = (obj.get("metadata") or {}).get("annotations") or {}

    def need(key: str) -> Cause:
        return Cause("FieldValueRequired", "Required value", f"data[{key}]")

    if kind == "kubernetes.io/service-account-token":
        if not annotations.get("kubernetes.io/service-account.name"):
            causes.append(Cause("FieldValueRequired", "Required value",
                                "metadata.annotations[kubernetes.io/service-account.name]"))
    elif kind in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if kind == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in data:
            causes.append(need(key))
        else:
            err = _go_json_error(_decoded(data[key]))
            if err is not None:
                causes.append(Cause("FieldValueInvalid", f'Invalid value: "<secret contents redacted>": {err}',
                                    f"data[{key}]"))
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            causes.extend([need("username"), need("password")])
    elif kind == "kubernetes.io/ssh-auth":
        if not _decoded(data.get("ssh-privatekey")):
            causes.append(need("ssh-privatekey"))
    elif kind == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in data:
                causes.append(need(key))
    return causes


def _configmap(obj: dict[str, Any]) -> list[Cause]:
    data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
    binary = obj.get("binaryData") if isinstance(obj.get("binaryData"), dict) else {}
    causes: list[Cause] = []
    total = 0
    for key, value in data.items():
        causes.extend(_key_causes("data", key))
        if key in binary:
            causes.append(Cause("FieldValueInvalid",
                                f"Invalid value: {json.dumps(key)}: duplicate of key present in binaryData",
                                f"data[{key}]"))
        total += len(value.encode("utf-8")) if isinstance(value, str) else 0
    for key, value in binary.items():
        causes.extend(_key_causes("binaryData", key))
        if key in data:
            causes.append(Cause("FieldValueInvalid",
                                f"Invalid value: {json.dumps(key)}: duplicate of key present in data",
                                f"binaryData[{key}]"))
        total += len(_decoded(value))
    if total > MAX_SECRET_SIZE:
        causes.append(Cause("FieldValueTooLong", f"Too long: must have at most {MAX_SECRET_SIZE} bytes", "[]"))
    return causes
