"""Update rules of the real API server: what a write to an existing object may not change.

Two steps, in the apiserver's order, both pure functions of (old, new) JSON objects:

- :func:`prepare_for_update`: the registry strategy's ``PrepareForUpdate`` that fixes up the
  incoming object before validation (Service: ``patchAllocatedValues`` keeps the allocated
  ``clusterIP(s)`` / ``nodePort`` a client left out, then ``NormalizeClusterIPs``).
- :func:`validate_update`: the ``ValidateXUpdate`` functions (immutable and forbidden fields),
  answered as 422 Invalid causes worded like ``field.ErrorList`` prints them.

Sources (kubernetes/kubernetes): ``pkg/apis/apps/validation`` (ValidateDeploymentUpdate,
ValidateReplicaSetUpdate, ValidateDaemonSetUpdate, ValidateStatefulSetUpdate),
``pkg/apis/batch/validation`` (ValidateJobSpecUpdate), ``pkg/apis/core/validation``
(ValidateConfigMapUpdate, ValidateSecretUpdate, ValidateServiceUpdate /
validateUpgradeDowngradeClusterIPs, ValidatePersistentVolumeClaimUpdate, ValidatePodUpdate),
``pkg/registry/core/service/strategy.go`` and ``staging/.../api/validation``
(ValidateImmutableField: ``field is immutable``).

Bad values print like Go's ``%#v`` of the internal type, as ``field.Error.ErrorBody`` does;
where the real message embeds a ``cmp.Diff`` of a whole spec (Pod, PVC) or a ``%#v`` of a
whole pod template (Job), kubesim prints the same prefix and a short form (see
docs/kubesim-design.md).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from local.kubesim.types import Cause, ResourceType

JSON = dict[str, Any]

IMMUTABLE = "field is immutable"
IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set"
STATEFULSET_FORBIDDEN = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
    "'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)
POD_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)
PVC_FORBIDDEN = (
    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
)
_STATEFULSET_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
                        "persistentVolumeClaimRetentionPolicy", "minReadySeconds")


# ------------------------------------------------------------------------------ Go formatting

def go_string(value: str) -> str:
    """Go's ``%q`` / ``%#v`` of a string (JSON escaping is the same for printable text)."""
    return json.dumps(value, ensure_ascii=False)


def go_strings(values: Any) -> str:
    """``%#v`` of a ``[]string``."""
    if not values:
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_string(str(v)) for v in values) + "}"


def go_string_map(m: Any) -> str:
    """``%#v`` of a ``map[string]string`` (keys sorted, as fmt prints maps)."""
    if m is None:
        return "map[string]string(nil)"
    inner = ", ".join(f"{go_string(str(k))}:{go_string(str(v))}" for k, v in sorted(m.items()))
    return "map[string]string{" + inner + "}"


def go_label_selector(sel: Any) -> str:
    """``%#v`` of a ``metav1.LabelSelector`` (``null`` for a nil pointer), as the apiserver prints it."""
    if not isinstance(sel, dict):
        return '"null"'
    exprs = sel.get("matchExpressions")
    if exprs:
        items = ", ".join(
            "v1.LabelSelectorRequirement{"
            f"Key:{go_string(str(e.get('key', '')))}, Operator:{go_string(str(e.get('operator', '')))}, "
            f"Values:{go_strings(e.get('values'))}" + "}"
            for e in exprs if isinstance(e, dict))
        go_exprs = "[]v1.LabelSelectorRequirement{" + items + "}"
    else:
        go_exprs = "[]v1.LabelSelectorRequirement(nil)"
    labels = sel.get("matchLabels")
    return f"v1.LabelSelector{{MatchLabels:{go_string_map(labels if labels else None)}, MatchExpressions:{go_exprs}}}"


