"""Kubernetes 1.37 schemas for kubesim, read from the ``kubernetes-validate`` package.

One data source serves strict field validation, strategic-merge keys, server-side-apply
list semantics and the ``/openapi/v3`` documents, instead of hand-written tables that
drift from the real API server. The 1.8 MB ``_definitions.json`` is parsed once per
process (lazily) and shared by every :class:`Schemas` instance, because tests start
many servers and each must be cheap to construct.

Strict field validation, as the real API server does it (checked against the
apiserver sources and real-cluster outputs):

* create / update (POST / PUT) and merge / strategic / JSON patches with
  ``fieldValidation=Strict``: **400 BadRequest**, message
  ``Deployment in version "v1" cannot be handled as a Deployment: strict decoding error:
  unknown field "spec.replica", unknown field "spec.template.spec.containers[0].imagee"``
  (patches: ``strict decoding error: unknown field "spec.foo"``). No causes.
* server-side apply: the typed conversion fails first, whatever ``fieldValidation`` says:
  **500** with an empty reason, message ``failed to create typed patch object
  (default/web; apps/v1, Kind=Deployment): .spec.foo: field not declared in schema``
  (keyed list items are written ``[name="nginx"]``).
* wrong JSON types in built-in objects are decode errors (400, ``json: cannot unmarshal
  string into Go struct field DeploymentSpec.spec.replicas of type int32``); in custom
  resources they are 422 Invalid with cause ``FieldValueTypeInvalid``. So are ``[]byte``
  values that are not base64 (``illegal base64 data at input byte 4``). After a JSON / merge /
  strategic merge patch these come as :class:`errors.DecodeError`, which the store answers
  like the patch handler: 422 `` "" is invalid: patch: Invalid value: ...``.

:meth:`Schemas.decode_error` builds those errors; :meth:`Schemas.validate` returns the
value errors (422 causes) and raises the decode error first, like the real server
which never reaches validation with an undecodable body.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, Literal

from local.kubesim import configdata, errors
from local.kubesim.types import Cause, ResourceType

SCHEMA_VERSION = "v1.37.0"
_REF_PREFIX = "#/$defs/"
INT_OR_STRING_DEF = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
TOTAL_ANNOTATION_SIZE = 256 * 1024  # apimachinery TotalAnnotationSizeLimitB
QUANTITY_DEF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
OBJECT_META_DEF = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

_load_lock = threading.Lock()


@cache
def _load_definitions() -> dict[str, dict[str, Any]]:
    """Parse the strict ``_definitions.json`` once per process.

    The strict variant is used because it marks every closed object with
    ``additionalProperties: false``; objects without properties (RawExtension, FieldsV1,
    JSON) stay free-form.
    """
    with _load_lock:
        # find_spec locates the package without importing it: importing kubernetes_validate
        # pulls in jsonschema and costs ~0.35 s, ten times the JSON parse itself.
        spec = importlib.util.find_spec("kubernetes_validate")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("kubesim needs the kubernetes-validate package (dev dependency)")
        base = Path(next(iter(spec.submodule_search_locations)))
        path = base / "kubernetes-json-schema" / f"{SCHEMA_VERSION}-local-strict" / "_definitions.json"
        with path.open("rb") as fh:
            data = json.load(fh)
        return data["$defs"]


def definitions() -> dict[str, dict[str, Any]]:
    """All Kubernetes 1.37 definitions keyed like ``io.k8s.api.apps.v1.Deployment`` (shared, read-only)."""
    return _load_definitions()


def _ref_name(ref: str) -> str:
    if ref.startswith(_REF_PREFIX):
        return ref[len(_REF_PREFIX):]
    if ref.startswith("#/components/schemas/"):
        return ref[len("#/components/schemas/"):]
    if ref.startswith("#/definitions/"):
        return ref[len("#/definitions/"):]
    return ref


def _norm_type(t: Any) -> str | None:
    """``["string", "null"]`` -> ``"string"``: the package encodes nullability in the type."""
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        return rest[0] if len(rest) == 1 else None
    return t if isinstance(t, str) else None


# ---------------------------------------------------------------------------------------------
# SchemaNode
# ---------------------------------------------------------------------------------------------


class SchemaNode:
    """One position in an object's schema (a property, a list element, a map value).

    ``raw`` is the schema written at the position (a property may carry list/patch
    extensions next to its ``$ref``); ``resolved`` is what the ``$ref`` points to. Attributes
    are looked up in ``raw`` first, then ``resolved``. Children are built lazily and cached,
    so SSA / strategic-merge walks over large objects cost a dict lookup per step.
    """

    __slots__ = (
        "raw", "resolved", "def_name", "crd", "embedded", "_children", "_items", "_values",
        "type", "list_type", "list_map_keys", "patch_strategy", "patch_merge_key", "map_type",
        "int_or_string", "preserve_unknown", "known", "format", "required", "enum",
    )

    def __init__(self, raw: dict[str, Any] | None, *, crd: bool = False) -> None:
        self.crd = crd
        self._children: dict[str, SchemaNode] = {}
        self._items: SchemaNode | None = None
        self._values: SchemaNode | None = None
        if raw is None:
            self.raw: dict[str, Any] = {}
            self.resolved: dict[str, Any] = {}
            self.def_name: str | None = None
            self.known = False
            self.type: str | None = None
            self.list_type: str | None = None
            self.list_map_keys: tuple[str, ...] = ()
            self.patch_strategy: str | None = None
            self.patch_merge_key: str | None = None
            self.map_type: str | None = None
            self.int_or_string = False
            self.preserve_unknown = False
            self.embedded = False
            self.format: str | None = None
            self.required: tuple[str, ...] = ()
            self.enum: tuple[Any, ...] | None = None
            return
        self.raw = raw
        ref = raw.get("$ref")
        self.def_name = _ref_name(ref) if isinstance(ref, str) else None
        self.resolved = definitions().get(self.def_name, {}) if self.def_name else raw
        self.known = True

        def get(key: str) -> Any:
            return raw[key] if key in raw else self.resolved.get(key)

        self.int_or_string = bool(
            self.def_name == INT_OR_STRING_DEF
            or get("x-kubernetes-int-or-string")
            or get("format") == "int-or-string"
        )
        t = _norm_type(get("type"))
        if t is None and self.def_name == QUANTITY_DEF:
            t = None  # string or number
        elif t is None and not self.int_or_string:
            if "properties" in self.resolved or isinstance(self.resolved.get("additionalProperties"), dict):
                t = "object"
            elif "items" in self.resolved:
                t = "array"
        self.type = t
        self.list_type = get("x-kubernetes-list-type")
        keys = get("x-kubernetes-list-map-keys")
        self.list_map_keys = tuple(keys) if isinstance(keys, list) else ()
        self.patch_strategy = get("x-kubernetes-patch-strategy")
        self.patch_merge_key = get("x-kubernetes-patch-merge-key")
        self.map_type = get("x-kubernetes-map-type")
        self.preserve_unknown = bool(get("x-kubernetes-preserve-unknown-fields"))
        self.embedded = bool(get("x-kubernetes-embedded-resource"))
        self.format = get("format")
        req = self.resolved.get("required") or raw.get("required")
        self.required = tuple(req) if isinstance(req, list) else ()
        enum = get("enum")
        self.enum = tuple(enum) if isinstance(enum, list) else None

    def __repr__(self) -> str:
        if not self.known:
            return "SchemaNode(EMPTY)"
        return f"SchemaNode({self.def_name or self.type})"

    # -- structure ----------------------------------------------------------------------------

    @property
    def properties(self) -> dict[str, Any]:
        """Declared properties (raw schemas), empty for scalars, maps and free-form objects."""
        props = self.resolved.get("properties")
        return props if isinstance(props, dict) else {}

    @property
    def closed(self) -> bool:
        """True when a field outside :attr:`properties` is an unknown field (strict decoding)."""
        if not self.known or self.preserve_unknown or self.type != "object":
            return False
        ap = self.resolved.get("additionalProperties")
        if isinstance(ap, dict) or ap is True:
            return False
        if self.crd:
            # Structural CRD schemas prune everything not declared (unless preserve-unknown).
            return True
        return bool(self.properties)  # RawExtension / FieldsV1 / JSON are free-form

    def has_field(self, name: str) -> bool:
        if name in self.properties:
            return True
        return self.embedded and name in ("apiVersion", "kind", "metadata")

    def field(self, name: str) -> SchemaNode:
        """Child of an object; :data:`EMPTY` when the schema does not declare it."""
        child = self._children.get(name)
        if child is not None:
            return child
        raw = self.properties.get(name)
        if raw is not None:
            if self.crd and name == "metadata" and self.embedded:
                child = _object_meta_node()
            else:
                child = SchemaNode(raw, crd=self.crd)
        elif self.embedded and name == "metadata":
            child = _object_meta_node()
        elif self.embedded and name in ("apiVersion", "kind"):
            child = SchemaNode({"type": "string"}, crd=self.crd)
        else:
            ap = self.resolved.get("additionalProperties")
            child = self.values if isinstance(ap, dict) else EMPTY
        self._children[name] = child
        return child

    @property
    def items(self) -> SchemaNode:
        """Element of a list (EMPTY when not a list or unknown)."""
        if self._items is None:
            raw = self.resolved.get("items") if "items" in self.resolved else self.raw.get("items")
            self._items = SchemaNode(raw, crd=self.crd) if isinstance(raw, dict) else EMPTY
        return self._items

    @property
    def values(self) -> SchemaNode:
        """Value of a map (``additionalProperties``); EMPTY when not a map."""
        if self._values is None:
            raw = self.resolved.get("additionalProperties")
            self._values = SchemaNode(raw, crd=self.crd) if isinstance(raw, dict) else EMPTY
        return self._values

    @property
    def is_map(self) -> bool:
        """A string-keyed map (labels, data) rather than a struct."""
        return self.type == "object" and not self.properties and isinstance(
            self.resolved.get("additionalProperties"), dict)

    @property
    def description(self) -> str:
        d = self.raw.get("description") or self.resolved.get("description")
        return d if isinstance(d, str) else ""


EMPTY = SchemaNode(None)
"""The node for positions without a schema (unknown fields, free-form content)."""


@cache
def _def_node(name: str) -> SchemaNode:
    """Process-wide node of a named definition: children caches are shared by every server."""
    return SchemaNode({"$ref": _REF_PREFIX + name})


def _object_meta_node() -> SchemaNode:
    return _def_node(OBJECT_META_DEF)


def definition_node(name: str) -> SchemaNode:
    """The (shared) node of a definition such as ``io.k8s.api.core.v1.PodSpec``."""
    return _def_node(name)


# ---------------------------------------------------------------------------------------------
# Built-in resource types
# ---------------------------------------------------------------------------------------------

# (group, version, kind, plural, namespaced, shortNames, categories). REST names, scope,
# short names and categories are not part of the OpenAPI data; everything else is.
_BUILTIN_TABLE: tuple[tuple[str, str, str, str, bool, tuple[str, ...], tuple[str, ...]], ...] = (
    ("", "v1", "Namespace", "namespaces", False, ("ns",), ()),
    ("", "v1", "ConfigMap", "configmaps", True, ("cm",), ()),
    ("", "v1", "Secret", "secrets", True, (), ()),
    ("", "v1", "Service", "services", True, ("svc",), ("all",)),
    ("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), ()),
    ("", "v1", "Pod", "pods", True, ("po",), ("all",)),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), ()),
    ("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",), ()),
    ("", "v1", "Endpoints", "endpoints", True, ("ep",), ()),
    ("", "v1", "Event", "events", True, ("ev",), ()),
    ("", "v1", "LimitRange", "limitranges", True, ("limits",), ()),
    ("", "v1", "ResourceQuota", "resourcequotas", True, ("quota",), ()),
    ("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("all",)),
    ("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("all",)),
    ("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("all",)),
    ("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("all",)),
    ("apps", "v1", "ControllerRevision", "controllerrevisions", True, (), ()),
    ("batch", "v1", "Job", "jobs", True, (), ("all",)),
    ("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("all",)),
    ("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",), ()),
    ("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False, (), ()),
    ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",), ()),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", True, (), ()),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True, (), ()),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False, (), ()),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False, (), ()),
    ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",), ()),
    ("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",), ("all",)),
    ("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",), ()),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
     ("crd", "crds"), ("api-extensions",)),
    ("coordination.k8s.io", "v1", "Lease", "leases", True, (), ()),
    ("events.k8s.io", "v1", "Event", "events", True, ("ev",), ()),
)

# Kinds with a /scale subresource (the real server serves it for these workloads).
_SCALE_KINDS = frozenset({("apps", "Deployment"), ("apps", "ReplicaSet"), ("apps", "StatefulSet")})


@cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    """(group, version, kind) -> definition key, from ``x-kubernetes-group-version-kind``."""
    index: dict[tuple[str, str, str], str] = {}
    for name, d in definitions().items():
        for gvk in d.get("x-kubernetes-group-version-kind") or ():
            key = (gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))
            # The first (canonical) definition wins; some kinds are listed by WatchEvent etc.
            if key not in index or len(d.get("x-kubernetes-group-version-kind")) == 1:
                index[key] = name
    return index


def definition_for(group: str, version: str, kind: str) -> str | None:
    """Definition key of a built-in kind, e.g. ``("apps","v1","Deployment")`` -> ``io.k8s.api.apps.v1.Deployment``."""
    return _gvk_index().get((group, version, kind))


@cache
def _builtin_types() -> tuple[ResourceType, ...]:
    out: list[ResourceType] = []
    for group, version, kind, plural, namespaced, short, cats in _BUILTIN_TABLE:
        definition = definition_for(group, version, kind)
        if definition is None:  # pragma: no cover - the package always has these kinds
            raise RuntimeError(f"kubernetes-validate has no schema for {group}/{version} {kind}")
        subs: set[str] = set()
        if "status" in (definitions()[definition].get("properties") or {}):
            subs.add("status")
        if (group, kind) in _SCALE_KINDS:
            subs.add("scale")
        out.append(ResourceType(
            group=group, version=version, kind=kind, plural=plural, singular=kind.lower(),
            namespaced=namespaced, short_names=short, categories=cats,
            subresources=frozenset(subs), definition=definition,
        ))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Name validation (messages as in k8s.io/apimachinery/pkg/util/validation)
# ---------------------------------------------------------------------------------------------

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def _quote(value: Any) -> str:
    """Go's ``%q``-like rendering used in ``Invalid value: "x"`` messages."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def invalid_cause(path: str, value: Any, detail: str) -> Cause:
    return Cause("FieldValueInvalid", f"Invalid value: {_quote(value)}: {detail}", path)


