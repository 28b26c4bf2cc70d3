"""What ``GET /openapi.json`` says beyond what Powertools derives from the routes: the answer
shapes (pydantic models), the status codes every route may answer, and the request bodies.

Bodies are read by the service itself (JSON or YAML, bounded, every problem named: see
:func:`gitferry.service.parse_document`), not by Powertools' validation, so they are described
here and added to the generated document by :func:`add_request_bodies`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gitferry.model import Application

__all__ = ["ERROR_CODES", "AppCounts", "ErrorBody", "add_request_bodies", "responses"]


class ErrorBody(BaseModel):
    """Every 4xx / 5xx answer: a message for a person, and for a 400 the fields at fault."""

    model_config = ConfigDict(extra="allow")

    message: str
    problems: list[str] | None = Field(default=None, description="one `field: reason` line per problem (400)")


class Page(BaseModel):
    """A page of a list: pass ``nextCursor`` back as ``cursor`` for the next one."""

    model_config = ConfigDict(extra="allow")

    items: list[dict[str, Any]]
    nextCursor: str | None = Field(default=None, description="absent on the last page")


class AppCounts(BaseModel):
    """``GET /api/v1/application-counts``: every app the filters match, per status."""

    total: int
    sync: dict[str, int] = Field(description="apps per sync status (Synced, OutOfSync, Unknown), 0 included")
    health: dict[str, int] = Field(description="apps per health status (Healthy ... Unknown), 0 included")


class OperationAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    app: str
    operation: str
    phase: str = Field(description="Failed (ended now) or Terminating (the running apply stops at its next wave)")
    message: str


class CostEstimate(BaseModel):
    """``GET /api/v1/applications/{name}/cost``: the app's own month, from gitferry.cost."""

    currency: str = Field(description="always USD")
    monthly: float = Field(description="the app's own cost per month: its drift checks and its metrics")
    breakdown: dict[str, float] = Field(description="lambda, sqs, dynamodb, s3, cloudwatch")
    driftCheckSeconds: int
    pollSeconds: int
    driftChecksPerMonth: int
    resources: int = Field(description="objects the app manages (status.resourcesSummary.total)")
    basis: str = Field(description="where the per-check numbers come from and what is left out")


class Accepted(BaseModel):
    """A queued request (sync, refresh, rollback, cascading delete)."""

    model_config = ConfigDict(extra="allow")

    app: str


ERROR_CODES: dict[int, str] = {
    400: "invalid input: `problems` names every field at fault",
    401: "missing or invalid bearer token",
    403: "the token may not do this",
    404: "no such application, cluster, repository or route",
    409: "conflict: already exists, changed meanwhile, an operation is running / none is running",
    413: "request body larger than 1 MiB",
    422: "well-formed but impossible (a revision the repository does not have, nothing compared yet)",
}


def responses(ok: int, description: str, model: type[BaseModel] | None = None,
              also: dict[int, str] | None = None) -> dict[int, Any]:
    """The ``responses`` of a route: its success, then every error code a caller may meet."""
    content = {"application/json": {"model": model}} if model is not None else {
        "application/json": {"schema": {"type": "object"}}}
    out: dict[int, Any] = {ok: {"description": description, "content": content}}
    for code, text in {**ERROR_CODES, 502: "a repository or cluster gitferry talks to failed", **(also or {})}.items():
        out[code] = {"description": text, "content": {"application/json": {"model": ErrorBody}}}
    return out


_CLUSTER = {"type": "object", "required": ["name", "kubeconfig"], "properties": {
    "name": {"type": "string", "description": "DNS-1123 subdomain"},
    "kubeconfig": {"type": ["string", "object"], "description": "kubeconfig document (text or mapping)"},
    "server": {"type": "string", "description": "default: the kubeconfig's current cluster"},
    "namespace": {"type": "string"}}}
_REPOSITORY = {"type": "object", "required": ["url"], "properties": {
    "url": {"type": "string"}, "name": {"type": "string"}, "username": {"type": "string"},
    "password": {"type": "string", "writeOnly": True}, "token": {"type": "string", "writeOnly": True}}}
_SYNC = {"type": "object", "properties": {
    "revision": {"type": "string"}, "prune": {"type": "boolean"}, "dryRun": {"type": "boolean"},
    "syncOptions": {"type": "array", "items": {"type": "string"}},
    "resources": {"type": "array", "items": {"type": "object", "required": ["kind", "name"], "properties": {
        k: {"type": "string"} for k in ("group", "kind", "namespace", "name")}}}}}
_PATCH = {"type": "object", "description": "JSON merge patch (RFC 7386) of spec and metadata labels / annotations "
          "/ finalizers; metadata.resourceVersion (from a GET) makes it conditional",
          "properties": {"spec": {"type": "object"}, "metadata": {"type": "object"}}}


def _application_schema() -> dict[str, Any]:
    return Application.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")


def _body(schema: dict[str, Any], description: str, required: bool = True) -> dict[str, Any]:
    return {"required": required, "description": description, "content": {
        "application/json": {"schema": schema},
        "application/yaml": {"schema": {"type": "string", "description": "the same document as YAML"}}}}


def add_request_bodies(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the request bodies of the routes that take one to a generated OpenAPI document."""
    app_schema = _application_schema()
    defs = app_schema.pop("$defs", {})
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    components.update(defs)
    components["Application"] = app_schema
    application = {"$ref": "#/components/schemas/Application"}
    bodies = {
        ("/api/v1/applications", "post"): _body(application, "an Argo CD Application manifest"),
        ("/api/v1/applications/{name}", "put"): _body(application, "the whole Application manifest (same name); "
                                                      "metadata.resourceVersion from a GET makes it conditional"),
        ("/api/v1/applications/{name}", "patch"): {"required": True, "content": {
            "application/merge-patch+json": {"schema": _PATCH}, "application/json": {"schema": _PATCH}}},
        ("/api/v1/applications/{name}/sync", "post"): _body(_SYNC, "Argo CD's sync request; every field optional",
                                                            required=False),
        ("/api/v1/clusters", "post"): _body(_CLUSTER, "a cluster and its kubeconfig (kept in Secrets Manager)"),
        ("/api/v1/repositories", "post"): _body(_REPOSITORY, "a repository; credentials go to Secrets Manager"),
    }
    for (path, method), body in bodies.items():
        operation = (doc.get("paths") or {}).get(path, {}).get(method)
        if operation is not None:
            operation["requestBody"] = body
    return doc