def go_v(value: Any) -> str:
    """Go's ``%+v`` of a decoded JSON value (``map[string]interface{}``: sorted keys, no quotes)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_v(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_v(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        f = float(value)
        if f.is_integer() and abs(f) < 1e21:
            return str(int(f))
        return repr(f)  # shortest round-trip form, like Go's %v of a float64 (1e+21, 1.5e-07)
    return str(value)


def _go_scalar(value: Any) -> str:
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return go_string(value)
    return "{...}"


def invalid(path: str, shown: str, detail: str) -> Cause:
    return Cause("FieldValueInvalid", f"Invalid value: {shown}: {detail}", path)


def forbidden(path: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", f"Forbidden: {detail}", path)


def required(path: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", "Required value" + (f": {detail}" if detail else ""), path)


# ------------------------------------------------------------------------------ equality

def _norm(value: Any) -> Any:
    """Semantic equality as ``apiequality.Semantic.DeepEqual`` sees JSON: nil == empty slice/map."""
    if isinstance(value, dict):
        out = {k: _norm(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


def same(a: Any, b: Any) -> bool:
    return _norm(a) == _norm(b)


def _spec(obj: JSON) -> JSON:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """JSON paths where ``new`` differs from ``old`` (for the short form of a spec diff)."""
    old, new = _norm(old), _norm(new)
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            out.extend(changed_paths(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else k))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out.extend(changed_paths(a, b, f"{prefix}[{i}]"))
        return out
    return [] if old == new else [prefix or "."]


def _short_diff(go_type: str, old: Any, new: Any) -> str:
    """Stand-in for the ``cmp.Diff`` the apiserver appends: the type and the changed fields."""
    paths = changed_paths(old, new)
    lines = "".join(f"  \t~ {p}\n" for p in paths[:20])
    more = f"  \t... // {len(paths) - 20} more changed fields\n" if len(paths) > 20 else ""
    return f"\n  {go_type}{{\n{lines}{more}  }}\n"


# ------------------------------------------------------------------------------ quantities

_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_FACTOR = {None: 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
           "E": 1e18, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}


def quantity(value: Any) -> float | None:
    """A resource.Quantity as a number (None when it does not parse)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = _QUANTITY.match(str(value).strip()) if value is not None else None
    if not m:
        return None
    try:
        return float(m.group(1)) * _FACTOR[m.group(2)]
    except ValueError:
        return None


# ------------------------------------------------------------------------------ prepare

def prepare_for_update(rt: ResourceType, old: JSON, new: JSON) -> None:
    """The registry strategy's fix-ups of the incoming object (in place), before defaulting."""
    if rt.group == "" and rt.kind == "Service":
        _service_prepare(old, new)


def _needs_cluster_ip(svc: JSON) -> bool:
    return _spec(svc).get("type", "ClusterIP") in ("ClusterIP", "NodePort", "LoadBalancer", None)


def _needs_node_port(svc: JSON) -> bool:
    return _spec(svc).get("type") in ("NodePort", "LoadBalancer")


def _service_prepare(old: JSON, new: JSON) -> None:
    ospec = _spec(old)
    nspec = new.get("spec")
    if not isinstance(nspec, dict):
        return
    # patchAllocatedValues: what the client did not specify keeps its allocated value.
    if _needs_cluster_ip(old) and _needs_cluster_ip(new):
        if not nspec.get("clusterIP") and ospec.get("clusterIP"):
            nspec["clusterIP"] = ospec["clusterIP"]
        if not nspec.get("clusterIPs") and ospec.get("clusterIPs"):
            nspec["clusterIPs"] = list(ospec["clusterIPs"])
    if _needs_node_port(old) and _needs_node_port(new):
        old_ports = [p for p in ospec.get("ports") or [] if isinstance(p, dict)]
        new_ports = [p for p in nspec.get("ports") or [] if isinstance(p, dict)]
        used = {p.get("nodePort") for p in old_ports} & {p.get("nodePort") for p in new_ports}
        by_name = {p.get("name", ""): p.get("nodePort") for p in old_ports}
        for p in new_ports:
            if not p.get("nodePort"):
                val = by_name.get(p.get("name", ""))
                if val and val not in used:
                    p["nodePort"] = val
        if ospec.get("healthCheckNodePort") and not nspec.get("healthCheckNodePort") \
                and nspec.get("externalTrafficPolicy") == "Local" and ospec.get("externalTrafficPolicy") == "Local":
            nspec["healthCheckNodePort"] = ospec["healthCheckNodePort"]
    # NormalizeClusterIPs (update): keep the singular and plural fields in step.
    old_ips, new_ips = ospec.get("clusterIPs") or [], nspec.get("clusterIPs") or []
    old_ip, new_ip = ospec.get("clusterIP") or "", nspec.get("clusterIP") or ""
    if old_ips and not new_ips and old_ip == new_ip:
        nspec["clusterIPs"] = list(old_ips)
        new_ips = nspec["clusterIPs"]
    if old_ip != new_ip and list(old_ips) == list(new_ips):
        if old_ip and not new_ip:
            nspec.pop("clusterIPs", None)
        else:
            nspec["clusterIPs"] = [new_ip]


# ------------------------------------------------------------------------------ validate

def validate_update(rt: ResourceType, old: JSON, new: JSON) -> list[Cause]:
    """The 422 causes of changing ``old`` into ``new`` (both defaulted); [] when allowed."""
    fn = _BY_KIND.get((rt.group, rt.kind))
    return fn(old, new) if fn is not None else []


def _selector_immutable(old: JSON, new: JSON) -> list[Cause]:
    """Deployment / ReplicaSet / DaemonSet (apps/v1): ``spec.selector`` is immutable."""
    o, n = _spec(old).get("selector"), _spec(new).get("selector")
    if same(o, n):
        return []
    return [invalid("spec.selector", go_label_selector(n), IMMUTABLE)]


