"""``/openapi/v3``: the index and one OpenAPI 3.0 document per served group-version.

kubectl (1.32 and 1.37) downloads these before every apply. It needs, per kind:

* a PATCH operation carrying ``x-kubernetes-group-version-kind`` (a map) and a query
  parameter named ``fieldValidation`` on the operation itself; otherwise it thinks the
  server cannot validate fields and falls back to client-side validation / errors;
* the kind's schema in ``components.schemas`` with ``x-kubernetes-group-version-kind``
  (a list) and the ``x-kubernetes-patch-*`` extensions: client-side ``kubectl apply``
  computes its strategic merge patch from them (``NewPatchMetaFromOpenAPIV3`` resolves
  ``#/components/schemas/<name>`` refs and ``allOf[0]``), and ``kubectl explain`` renders them;
* every served group-version in the index, CRD groups included, or it falls back to
  ``/openapi/v2`` and fails.

Documents are built from the same 1.37 definitions as validation, converted to the real
server's v3 shapes (single ``type``, ``allOf`` around described refs, IntOrString as
``string``/``int-or-string``), and serialized deterministically so the index hash changes
only when a document does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from typing import Any

from local.kubesim.schema import (
    INT_OR_STRING_DEF,
    QUANTITY_DEF,
    Schemas,
    definitions,
)
from local.kubesim.types import ResourceType

_COMPONENTS = "#/components/schemas/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_EXTRA_META = (_META + "Status", _META + "DeleteOptions", _META + "Patch", _META + "APIResourceList",
               _META + "WatchEvent", _META + "ObjectMeta", _META + "ListMeta")
_SCALE_DEF = "io.k8s.api.autoscaling.v1.Scale"

_lock = threading.Lock()
_converted: dict[str, dict[str, Any]] = {}
_doc_cache: dict[str, tuple[dict[str, Any], str]] = {}


# ---------------------------------------------------------------------------------------------
# index
# ---------------------------------------------------------------------------------------------

def gv_path(group_version: str) -> str:
    """``v1`` -> ``api/v1``; ``apps/v1`` -> ``apis/apps/v1`` (the index keys kubectl expects)."""
    return f"apis/{group_version}" if "/" in group_version else f"api/{group_version}"


def openapi_index(types: list[ResourceType], schemas: Schemas | None = None) -> dict[str, Any]:
    """``{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}, ...}}``."""
    schemas = schemas or Schemas()
    paths: dict[str, Any] = {}
    for gv in sorted({rt.group_version for rt in types}):
        _, digest = _document_and_hash(schemas, gv, types)
        key = gv_path(gv)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}


def openapi_document(schemas: Schemas, group_version: str, types: list[ResourceType]) -> dict[str, Any]:
    """The OpenAPI 3.0 document of one group-version (``types`` may hold every served type)."""
    doc, _ = _document_and_hash(schemas, group_version, types)
    return doc


def openapi_document_bytes(schemas: Schemas, group_version: str, types: list[ResourceType]) -> bytes:
    """The document serialized exactly as hashed (servers can send these bytes as is)."""
    doc, _ = _document_and_hash(schemas, group_version, types)
    return _dump(doc).encode()


def document_hash(schemas: Schemas, group_version: str, types: list[ResourceType]) -> str:
    return _document_and_hash(schemas, group_version, types)[1]


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _cache_key(group_version: str, types: list[ResourceType]) -> str:
    parts = []
    for rt in sorted((t for t in types if t.group_version == group_version), key=lambda t: (t.kind, t.plural)):
        parts.append([rt.kind, rt.plural, rt.namespaced, sorted(rt.subresources), rt.definition,
                      rt.crd_schema if rt.is_custom else None])
    return group_version + json.dumps(parts, sort_keys=True, default=str)


def _document_and_hash(schemas: Schemas, group_version: str, types: list[ResourceType]) -> tuple[dict[str, Any], str]:
    key = _cache_key(group_version, types)
    hit = _doc_cache.get(key)
    if hit is not None:
        return hit
    doc = _build_document(group_version, [t for t in types if t.group_version == group_version])
    digest = hashlib.sha512(_dump(doc).encode()).hexdigest().upper()
    with _lock:
        if len(_doc_cache) > 256:  # CRD churn in long test sessions
            _doc_cache.clear()
        _doc_cache[key] = (doc, digest)
    return doc, digest


# ---------------------------------------------------------------------------------------------
# schema conversion (kubernetes-validate JSON Schema -> the apiserver's OpenAPI v3 shapes)
# ---------------------------------------------------------------------------------------------

def _convert(schema: Any, *, top_kind: bool = False) -> Any:
    if isinstance(schema, list):
        return [_convert(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for k, v in schema.items():
        if k == "$ref" and isinstance(v, str):
            out[k] = _COMPONENTS + v.rsplit("/", 1)[-1]
        elif k == "type" and isinstance(v, list):
            rest = [t for t in v if t != "null"]
            if len(rest) == 1:
                out[k] = rest[0]
        elif k == "additionalProperties" and v is False:
            continue
        elif k == "properties" and isinstance(v, dict):
            props: dict[str, Any] = {}
            for name, sub in v.items():
                conv = _convert(sub)
                if top_kind and name in ("apiVersion", "kind") and isinstance(conv, dict):
                    conv.pop("enum", None)  # added by kubernetes-validate, not by the apiserver
                if isinstance(conv, dict) and "$ref" in conv and len(conv) > 1:
                    ref = conv.pop("$ref")
                    conv = {"allOf": [{"$ref": ref}], **conv}
                props[name] = conv
            out[k] = props
        else:
            out[k] = _convert(v)
    return out


def _component(name: str) -> dict[str, Any]:
    hit = _converted.get(name)
    if hit is not None:
        return hit
    raw = definitions()[name]
    if name == INT_OR_STRING_DEF:
        conv: dict[str, Any] = {"description": "IntOrString is a type that can hold an int32 or a string.",
                                "type": "string", "format": "int-or-string"}
    elif name == QUANTITY_DEF:
        conv = {"description": raw.get("description", "Quantity is a fixed-point representation of a number."),
                "type": "string"}
    else:
        conv = _convert(raw, top_kind="x-kubernetes-group-version-kind" in raw)
    with _lock:
        _converted[name] = conv
    return conv


def _refs(schema: Any, found: set[str]) -> None:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(_COMPONENTS):
            found.add(ref[len(_COMPONENTS):])
        for v in schema.values():
            _refs(v, found)
    elif isinstance(schema, list):
        for v in schema:
            _refs(v, found)


def _closure(roots: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    todo = [r for r in roots if r in definitions()]
    while todo:
        name = todo.pop()
        if name in out:
            continue
        comp = _component(name)
        out[name] = comp
        found: set[str] = set()
        _refs(comp, found)
        todo.extend(sorted(found - out.keys()))
    return out


def crd_component_name(rt: ResourceType, kind: str | None = None) -> str:
    """``example.com`` / ``v1`` / ``Widget`` -> ``com.example.v1.Widget`` (the apiserver's naming)."""
    group = ".".join(reversed(rt.group.split("."))) if rt.group else ""
    prefix = f"{group}.{rt.version}" if group else rt.version
    return f"{prefix}.{kind or rt.kind}"


def _crd_component(rt: ResourceType) -> dict[str, Any]:
    schema = copy.deepcopy(rt.crd_schema) if rt.crd_schema else {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}
    props = dict(schema.get("properties") or {})
    props["apiVersion"] = {"type": "string", "description": "APIVersion defines the versioned schema of this "
                           "representation of an object."}
    props["kind"] = {"type": "string", "description": "Kind is a string value representing the REST resource "
                     "this object represents."}
    props["metadata"] = {"allOf": [{"$ref": _COMPONENTS + _META + "ObjectMeta"}],
                         "description": "Standard object's metadata."}
    schema["properties"] = props
    schema.setdefault("type", "object")
    schema["x-kubernetes-group-version-kind"] = [{"group": rt.group, "kind": rt.kind, "version": rt.version}]
    return schema


def _crd_list_component(rt: ResourceType) -> dict[str, Any]:
    return {
        "description": f"{rt.kind}List is a list of {rt.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "items": {"type": "array", "items": {"$ref": _COMPONENTS + crd_component_name(rt)}},
            "kind": {"type": "string"},
            "metadata": {"allOf": [{"$ref": _COMPONENTS + _META + "ListMeta"}]},
        },
        "x-kubernetes-group-version-kind": [{"group": rt.group, "kind": rt.list_kind, "version": rt.version}],
    }