def required_cause(path: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", "Required value" + (f": {detail}" if detail else ""), path)


def not_supported_cause(path: str, value: Any, allowed: list[Any]) -> Cause:
    listed = ", ".join(_quote(a) for a in allowed)
    return Cause("FieldValueNotSupported", f"Unsupported value: {_quote(value)}: supported values: {listed}", path)


def check_dns1123_label(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.match(value):
        errs.append(DNS1123_LABEL_MSG)
    return errs


def check_dns1123_subdomain(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.match(value):
        errs.append(DNS1123_SUBDOMAIN_MSG)
    return errs


def check_dns1035_label(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1035_LABEL.match(value):
        errs.append(DNS1035_LABEL_MSG)
    return errs


def check_path_segment(value: str) -> list[str]:
    """RBAC names (``system:controller:x`` is valid): path.IsValidPathSegmentName."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    for bad in ("/", "%"):
        if bad in value:
            return [f"may not contain '{bad}'"]
    return []


_NAME_CHECKS = {
    ("", "Namespace"): check_dns1123_label,
    ("", "Service"): check_dns1035_label,
    ("rbac.authorization.k8s.io", "Role"): check_path_segment,
    ("rbac.authorization.k8s.io", "RoleBinding"): check_path_segment,
    ("rbac.authorization.k8s.io", "ClusterRole"): check_path_segment,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): check_path_segment,
}


# ---------------------------------------------------------------------------------------------
# Walking an object against a schema
# ---------------------------------------------------------------------------------------------

def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _type_ok(node: SchemaNode, value: Any) -> bool:
    if value is None or not node.known:
        return True
    if node.int_or_string:
        return isinstance(value, (str, int)) and not isinstance(value, bool)
    if node.def_name == QUANTITY_DEF:
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)
    t = node.type
    if t is None:
        return True
    if t == "string":
        return isinstance(value, str)
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    return True


def _go_type(node: SchemaNode) -> str:
    """The Go type named by ``json: cannot unmarshal ... of type X`` errors."""
    if node.int_or_string:
        return "intstr.IntOrString"
    if node.def_name:
        parts = node.def_name.split(".")
        return f"{parts[-2]}.{parts[-1]}"
    t = node.type
    if t == "integer":
        return node.format if node.format in ("int32", "int64") else "int64"
    if t == "number":
        return "float64"
    if t == "boolean":
        return "bool"
    if t == "string":
        return "string" if node.format != "byte" else "[]uint8"
    if t == "array":
        return "[]" + _go_type(node.items)
    if t == "object" and node.is_map:
        return "map[string]" + _go_type(node.values)
    return "interface {}"


class _Walk:
    """One pass over an object collecting unknown fields, type errors and required fields."""

    def __init__(self, crd: bool) -> None:
        self.crd = crd
        self.unknown: list[str] = []        # decode style: spec.template.spec.containers[0].foo
        self.unknown_apply: list[str] = []  # SSA style: .spec.template.spec.containers[name="x"].foo
        self.type_errors: list[tuple[str, str, SchemaNode, Any, str]] = []  # path, gopath, node, value, struct
        self.causes: list[Cause] = []

    def walk(self, node: SchemaNode, value: Any, path: str, apath: str, gopath: str, struct: str) -> None:
        if value is None or not node.known:
            return
        if not _type_ok(node, value):
            self.type_errors.append((path, gopath, node, value, struct))
            return
        if self.crd:
            self._crd_value_checks(node, value, path)
        if isinstance(value, dict):
            if node.is_map or (not node.properties and isinstance(node.resolved.get("additionalProperties"), dict)):
                vnode = node.values
                for k, v in value.items():
                    self.walk(vnode, v, f"{path}[{k}]", f"{apath}.{k}", f"{gopath}.{k}" if gopath else k, struct)
                return
            if node.type != "object" and not node.properties:
                return
            if node.def_name:
                struct = node.def_name.rsplit(".", 1)[-1]
            closed = node.closed
            for k, v in value.items():
                sub = f"{path}.{k}" if path else k
                asub = f"{apath}.{k}"
                gsub = f"{gopath}.{k}" if gopath else k
                if node.has_field(k):
                    self.walk(node.field(k), v, sub, asub, gsub, struct)
                elif closed:
                    self.unknown.append(sub)
                    self.unknown_apply.append(asub)
                elif node.preserve_unknown:
                    continue
            if not self.crd and (path == "status" or path.startswith("status.")):
                return  # Go zero values: status of built-ins is never "missing" a field
            for req in node.required:
                if value.get(req) is None and not (req == "metadata" and path == ""):
                    if not self.crd and node.field(req).type in ("integer", "number", "boolean"):
                        continue  # decodes to 0/false; range checks (e.g. ports) report those
                    sub = f"{path}.{req}" if path else req
                    self.causes.append(required_cause(sub))
            return
        if isinstance(value, list):
            inode = node.items
            keys = node.list_map_keys if node.list_type == "map" else ()
            for i, item in enumerate(value):
                if keys and isinstance(item, dict):
                    sel = ",".join(f"{k}={_quote(item.get(k))}" for k in keys if k in item)
                    aitem = f"{apath}[{sel}]"
                elif node.list_type == "set":
                    aitem = f"{apath}[={_quote(item)}]"
                else:
                    aitem = f"{apath}[{i}]"
                self.walk(inode, item, f"{path}[{i}]", aitem, gopath, struct)

    def _crd_value_checks(self, node: SchemaNode, value: Any, path: str) -> None:
        """OpenAPI value constraints of structural CRD schemas, with the apiextensions messages."""
        raw = node.resolved
        if node.enum is not None and value not in node.enum:
            self.causes.append(not_supported_cause(path, value, list(node.enum)))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            lo, hi = raw.get("minimum"), raw.get("maximum")
            if isinstance(lo, (int, float)):
                if value < lo or (raw.get("exclusiveMinimum") is True and value == lo):
                    word = "greater than" if raw.get("exclusiveMinimum") is True else "greater than or equal to"
                    self.causes.append(invalid_cause(path, value, f"{path} in body should be {word} {_num(lo)}"))
            if isinstance(hi, (int, float)):
                if value > hi or (raw.get("exclusiveMaximum") is True and value == hi):
                    word = "less than" if raw.get("exclusiveMaximum") is True else "less than or equal to"
                    self.causes.append(invalid_cause(path, value, f"{path} in body should be {word} {_num(hi)}"))
        if isinstance(value, str):
            pattern = raw.get("pattern")
            if isinstance(pattern, str):
                try:
                    ok = re.search(pattern, value) is not None
                except re.error:
                    ok = True
                if not ok:
                    self.causes.append(invalid_cause(path, value, f"{path} in body should match '{pattern}'"))
            max_len = raw.get("maxLength")
            if isinstance(max_len, int) and len(value) > max_len:
                self.causes.append(Cause("FieldValueTooLong", f"Too long: may not be more than {max_len} bytes", path))
            min_len = raw.get("minLength")
            if isinstance(min_len, int) and len(value) < min_len:
                self.causes.append(invalid_cause(path, value, f"{path} in body should be at least {min_len} chars long"))
        if isinstance(value, list):
            max_items = raw.get("maxItems")
            if isinstance(max_items, int) and len(value) > max_items:
                self.causes.append(Cause("FieldValueTooMany", f"Too many: {len(value)}: must have at most {max_items} items", path))
            min_items = raw.get("minItems")
            if isinstance(min_items, int) and len(value) < min_items:
                self.causes.append(invalid_cause(path, value, f"{path} in body should have at least {min_items} items"))


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


Operation = Literal["create", "update", "patch", "apply"]


class Schemas:
    """Schemas of every kind kubesim serves; one instance per server, data shared process-wide.

    Construction is free: definitions are parsed on first use and cached for the process.
    """

    def __init__(self) -> None:
        self._crd_roots: dict[int, tuple[dict[str, Any], SchemaNode]] = {}
        self._lock = threading.Lock()

    # -- types ----------------------------------------------------------------------------------

    def builtin_types(self) -> list[ResourceType]:
        """Every built-in kind kubesim serves, REST names from a table, the rest from the schemas."""
        return list(_builtin_types())

    def types_for_crd(self, crd: dict[str, Any]) -> list[ResourceType]:
        """One ResourceType per served version of an ``apiextensions.k8s.io/v1`` CRD object."""
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group = spec.get("group", "")
        kind = names.get("kind", "")
        plural = names.get("plural", "")
        singular = names.get("singular") or kind.lower()
        namespaced = spec.get("scope", "Namespaced") != "Cluster"
        out: list[ResourceType] = []
        for ver in spec.get("versions") or ():
            if not ver.get("served", True):
                continue
            subs: set[str] = set()
            scale_paths: dict[str, str] | None = None
            sr = ver.get("subresources") or {}
            if "status" in sr:
                subs.add("status")
            if isinstance(sr.get("scale"), dict):
                subs.add("scale")
                scale_paths = {k: v for k, v in sr["scale"].items() if isinstance(v, str)}
            schema = (ver.get("schema") or {}).get("openAPIV3Schema")
            out.append(ResourceType(
                group=group, version=ver.get("name", ""), kind=kind, plural=plural, singular=singular,
                namespaced=namespaced, short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()), subresources=frozenset(subs),
                definition=None, crd_schema=schema if isinstance(schema, dict) else None,
                scale_paths=scale_paths,
            ))
        return out

    # -- nodes ----------------------------------------------------------------------------------

    def root(self, rt: ResourceType) -> SchemaNode:
        """The schema of a whole object (CRDs: from ``rt.crd_schema``, metadata = ObjectMeta)."""
        if rt.definition:
            return _def_node(rt.definition)
        schema = rt.crd_schema
        if schema is None:
            schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        key = id(schema)
        hit = self._crd_roots.get(key)
        if hit is not None and hit[0] is schema:
            return hit[1]
        node = SchemaNode(_crd_root_schema(schema), crd=True)
        with self._lock:
            self._crd_roots[key] = (schema, node)
        return node

    def definition(self, name: str) -> SchemaNode:
        return _def_node(name)

    # -- strict fields / decoding ---------------------------------------------------------------

    def _walk(self, rt: ResourceType, obj: dict[str, Any]) -> _Walk:
        w = _Walk(crd=rt.is_custom)
        w.walk(self.root(rt), obj, "", "", "", rt.kind)
        return w

    def unknown_fields(self, rt: ResourceType, obj: dict[str, Any], *, style: Literal["decode", "apply"] = "decode") -> list[str]:
        """Fields the schema does not declare.

        ``decode`` paths look like ``spec.template.spec.containers[0].foo`` (the
        ``strict decoding error`` of create/update/patch); ``apply`` paths like
        ``.spec.template.spec.containers[name="app"].foo`` (server-side apply's typed conversion).
        """
        w = self._walk(rt, obj)
        return w.unknown if style == "decode" else w.unknown_apply

    def decode_error(self, rt: ResourceType, obj: dict[str, Any], *, strict: bool,
                     operation: Operation = "create") -> errors.ApiError | None:
        """The error the real server answers before validation, or None.

        Wrong JSON types in built-ins are always decode errors (400). Unknown fields are
        errors only when ``strict`` (``fieldValidation=Strict``), except for server-side
        apply, where the typed conversion rejects them always (500, empty reason).
        """
        return self._decode_error(rt, obj, self._walk(rt, obj), strict=strict, operation=operation)

    def _decode_error(self, rt: ResourceType, obj: dict[str, Any], w: _Walk, *, strict: bool,
                      operation: Operation) -> errors.ApiError | None:
        if operation == "apply":
            problems = [f"{p}: field not declared in schema" for p in w.unknown_apply]
            for path, _g, node, value, _s in w.type_errors:
                problems.append(f".{path}: expected {_ssa_type_word(node)}, got {_json_type(value)}")
            if problems:
                text = problems[0] if len(problems) == 1 else "errors:\n  " + "\n  ".join(problems)
                meta = obj.get("metadata") or {}
                nn = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
                gvk = f"{rt.api_version}, Kind={rt.kind}"
                return errors.ApiError(500, "", f"failed to create typed patch object ({nn}; {gvk}): {text}")
            return None
        if w.type_errors and not rt.is_custom:
            path, gopath, node, value, struct = w.type_errors[0]
            msg = (f"json: cannot unmarshal {_json_type(value)} into Go struct field "
                   f"{struct}.{gopath} of type {_go_type(node)}")
            return errors.DecodeError(self._cannot_handle(rt, operation) + msg, msg)
        bad_bytes = configdata.byte_field_error(rt, obj)
        if bad_bytes is not None:
            return errors.DecodeError(self._cannot_handle(rt, operation) + bad_bytes, bad_bytes)
        if strict and w.unknown:
            listed = ", ".join(f'unknown field "{p}"' for p in w.unknown)
            return errors.bad_request(self._cannot_handle(rt, operation) + "strict decoding error: " + listed)
        return None

    @staticmethod
    def _cannot_handle(rt: ResourceType, operation: Operation) -> str:
        if operation == "patch":
            return ""
        return f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '

    # -- validation -----------------------------------------------------------------------------

    def validate(self, rt: ResourceType, obj: dict[str, Any], *, strict: bool,
                 operation: Operation = "create") -> list[Cause]:
        """Value errors of an object (answered as 422 Invalid with these causes).

        Raises the decode error (400 BadRequest, see :meth:`decode_error`) first when the body
        would not decode: wrong types in built-ins, unknown fields when ``strict``.
        """
        w = self._walk(rt, obj)
        err = self._decode_error(rt, obj, w, strict=strict, operation="patch" if operation == "patch" else "create")
        if err is not None:
            raise err
        causes: list[Cause] = []
        causes.extend(self._validate_metadata(rt, obj))
        for path, _g, node, value, _s in w.type_errors:  # CRDs only reach here
            want = node.type or "string"
            causes.append(Cause(
                "FieldValueTypeInvalid",
                f"Invalid value: {_quote(_json_type(value) if not isinstance(value, (dict, list)) else value)}: "
                f"{path} in body must be of type {want}: {_quote(_json_type(value))}",
                path,
            ))
        causes.extend(c for c in w.causes if c.field != "metadata")
        causes.extend(self._validate_kind(rt, obj))
        causes.extend(configdata.validate(rt, obj))
        # Deduplicate while keeping order (required may come from schema and from kind checks).
        seen: set[tuple[str, str, str]] = set()
        out: list[Cause] = []
        for c in causes:
            key = (c.reason, c.field, c.message)
            if key not in seen:
                seen.add(key)
                out.append(c)
        return out

    def _validate_metadata(self, rt: ResourceType, obj: dict[str, Any]) -> list[Cause]:
        meta = obj.get("metadata") or {}
        if not isinstance(meta, dict):
            return []
        name = meta.get("name")
        causes: list[Cause] = []
        if not name:
            if not meta.get("generateName"):
                causes.append(required_cause("metadata.name", "name or generateName is required"))
            return causes
        if not isinstance(name, str):
            return causes
        check = _NAME_CHECKS.get((rt.group, rt.kind), check_dns1123_subdomain)
        for msg in check(name):
            causes.append(invalid_cause("metadata.name", name, msg))
        if rt.group == "apiextensions.k8s.io" and rt.kind == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            want = f"{(spec.get('names') or {}).get('plural', '')}.{spec.get('group', '')}"
            if name != want:
                causes.append(invalid_cause("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
        if rt.group == "batch" and rt.kind == "CronJob" and len(name) > 52:
            causes.append(invalid_cause("metadata.name", name, "must be no more than 52 characters"))
        ns = meta.get("namespace")
        if rt.namespaced and isinstance(ns, str) and ns:
            for msg in check_dns1123_label(ns):
                causes.append(invalid_cause("metadata.namespace", ns, msg))
        for key in ("labels", "annotations"):
            m = meta.get(key)
            if isinstance(m, dict):
                for k in m:
                    for msg in _qualified_name_errors(k):
                        causes.append(invalid_cause(f"metadata.{key}", k, msg))
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            size = sum(len(str(k).encode()) + len(v.encode()) for k, v in annotations.items() if isinstance(v, str))
            if size > TOTAL_ANNOTATION_SIZE:  # ValidateAnnotationsSize
                causes.append(Cause("FieldValueTooLong", f"Too long: must have at most {TOTAL_ANNOTATION_SIZE} bytes",
                                    "metadata.annotations"))
        labels = meta.get("labels")
        if isinstance(labels, dict):
            for v in labels.values():
                if isinstance(v, str):
                    for msg in _label_value_errors(v):
                        causes.append(invalid_cause("metadata.labels", v, msg))
        return causes

    def _validate_kind(self, rt: ResourceType, obj: dict[str, Any]) -> list[Cause]:
        """Checks the Go validation code makes beyond the OpenAPI ``required`` lists."""
        causes: list[Cause] = []
        if rt.is_custom:
            return causes
        for path, pod_spec in _pod_specs(rt, obj):
            if not isinstance(pod_spec, dict):
                continue
            containers = pod_spec.get("containers")
            if not containers:
                causes.append(required_cause(f"{path}.containers"))
            for field_name in ("initContainers", "containers"):
                for i, c in enumerate(pod_spec.get(field_name) or ()):
                    if not isinstance(c, dict):
                        continue
                    cpath = f"{path}.{field_name}[{i}]"
                    if not c.get("name"):
                        causes.append(required_cause(f"{cpath}.name"))
                    elif isinstance(c["name"], str):
                        for msg in check_dns1123_label(c["name"]):
                            causes.append(invalid_cause(f"{cpath}.name", c["name"], msg))
                    if not c.get("image"):
                        causes.append(required_cause(f"{cpath}.image"))
        if rt.group == "batch":
            for path, pod_spec in _pod_specs(rt, obj):
                policy = pod_spec.get("restartPolicy") if isinstance(pod_spec, dict) else None
                if policy not in ("OnFailure", "Never"):
                    causes.append(not_supported_cause(f"{path}.restartPolicy", policy or "", ["OnFailure", "Never"]))
        if rt.group == "apps" and rt.kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
            spec = obj.get("spec")
            if isinstance(spec, dict):
                if spec.get("selector") is None:
                    causes.append(required_cause("spec.selector"))
                causes.extend(_selector_matches(spec, rt.kind))
                for key in ("replicas", "minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds"):
                    v = spec.get(key)
                    if isinstance(v, int) and not isinstance(v, bool) and v < 0:
                        causes.append(invalid_cause(f"spec.{key}", v, "must be greater than or equal to 0"))
        if rt.group == "" and rt.kind == "Service":
            for i, port in enumerate((obj.get("spec") or {}).get("ports") or ()):
                p = port.get("port", 0) if isinstance(port, dict) else None
                if isinstance(p, int) and not isinstance(p, bool) and not 1 <= p <= 65535:
                    causes.append(invalid_cause(f"spec.ports[{i}].port", p, "must be between 1 and 65535, inclusive"))
        for path, pod_spec in _pod_specs(rt, obj):
            for field_name in ("initContainers", "containers"):
                for i, c in enumerate(pod_spec.get(field_name) or () if isinstance(pod_spec, dict) else ()):
                    for j, port in enumerate(c.get("ports") or () if isinstance(c, dict) else ()):
                        p = port.get("containerPort", 0) if isinstance(port, dict) else None
                        if isinstance(p, int) and not isinstance(p, bool) and not 1 <= p <= 65535:
                            causes.append(invalid_cause(f"{path}.{field_name}[{i}].ports[{j}].containerPort", p,
                                                        "must be between 1 and 65535, inclusive"))
        if rt.group == "" and rt.kind == "Service":
            spec = obj.get("spec") or {}
            if isinstance(spec, dict):
                if spec.get("type", "ClusterIP") != "ExternalName" and not spec.get("ports") and spec.get("clusterIP") != "None":
                    causes.append(required_cause("spec.ports"))
                t = spec.get("type")
                if t is not None and t not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
                    causes.append(not_supported_cause("spec.type", t, ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]))
        return causes

    # -- quantities -----------------------------------------------------------------------------

    def quantity_slots(self, rt: ResourceType, obj: dict[str, Any]) -> list[tuple[Any, Any]]:
        """(container, key or index) of every ``resource.Quantity`` value of a built-in object
        (CRD schemas cannot name the type), for decoding them as the server does."""
        if rt.is_custom:
            return []
        out: list[tuple[Any, Any]] = []

        def visit(node: SchemaNode, container: Any, key: Any) -> None:
            value = container[key]
            if value is None or not node.known:
                return
            if node.def_name == QUANTITY_DEF:
                if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                    out.append((container, key))  # other types are the walk's decode errors
                return
            if isinstance(value, dict):
                if node.is_map or (not node.properties and isinstance(node.resolved.get("additionalProperties"), dict)):
                    vnode = node.values
                    for k in value:
                        visit(vnode, value, k)
                    return
                for k in value:
                    if node.has_field(k):
                        visit(node.field(k), value, k)
            elif isinstance(value, list):
                inode = node.items
                for i in range(len(value)):
                    visit(inode, value, i)

        visit(self.root(rt), [obj], 0)
        return out

    # -- helpers for other modules --------------------------------------------------------------

    def iter_nodes(self, node: SchemaNode, value: Any) -> Iterator[tuple[SchemaNode, Any]]:
        """Pairs of (node, value) for every position of a value (depth first)."""
        yield node, value
        if isinstance(value, dict):
            for k, v in value.items():
                yield from self.iter_nodes(node.field(k), v)
        elif isinstance(value, list):
            for item in value:
                yield from self.iter_nodes(node.items, item)


def _ssa_type_word(node: SchemaNode) -> str:
    t = node.type
    if t in ("integer", "number"):
        return "numeric (int or float)"
    if t == "object":
        return "map"
    if t == "array":
        return "list"
    return t or "scalar"


def _crd_root_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A CR's root: the CRD schema plus the implicit apiVersion/kind/metadata(ObjectMeta)."""
    root = dict(schema)
    props = dict(root.get("properties") or {})
    props["apiVersion"] = {"type": "string"}
    props["kind"] = {"type": "string"}
    props["metadata"] = {"$ref": _REF_PREFIX + OBJECT_META_DEF}
    root["properties"] = props
    root.setdefault("type", "object")
    return root


_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QN_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
           "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
           "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
_LV_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
           "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
           "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


def _qualified_name_errors(key: str) -> list[str]:
    """Label / annotation keys: ``[prefix/]name`` (k8s.io/apimachinery IsQualifiedName)."""
    parts = key.split("/")
    if len(parts) > 2:
        return ["a qualified name " + _QN_MSG.replace("name part ", "")]
    name = parts[-1]
    errs: list[str] = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in check_dns1123_subdomain(prefix))
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME.match(name):
        errs.append(_QN_MSG)
    return errs


def _label_value_errors(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE.match(value):
        errs.append(_LV_MSG)
    return errs


def _pod_specs(rt: ResourceType, obj: dict[str, Any]) -> list[tuple[str, Any]]:
    """(field path, pod spec) of a Pod or of the pod template inside a workload."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []
    if rt.group == "" and rt.kind == "Pod":
        return [("spec", spec)]
    if rt.group == "apps" and rt.kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet") or (
            rt.group == "batch" and rt.kind == "Job"):
        tpl = spec.get("template")
        return [("spec.template.spec", tpl.get("spec"))] if isinstance(tpl, dict) and tpl.get("spec") is not None else []
    if rt.group == "batch" and rt.kind == "CronJob":
        jt = spec.get("jobTemplate")
        if isinstance(jt, dict):
            jspec = jt.get("spec")
            if isinstance(jspec, dict):
                tpl = jspec.get("template")
                if isinstance(tpl, dict) and tpl.get("spec") is not None:
                    return [("spec.jobTemplate.spec.template.spec", tpl["spec"])]
    return []


def _selector_matches(spec: dict[str, Any], kind: str) -> list[Cause]:
    """``selector`` does not match template ``labels`` (apps/v1 workloads)."""
    sel = spec.get("selector")
    tpl = spec.get("template")
    labels = ((tpl or {}).get("metadata") or {}).get("labels") if isinstance(tpl, dict) else None
    causes: list[Cause] = []
    if not isinstance(sel, dict):
        return causes
    match = sel.get("matchLabels") or {}
    exprs = sel.get("matchExpressions") or []
    if not match and not exprs:
        if kind == "Deployment":
            causes.append(invalid_cause("spec.selector", sel, "empty selector is invalid for deployment"))
        else:
            causes.append(invalid_cause("spec.selector", sel, "empty selector is invalid for " + kind.lower()))
        return causes
    labels = labels if isinstance(labels, dict) else {}
    ok = all(labels.get(k) == v for k, v in match.items())
    for e in exprs:
        if not isinstance(e, dict):
            continue
        key, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In":
            ok = ok and labels.get(key) in vals
        elif op == "NotIn":
            ok = ok and labels.get(key) not in vals
        elif op == "Exists":
            ok = ok and key in labels
        elif op == "DoesNotExist":
            ok = ok and key not in labels
    if not ok:
        causes.append(Cause(
            "FieldValueInvalid",
            f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`",
            "spec.template.metadata.labels",
        ))
    return causes


def _go_map(m: dict[str, Any]) -> str:
    """Go's ``%#v`` of a ``map[string]string`` (what the real message prints)."""
    inner = ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(m.items()))
    return "map[string]string{" + inner + "}"