def _statefulset(old: JSON, new: JSON) -> list[Cause]:
    o = {k: v for k, v in _spec(old).items() if k not in _STATEFULSET_MUTABLE}
    n = {k: v for k, v in _spec(new).items() if k not in _STATEFULSET_MUTABLE}
    return [] if same(o, n) else [forbidden("spec", STATEFULSET_FORBIDDEN)]


def _job(old: JSON, new: JSON) -> list[Cause]:
    ospec, nspec = _spec(old), _spec(new)
    causes: list[Cause] = []
    nsel = nspec.get("selector")
    labels = ((nspec.get("template") or {}).get("metadata") or {}).get("labels")
    if nsel is None:
        causes.append(required("spec.selector"))
    match = (nsel.get("matchLabels") or {}) if isinstance(nsel, dict) else {}
    # A nil selector is labels.Nothing(): it matches no labels at all.
    if nsel is None or not all((labels or {}).get(k) == v for k, v in match.items()):
        causes.append(invalid("spec.template.metadata.labels", go_string_map(labels),
                              "`selector` does not match template `labels`"))
    if nspec.get("completionMode", "NonIndexed") != "Indexed" and ospec.get("completions") != nspec.get("completions"):
        causes.append(invalid("spec.completions", _go_scalar(nspec.get("completions")), IMMUTABLE))
    if not same(ospec.get("selector"), nsel):
        causes.append(invalid("spec.selector", go_label_selector(nsel), IMMUTABLE))
    otpl = copy.deepcopy(ospec.get("template") or {})
    ntpl = nspec.get("template") or {}
    suspended_never_started = bool(ospec.get("suspend")) and not (old.get("status") or {}).get("startTime")
    if suspended_never_started:
        # Mutable scheduling directives of a suspended Job that never started.
        ometa, nmeta = otpl.setdefault("metadata", {}), ntpl.get("metadata") or {}
        for key in ("labels", "annotations"):
            ometa[key] = nmeta.get(key)
        ops, nps = otpl.setdefault("spec", {}), ntpl.get("spec") or {}
        for key in ("nodeSelector", "tolerations", "schedulingGates", "affinity"):
            ops[key] = nps.get(key)
    if not same(otpl, ntpl):
        causes.append(invalid("spec.template", "core.PodTemplateSpec{...}", IMMUTABLE))
    for key, go_type in (("completionMode", None), ("podFailurePolicy", "batch.PodFailurePolicy"),
                         ("backoffLimitPerIndex", None), ("managedBy", None), ("successPolicy", "batch.SuccessPolicy")):
        if not same(ospec.get(key), nspec.get(key)):
            shown = f"&{go_type}{{...}}" if go_type and nspec.get(key) is not None else _go_scalar(nspec.get(key))
            causes.append(invalid(f"spec.{key}", shown, IMMUTABLE))
    return causes


def _configmap(old: JSON, new: JSON) -> list[Cause]:
    causes: list[Cause] = []
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            causes.append(forbidden("immutable", IMMUTABLE_WHEN_SET))
        if not same(old.get("data"), new.get("data")):
            causes.append(forbidden("data", IMMUTABLE_WHEN_SET))
        if not same(old.get("binaryData"), new.get("binaryData")):
            causes.append(forbidden("binaryData", IMMUTABLE_WHEN_SET))
    return causes


def _secret(old: JSON, new: JSON) -> list[Cause]:
    causes: list[Cause] = []
    if (old.get("type") or "Opaque") != (new.get("type") or "Opaque"):
        causes.append(invalid("type", go_string(str(new.get("type") or "")), IMMUTABLE))
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            causes.append(forbidden("immutable", IMMUTABLE_WHEN_SET))
        # stringData was already folded into data (as the apiserver does before validation).
        if not same(old.get("data"), new.get("data")):
            causes.append(forbidden("data", IMMUTABLE_WHEN_SET))
    return causes


def _service(old: JSON, new: JSON) -> list[Cause]:
    """validateUpgradeDowngradeClusterIPs (single-stack subset)."""
    ospec, nspec = _spec(old), _spec(new)
    if "ExternalName" in (ospec.get("type"), nspec.get("type")):
        return []
    if ospec.get("clusterIP") == "None" and nspec.get("clusterIP") == "None":
        return []
    old_ips = list(ospec.get("clusterIPs") or [])
    new_ips = list(nspec.get("clusterIPs") or [])
    shown = go_strings(new_ips)
    causes: list[Cause] = []
    if len(old_ips) == len(new_ips):
        for i, ip in enumerate(old_ips):
            if ip != new_ips[i]:
                causes.append(invalid(f"spec.clusterIPs[{i}]", shown, "may not change once set"))
    elif len(old_ips) > len(new_ips):
        if not new_ips:
            causes.append(invalid("spec.clusterIPs[0]", shown, "primary clusterIP can not be unset"))
        elif new_ips[0] != old_ips[0]:
            causes.append(invalid("spec.clusterIPs[0]", shown, "may not change once set"))
        if len(new_ips) == 1 and nspec.get("ipFamilyPolicy") != "SingleStack":
            causes.append(invalid("spec.clusterIPs[0]", shown,
                                  "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP"))
    elif old_ips and new_ips[0] != old_ips[0]:
        causes.append(invalid("spec.clusterIPs[0]", shown, "may not change once set"))
    return causes