# ---------------------------------------------------------------------------------------------
# paths
# ---------------------------------------------------------------------------------------------

def _qparam(name: str, description: str, typ: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": typ, "uniqueItems": True}}


_P_DRY_RUN = _qparam("dryRun", "When present, indicates that modifications should not be persisted. Valid "
                     "values are: - All: all dry run stages will be processed")
_P_FIELD_MANAGER = _qparam("fieldManager", "fieldManager is a name associated with the actor or entity that is "
                           "making these changes.")
_P_FIELD_VALIDATION = _qparam(
    "fieldValidation", "fieldValidation instructs the server on how to handle objects in the request "
    "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict "
    "(the default).")
_P_FORCE = _qparam("force", "Force is going to \"force\" Apply requests. It means user will re-acquire "
                   "conflicting fields owned by other people.", "boolean")
_P_PRETTY = _qparam("pretty", "If 'true', then the output is pretty printed.")
_LIST_PARAMS = [
    _qparam("allowWatchBookmarks", "allowWatchBookmarks requests watch events with type \"BOOKMARK\".", "boolean"),
    _qparam("continue", "The continue option should be set when retrieving more results from the server."),
    _qparam("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
    _qparam("labelSelector", "A selector to restrict the list of returned objects by their labels."),
    _qparam("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
    _qparam("resourceVersion", "resourceVersion sets a constraint on what resource versions a request may be "
            "served from."),
    _qparam("resourceVersionMatch", "resourceVersionMatch determines how resourceVersion is applied to list "
            "calls."),
    _qparam("sendInitialEvents", "`sendInitialEvents=true` may be set together with `watch=true`.", "boolean"),
    _qparam("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
    _qparam("watch", "Watch for changes to the described resources and return them as a stream of add, update, "
            "and remove notifications.", "boolean"),
]


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "description": description, "required": True,
            "schema": {"type": "string", "uniqueItems": True}}


def _content(ref: str, media: tuple[str, ...] = ("application/json", "application/yaml",
                                                  "application/vnd.kubernetes.protobuf")) -> dict[str, Any]:
    return {m: {"schema": {"$ref": _COMPONENTS + ref}} for m in media}


def _tag(rt: ResourceType) -> str:
    if not rt.group:
        return f"core_{rt.version}"
    return rt.group.replace(".k8s.io", "").replace(".", "_").replace("-", "_") + f"_{rt.version}"


def _op_prefix(rt: ResourceType) -> str:
    if not rt.group:
        return f"Core{rt.version.capitalize()}"
    words = rt.group.replace(".k8s.io", "").replace("-", ".").split(".")
    return "".join(w.capitalize() for w in words) + rt.version.capitalize()


def _op(rt: ResourceType, action: str, verb: str, desc: str, gvk: dict[str, str], *, params: list[dict[str, Any]],
        response_ref: str, request_ref: str | None = None, patch: bool = False, scoped: str = "",
        op_suffix: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": [_tag(rt)],
        "description": desc,
        "operationId": f"{verb}{_op_prefix(rt)}{scoped}{rt.kind}{op_suffix}",
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": _content(response_ref)},
                      "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if action in ("post", "put", "patch"):
        op["responses"]["201"] = {"description": "Created", "content": _content(response_ref)}
    if patch:
        media = ["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"]
        if not rt.is_custom:
            media.append("application/strategic-merge-patch+json")
        op["requestBody"] = {"content": {m: {"schema": {"$ref": _COMPONENTS + _META + "Patch"}} for m in media},
                             "required": True}
    elif request_ref is not None:
        op["requestBody"] = {"content": {"*/*": {"schema": {"$ref": _COMPONENTS + request_ref}}}, "required": True}
    return op


def _resource_paths(rt: ResourceType, kind_ref: str, list_ref: str) -> dict[str, Any]:
    base = f"/apis/{rt.group_version}" if rt.group else f"/api/{rt.version}"
    coll = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    item = f"{coll}/{{name}}"
    scoped = "Namespaced" if rt.namespaced else ""
    gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
    path_params = [_path_param("name", f"name of the {rt.kind}")]
    ns_params = [_path_param("namespace", "object name and auth scope, such as for teams and projects")] \
        if rt.namespaced else []
    write = [_P_DRY_RUN, _P_FIELD_MANAGER, _P_FIELD_VALIDATION]
    paths: dict[str, Any] = {}
    status_ref = _META + "Status"
    paths[coll] = {
        "get": _op(rt, "list", "list", f"list or watch objects of kind {rt.kind}", gvk, params=list(_LIST_PARAMS),
                   response_ref=list_ref, scoped=scoped),
        "post": _op(rt, "post", "create", f"create a {rt.kind}", gvk, params=write, response_ref=kind_ref,
                    request_ref=kind_ref, scoped=scoped),
        "delete": _op(rt, "deletecollection", "deleteCollection", f"delete collection of {rt.kind}", gvk,
                      params=[_P_DRY_RUN] + list(_LIST_PARAMS), response_ref=status_ref, scoped=scoped),
        "parameters": ns_params + [_P_PRETTY],
    }
    paths[item] = {
        "get": _op(rt, "get", "read", f"read the specified {rt.kind}", gvk, params=[], response_ref=kind_ref,
                   scoped=scoped),
        "put": _op(rt, "put", "replace", f"replace the specified {rt.kind}", gvk, params=write,
                   response_ref=kind_ref, request_ref=kind_ref, scoped=scoped),
        "patch": _op(rt, "patch", "patch", f"partially update the specified {rt.kind}", gvk,
                     params=write + [_P_FORCE], response_ref=kind_ref, patch=True, scoped=scoped),
        "delete": _op(rt, "delete", "delete", f"delete a {rt.kind}", gvk,
                      params=[_P_DRY_RUN, _qparam("gracePeriodSeconds", "The duration in seconds before the "
                                                  "object should be deleted.", "integer"),
                              _qparam("propagationPolicy", "Whether and how garbage collection will be "
                                      "performed.")],
                      response_ref=status_ref, request_ref=_META + "DeleteOptions", scoped=scoped),
        "parameters": path_params + ns_params + [_P_PRETTY],
    }
    if "status" in rt.subresources:
        paths[f"{item}/status"] = {
            "get": _op(rt, "get", "read", f"read status of the specified {rt.kind}", gvk, params=[],
                       response_ref=kind_ref, scoped=scoped, op_suffix="Status"),
            "put": _op(rt, "put", "replace", f"replace status of the specified {rt.kind}", gvk, params=write,
                       response_ref=kind_ref, request_ref=kind_ref, scoped=scoped, op_suffix="Status"),
            "patch": _op(rt, "patch", "patch", f"partially update status of the specified {rt.kind}", gvk,
                         params=write + [_P_FORCE], response_ref=kind_ref, patch=True, scoped=scoped,
                         op_suffix="Status"),
            "parameters": path_params + ns_params + [_P_PRETTY],
        }
    if "scale" in rt.subresources:
        scale_gvk = {"group": "autoscaling", "kind": "Scale", "version": "v1"}
        paths[f"{item}/scale"] = {
            "get": _op(rt, "get", "read", f"read scale of the specified {rt.kind}", scale_gvk, params=[],
                       response_ref=_SCALE_DEF, scoped=scoped, op_suffix="Scale"),
            "put": _op(rt, "put", "replace", f"replace scale of the specified {rt.kind}", scale_gvk,
                       params=write, response_ref=_SCALE_DEF, request_ref=_SCALE_DEF, scoped=scoped,
                       op_suffix="Scale"),
            "patch": _op(rt, "patch", "patch", f"partially update scale of the specified {rt.kind}", scale_gvk,
                         params=write + [_P_FORCE], response_ref=_SCALE_DEF, patch=True, scoped=scoped,
                         op_suffix="Scale"),
            "parameters": path_params + ns_params + [_P_PRETTY],
        }
    if rt.namespaced:
        paths[f"{base}/{rt.plural}"] = {
            "get": _op(rt, "list", "list", f"list or watch objects of kind {rt.kind}", gvk,
                       params=list(_LIST_PARAMS), response_ref=list_ref, op_suffix="ForAllNamespaces"),
            "parameters": [_P_PRETTY],
        }
    return paths


def _build_document(group_version: str, types: list[ResourceType]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    roots: list[str] = list(_EXTRA_META)
    custom: dict[str, dict[str, Any]] = {}
    for rt in sorted(types, key=lambda t: (t.kind, t.plural)):
        if rt.is_custom:
            kind_ref = crd_component_name(rt)
            list_ref = crd_component_name(rt, rt.list_kind)
            custom[kind_ref] = _crd_component(rt)
            custom[list_ref] = _crd_list_component(rt)
        else:
            assert rt.definition is not None
            kind_ref = rt.definition
            list_ref = rt.definition + "List"
            roots.extend([kind_ref, list_ref])
            if "scale" in rt.subresources:
                roots.append(_SCALE_DEF)
        paths.update(_resource_paths(rt, kind_ref, list_ref))
    for comp in custom.values():
        found: set[str] = set()
        _refs(comp, found)
        roots.extend(sorted(found))
    components = _closure(roots)
    components.update(custom)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.37.0"},
        "paths": {k: paths[k] for k in sorted(paths)},
        "components": {
            "schemas": {k: components[k] for k in sorted(components)},
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication",
                                                "name": "authorization", "in": "header"}},
        },
    }
