"""Kubernetes ``Status`` error bodies, shaped exactly like the real API server's."""

from __future__ import annotations

from typing import Any

from local.kubesim.types import Cause, ResourceType


class ApiError(Exception):
    """An API failure answered as a ``Status`` object with the given HTTP code."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:
            del body["reason"]  # StatusReasonUnknown is "" and omitted (omitempty)
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(rt: ResourceType | None, name: str, *, kind: str | None = None, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if rt is not None:
        if rt.group:
            details["group"] = rt.group
        details["kind"] = kind if kind is not None else rt.plural
    details.update({k: v for k, v in extra.items() if v})
    return details


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.group_resource} "{name}" not found', details=_details(rt, name))


def namespace_not_found(namespace: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'namespaces "{namespace}" not found',
        details={"name": namespace, "kind": "namespaces"},
    )


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rt.group_resource} "{name}" already exists', details=_details(rt, name))


def conflict(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.group_resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        details=_details(rt, name),
    )


def invalid(rt: ResourceType, name: str, causes: list[Cause]) -> ApiError:
    """422 Invalid: ``Deployment.apps "web" is invalid: <field>: <error>`` with causes."""
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    if len(parts) == 1:
        summary = parts[0]
    else:
        summary = "[" + ", ".join(parts) + "]"
    return ApiError(
        422,
        "Invalid",
        f'{rt.group_kind} "{name}" is invalid: {summary}',
        details=_details(rt, name, kind=rt.kind, causes=[c.to_dict() for c in causes]),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


class DecodeError(ApiError):
    """A body that does not decode into the kind (400); ``detail`` is the decoder's own text.

    A JSON / merge / strategic merge patch whose result does not decode is answered as
    :func:`patch_invalid` instead (the store converts it)."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(400, "BadRequest", message)
        self.detail = detail


def patch_invalid(shown: str, detail: str) -> ApiError:
    """The patch handler's 422 for a patched object that does not decode: NewInvalid with an
    empty GroupKind and name (hence the message's leading space) and the cause ``patch``."""
    cause = Cause("FieldValueInvalid", f"Invalid value: {shown}: {detail}", "patch")
    return ApiError(422, "Invalid", f' "" is invalid: patch: {cause.message}',
                    details={"causes": [cause.to_dict()]})


def forbidden(message: str, rt: ResourceType | None = None, name: str = "") -> ApiError:
    return ApiError(403, "Forbidden", message, details=_details(rt, name) if rt else None)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml; got "{content_type}"')


def not_implemented(what: str) -> ApiError:
    return ApiError(501, "NotImplemented", f"kubesim does not implement {what}")


def method_not_allowed(method: str, path: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource ({method} {path})")


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def apply_conflicts(rt: ResourceType, name: str, conflicts: list[tuple[str, str, str]]) -> ApiError:
    """409 Conflict for server-side apply. ``conflicts``: (manager, apiVersion, field path '.spec.replicas')."""
    if len(conflicts) == 1:
        manager, api_version, path = conflicts[0]
        text = f'Apply failed with 1 conflict: conflict with "{manager}" using {api_version}: {path}'
    else:
        lines = "\n".join(f'- conflict with "{m}" using {v}: {p}' for m, v, p in conflicts)
        text = f"Apply failed with {len(conflicts)} conflicts: conflicts with \"{conflicts[0][0]}\" using {conflicts[0][1]}:\n{lines}"
    causes = [
        {"reason": "FieldManagerConflict", "message": f'conflict with "{m}" using {v}', "field": p}
        for m, v, p in conflicts
    ]
    return ApiError(409, "Conflict", text, details=_details(rt, name, causes=causes))