def _pvc(old: JSON, new: JSON) -> list[Cause]:
    ospec, nspec = copy.deepcopy(_spec(old)), copy.deepcopy(_spec(new))
    if not ospec.get("volumeName"):
        ospec["volumeName"] = nspec.get("volumeName")  # bound once by the PV controller
    if ospec.get("storageClassName") is None and nspec.get("storageClassName"):
        ospec["storageClassName"] = nspec["storageClassName"]  # retroactive default StorageClass
    bound = (new.get("status") or {}).get("phase") == "Bound"
    old_size = quantity(((ospec.get("resources") or {}).get("requests") or {}).get("storage"))
    new_size = quantity(((nspec.get("resources") or {}).get("requests") or {}).get("storage"))
    if bound:
        nreq = (nspec.get("resources") or {}).get("requests")
        if isinstance(nreq, dict):
            nreq["storage"] = ((ospec.get("resources") or {}).get("requests") or {}).get("storage")
        ospec["volumeAttributesClassName"] = nspec.get("volumeAttributesClassName")
    causes: list[Cause] = []
    if not same(ospec, nspec):
        causes.append(forbidden("spec", PVC_FORBIDDEN + _short_diff("core.PersistentVolumeClaimSpec", ospec, nspec)))
    if old_size is not None and new_size is not None and new_size < old_size:
        # RecoverVolumeExpansionFailure (GA): down to just above status.capacity is allowed.
        capacity = quantity(((old.get("status") or {}).get("capacity") or {}).get("storage")) or 0.0
        if new_size <= capacity:
            causes.append(forbidden("spec.resources.requests.storage", "field can not be less than status.capacity"))
    return causes


def _tolerations_added_only(old: list[Any], new: list[Any]) -> bool:
    remaining = [_norm(t) for t in new]
    for t in old:
        nt = _norm(t)
        if nt not in remaining:
            return False
        remaining.remove(nt)
    return True


def _pod(old: JSON, new: JSON) -> list[Cause]:
    ospec, nspec = _spec(old), _spec(new)
    causes: list[Cause] = []
    for field_name in ("containers", "initContainers"):
        oc = [c for c in ospec.get(field_name) or [] if isinstance(c, dict)]
        nc = [c for c in nspec.get(field_name) or [] if isinstance(c, dict)]
        if len(oc) != len(nc):
            return [forbidden(f"spec.{field_name}", "pod updates may not add or remove containers")]
        for i, c in enumerate(nc):
            image = c.get("image") or ""
            if not image:
                causes.append(required(f"spec.{field_name}[{i}].image"))
            elif image.strip() != image:
                causes.append(invalid(f"spec.{field_name}[{i}].image", go_string(image),
                                      "must not have leading or trailing whitespace"))
    munged = copy.deepcopy(nspec)
    for field_name in ("containers", "initContainers"):
        for i, c in enumerate(munged.get(field_name) or []):
            if isinstance(c, dict):
                c["image"] = (ospec.get(field_name) or [])[i].get("image")
    munged["activeDeadlineSeconds"] = ospec.get("activeDeadlineSeconds")
    if _tolerations_added_only(ospec.get("tolerations") or [], nspec.get("tolerations") or []):
        munged["tolerations"] = ospec.get("tolerations")
    ograce = ospec.get("terminationGracePeriodSeconds")
    if isinstance(ograce, int) and ograce < 0 and nspec.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = ograce
    ogates = [_norm(g) for g in ospec.get("schedulingGates") or []]
    if all(_norm(g) in ogates for g in nspec.get("schedulingGates") or []):
        munged["schedulingGates"] = ospec.get("schedulingGates")  # gates may only be removed
    if not same(munged, ospec):
        causes.append(forbidden("spec", POD_FORBIDDEN + _short_diff("core.PodSpec", ospec, munged)))
    return causes


_BY_KIND = {
    ("apps", "Deployment"): _selector_immutable,
    ("apps", "ReplicaSet"): _selector_immutable,
    ("apps", "DaemonSet"): _selector_immutable,
    ("apps", "StatefulSet"): _statefulset,
    ("batch", "Job"): _job,
    ("", "ConfigMap"): _configmap,
    ("", "Secret"): _secret,
    ("", "Service"): _service,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Pod"): _pod,
}
