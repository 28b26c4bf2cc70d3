"""api: the management API (applications, clusters, repositories) and the web console's static files.

``GET /openapi.json`` publishes the API's OpenAPI document (Powertools' OpenAPI support, plus
the request bodies of gitferry.apidoc). It needs no token: it holds the routes and shapes, which
are public (this repository), never data; every route it lists needs the bearer token.
"""

import base64
import json
import os
from functools import cache
from pathlib import Path as FilePath
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from gitferry import apidoc, cost
from gitferry.apidoc import Accepted, AppCounts, CostEstimate, OperationAnswer, Page, responses
from gitferry.console import Console, is_page, stage_prefix
from gitferry.console import Page as StaticPage
from gitferry.errors import (
    ConflictError,
    ForbiddenError,
    GitError,
    HelmRepoError,
    InvalidSpecError,
    LeaseHeldError,
    NotFoundError,
    PayloadTooLargeError,
    RevisionNotFoundError,
    UnauthorizedError,
    UnprocessableError,
)
from gitferry.kube import KubeError
from gitferry.model import APP_NAME_MAX, format_validation_error
from gitferry.pipeline import Engine
from gitferry.service import MAX_BODY_BYTES, Service
from pydantic import ValidationError

logger = Logger()
app = APIGatewayRestResolver(enable_validation=True)
#: paths served without the token (static, no data): these and the console's pages and assets
PUBLIC_PATHS = ("/openapi.json",)
#: the console's build output (``make dev`` / ``make package`` write it; gitignored)
CONSOLE = Console(FilePath(__file__).resolve().parent / "console")
APP_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
AppName = Annotated[str, Path(description="the application's name", max_length=APP_NAME_MAX, pattern=APP_NAME)]
OptionalText = Annotated[str | None, Query(max_length=1024)]


@cache
def service() -> Service:
    return Service(Engine.from_env())


def caller() -> str:
    """Who is asking, as the audit trail records it: ``api:<token name>``, or ``api:<principal
    ARN>`` when API Gateway authenticated the request with IAM (ApiAuth=AWS_IAM)."""
    return str(app.context["principal"].actor)


def iam_auth() -> bool:
    """ApiAuth=AWS_IAM: API Gateway verified a SigV4 signature before the handler runs."""
    return os.environ.get("API_AUTH", "NONE") == "AWS_IAM"


def _error(status: int, message: str, **extra: object) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body={"message": message, **extra})


def require_token(router: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
    """Every route but the static ones (PUBLIC_PATHS, the console's pages and assets) needs a
    caller: a bearer token (named, with a role: tokens.py), or the IAM identity API Gateway
    authenticated. A read-only caller gets 403 on anything but reads and refresh."""
    event = router.current_event
    if event.path not in PUBLIC_PATHS and not is_page(event.path):
        identity = event.request_context.identity
        principal = service().authorize(event.headers.get("Authorization"),  # case-insensitive
                                        iam_arn=identity.user_arn if identity else None, iam=iam_auth())
        principal.check(event.http_method, event.path)
        router.append_context(principal=principal)
    return next_middleware(router)


def bounded_body(router: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
    """A caller's body mistake is a 4xx, never a 5xx: over MAX_BODY_BYTES is 413, a body that
    is not UTF-8 text is 400 (routes then read ``decoded_body`` safely)."""
    event = router.current_event
    raw = event.body or ""
    size = (len(raw) * 3) // 4 if event.is_base64_encoded else len(raw.encode("utf-8", errors="surrogatepass"))
    if size > MAX_BODY_BYTES:
        return _error(413, f"request body larger than the {MAX_BODY_BYTES} byte limit")
    if event.is_base64_encoded and raw:
        try:
            base64.b64decode(raw, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            where = f" (invalid byte at offset {exc.start})" if isinstance(exc, UnicodeDecodeError) else ""
            return _error(400, "invalid request", problems=[f"body: not UTF-8 text{where}"])
    return next_middleware(router)


app.use(middlewares=[require_token, bounded_body])


@app.exception_handler(UnauthorizedError)
def unauthorized(exc: UnauthorizedError) -> Response:
    return Response(status_code=401, content_type=content_types.APPLICATION_JSON,
                    body={"message": str(exc)}, headers={"WWW-Authenticate": "Bearer"})


@app.exception_handler(ForbiddenError)
def forbidden(exc: ForbiddenError) -> Response:
    return _error(403, str(exc))


@app.exception_handler(InvalidSpecError)
def invalid(exc: InvalidSpecError) -> Response:
    return _error(400, exc.subject, problems=exc.problems)


@app.exception_handler(PayloadTooLargeError)
def too_large(exc: PayloadTooLargeError) -> Response:
    return _error(413, str(exc))


@app.exception_handler(ValidationError)
def invalid_model(exc: ValidationError) -> Response:
    return _error(400, "invalid request", problems=format_validation_error(exc))


@app.exception_handler(RequestValidationError)
def invalid_parameters(exc: RequestValidationError) -> Response:
    """A path or query parameter the OpenAPI document refuses: 400 naming it (Powertools' own
    answer would be a 422 without the reason)."""
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("path", "query", "body")]
        problems.append(f"{'.'.join(loc) or 'request'}: {str(err.get('msg', 'invalid'))[:300]}")
    return _error(400, "invalid request", problems=problems)


@app.exception_handler(NotFoundError)
def not_found(exc: NotFoundError) -> Response:
    return _error(404, str(exc))


@app.exception_handler(ConflictError)
def conflict(exc: ConflictError) -> Response:
    return _error(409, str(exc))


@app.exception_handler(LeaseHeldError)
def busy(exc: LeaseHeldError) -> Response:
    return _error(409, str(exc))


@app.exception_handler([UnprocessableError, RevisionNotFoundError])
def unprocessable(exc: Exception) -> Response:
    return _error(422, str(exc))


@app.exception_handler([GitError, HelmRepoError, KubeError])
def git_error(exc: Exception) -> Response:
    return _error(502, str(exc))


def _json(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _query() -> dict[str, str]:
    return dict(app.current_event.query_string_parameters or {})


APPS, CLUSTERS, REPOS, AUDIT = ["applications"], ["clusters"], ["repositories"], ["audit"]


def _static(page: StaticPage) -> Response[Any]:
    return Response(status_code=page.status, content_type=page.content_type, body=page.body, headers=page.headers)


@app.get("/", include_in_schema=False)
@app.get("/applications", include_in_schema=False)
@app.get("/applications/<name>", include_in_schema=False)
@app.get("/repositories", include_in_schema=False)
@app.get("/clusters", include_in_schema=False)
def console_page(name: str | None = None) -> Response[Any]:
    """Every console route answers index.html (deep links); the page reads data with the token."""
    event = app.current_event
    return _static(CONSOLE.page(stage_prefix(event.request_context.path, event.path)))


@app.get("/assets/<file>", include_in_schema=False)
def console_asset(file: str) -> Response[Any]:
    return _static(CONSOLE.asset(app.current_event.path))


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[Any]:
    return _json(200, openapi_document(_base_path()))


def _base_path() -> str:
    """The stage prefix the caller used (``/Prod`` on an execute-api URL, none on a custom domain)."""
    event = app.current_event
    full = str((event.raw_event.get("requestContext") or {}).get("path") or event.path)
    return full[: -len(event.path)] if full.endswith(event.path) and full != event.path else ""


@cache
def _generated() -> str:
    from aws_lambda_powertools.event_handler.openapi.models import Server

    return app.get_openapi_json_schema(
        title="gitferry", version="v1", servers=[Server(url="/")],
        description="GitOps continuous delivery for Kubernetes on AWS Lambda: Argo CD Applications, clusters, "
                    "repositories. Send `Authorization: Bearer <token>`.",
        security_schemes={"bearerAuth": HTTPBearer()}, security=[{"bearerAuth": []}])


def openapi_document(base: str) -> dict[str, Any]:
    doc = apidoc.add_request_bodies(json.loads(_generated()))
    doc["servers"] = [{"url": base or "/"}]
    return doc


@app.get("/api/v1/applications", tags=APPS, summary="List applications (filtered, in name order, paged)",
         responses=responses(200, "one page of applications", Page))
def list_apps(project: OptionalText = None, repo: OptionalText = None, cluster: OptionalText = None,
              namespace: OptionalText = None,
              sync: Annotated[str | None, Query(description="Synced | OutOfSync | Unknown")] = None,
              health: Annotated[str | None, Query(description="Healthy | Progressing | Degraded | ...")] = None,
              selector: Annotated[str | None, Query(max_length=4096,
                                                    description="label selector, e.g. team=web,tier!=db")] = None,
              search: Annotated[str | None, Query(max_length=1024, description="part of the name")] = None,
              limit: Annotated[str | None, Query(description="1 to 1000 (default 500)")] = None,
              cursor: Annotated[str | None, Query(description="nextCursor of the previous page")] = None,
              ) -> dict[str, Any]:
    return service().list_apps(_query())


@app.get("/api/v1/application-counts", tags=APPS, summary="Applications per sync and health status (the whole fleet)",
         responses=responses(200, "total, sync and health counts of every app the filters match", AppCounts))
def count_apps(project: OptionalText = None, repo: OptionalText = None, cluster: OptionalText = None,
               namespace: OptionalText = None,
               sync: Annotated[str | None, Query(description="Synced | OutOfSync | Unknown")] = None,
               health: Annotated[str | None, Query(description="Healthy | Progressing | Degraded | ...")] = None,
               selector: Annotated[str | None, Query(max_length=4096, description="label selector")] = None,
               search: Annotated[str | None, Query(max_length=1024, description="part of the name")] = None,
               ) -> dict[str, Any]:
    return service().count_apps(_query())


@app.post("/api/v1/applications", tags=APPS, summary="Register an Application (JSON or YAML manifest)",
          responses=responses(201, "the registered application"))
def create_app(upsert: Annotated[str | None, Query(description="true: replace one of the same name")] = None
               ) -> Response[Any]:
    return _json(201, service().create_app(app.current_event.decoded_body, upsert=_upsert(), caller=caller()))


@app.get("/api/v1/applications/<name>", tags=APPS, summary="An application: spec and status",
         responses=responses(200, "the Application with its status"))
def get_app(name: AppName) -> dict[str, Any]:
    return service().get_app(name)


@app.get("/api/v1/applications/<name>/cost", tags=APPS, summary="What an application costs per month (estimate)",
         responses=responses(200, "the app's own month at AWS list prices (gitferry.cost)", CostEstimate))
def app_cost(name: AppName) -> dict[str, Any]:
    summary = (service().get_app(name).get("status") or {}).get("resourcesSummary") or {}
    settings = service().engine.settings
    return cost.app_estimate(drift_check_seconds=settings.drift_check_seconds, resources=int(summary.get("total") or 0),
                             metrics_per_app=cost.METRICS_PER_APP[settings.per_app_metrics])


@app.put("/api/v1/applications/<name>", tags=APPS, summary="Replace an application's manifest",
         responses=responses(200, "the updated Application"))
def update_app(name: AppName) -> dict[str, Any]:
    return service().update_app(name, app.current_event.decoded_body, caller(), patch=False)


@app.patch("/api/v1/applications/<name>", tags=APPS, summary="JSON merge patch of an application's spec",
           responses=responses(200, "the updated Application"))
def patch_app(name: AppName) -> dict[str, Any]:
    return service().update_app(name, app.current_event.decoded_body, caller(), patch=True)


@app.delete("/api/v1/applications/<name>", tags=APPS, summary="Delete an application (cascade by default)",
            responses={**responses(200, "forgotten (cascade=false)"), 202: {"description": "cascading delete queued"}})
def delete_app(name: AppName, cascade: OptionalText = None, propagationPolicy: OptionalText = None) -> Response[Any]:
    status, body = service().delete_app(name, _query(), caller())
    return _json(status, body)


@app.post("/api/v1/applications/<name>/sync", tags=APPS, summary="Sync (Argo CD's sync request)",
          responses=responses(202, "operation queued", Accepted))
def sync(name: AppName) -> Response[Any]:
    return _json(202, service().sync(name, app.current_event.decoded_body, caller()))


@app.delete("/api/v1/applications/<name>/operation", tags=APPS,
            summary="Terminate the running operation (argocd app terminate-op)",
            responses={**responses(200, "the operation was waiting and is ended now (Failed)", OperationAnswer),
                       202: {"description": "the running apply stops at its next wave boundary (Terminating)",
                             "content": {"application/json": {"model": OperationAnswer}}}})
def terminate_operation(name: AppName) -> Response[Any]:
    status, body = service().terminate_operation(name, caller())
    return _json(status, body)


@app.post("/api/v1/applications/<name>/refresh", tags=APPS, summary="Compare with Git and the cluster now",
          responses=responses(202, "refresh queued", Accepted))
def refresh(name: AppName, hard: Annotated[str | None, Query(
        description="true: Argo CD's hard refresh, rendered again bypassing the render cache")] = None
            ) -> Response[Any]:
    value = (hard or "false").lower()
    if value not in ("true", "false"):
        raise InvalidSpecError([f"hard: {hard[:40]!r} is not true or false"], "invalid refresh request")
    return _json(202, service().refresh(name, caller(), hard=value == "true"))


@app.post("/api/v1/applications/<name>/rollback/<history_id>", tags=APPS, summary="Re-apply a history entry",
          responses=responses(202, "rollback queued", Accepted))
def rollback(name: AppName, history_id: Annotated[str, Path(max_length=20)]) -> Response[Any]:
    if not history_id.isdigit():
        raise InvalidSpecError([f"id: {history_id!r} is not a history id"], "invalid rollback")
    return _json(202, service().rollback(name, int(history_id), caller()))


@app.get("/api/v1/applications/<name>/history", tags=APPS, summary="Recorded syncs",
         responses=responses(200, "history entries, oldest first", Page))
def history(name: AppName) -> dict[str, Any]:
    return service().history(name)


@app.get("/api/v1/applications/<name>/events", tags=APPS, summary="The application's audit events, newest first",
         responses=responses(200, "one page of events", Page))
def events(name: AppName, limit: OptionalText = None, cursor: OptionalText = None) -> dict[str, Any]:
    return service().events(name, limit, cursor)


@app.get("/api/v1/applications/<name>/resources", tags=APPS, summary="The resource list, paged",
         responses=responses(200, "one page of resources", Page))
def resources(name: AppName, limit: OptionalText = None, cursor: OptionalText = None) -> dict[str, Any]:
    return service().resources(name, limit, cursor)


@app.get("/api/v1/applications/<name>/sync-results", tags=APPS, summary="The last operation's results, paged",
         responses=responses(200, "one page of results", Page))
def sync_results(name: AppName, limit: OptionalText = None, cursor: OptionalText = None) -> dict[str, Any]:
    return service().sync_results(name, limit, cursor)


@app.get("/api/v1/applications/<name>/diff", tags=APPS, summary="argocd app diff: live vs Git per resource",
         responses=responses(200, "per resource its status and a unified diff"))
def diff(name: AppName) -> dict[str, Any]:
    return service().diff(name)


@app.get("/api/v1/applications/<name>/resource-tree", tags=APPS, summary="Managed objects and live descendants",
         responses=responses(200, "Argo CD's ApplicationTree shape"))
def resource_tree(name: AppName) -> dict[str, Any]:
    return service().resource_tree(name)


@app.get("/api/v1/audit", tags=AUDIT, summary="The audit trail of a UTC day, newest first",
         responses=responses(200, "one page of events", Page))
def audit(date: OptionalText = None, limit: OptionalText = None, cursor: OptionalText = None) -> dict[str, Any]:
    return service().audit_day(date, limit, cursor)


@app.get("/api/v1/clusters", tags=CLUSTERS, summary="Registered clusters",
         responses=responses(200, "clusters (never their kubeconfigs)", Page))
def list_clusters() -> dict[str, Any]:
    return service().list_clusters()


def _upsert() -> bool:
    value = _query().get("upsert", "false")
    if value not in ("true", "false"):
        raise InvalidSpecError([f"upsert: {value[:40]!r} is not true or false"], "invalid request")
    return value == "true"


@app.post("/api/v1/clusters", tags=CLUSTERS, summary="Register a cluster from a kubeconfig",
          responses=responses(201, "the registered cluster"))
def register_cluster(upsert: OptionalText = None) -> Response[Any]:
    return _json(201, service().register_cluster(app.current_event.decoded_body, caller(), upsert=_upsert()))


@app.get("/api/v1/clusters/<name>", tags=CLUSTERS, summary="A cluster and the apps deploying to it",
         responses=responses(200, "the cluster"))
def get_cluster(name: Annotated[str, Path(max_length=253)]) -> dict[str, Any]:
    return service().get_cluster(name)


ClusterName = Annotated[str, Path(max_length=253)]


@app.put("/api/v1/clusters/<name>", tags=CLUSTERS, summary="Replace a cluster's registration (connects again)",
         responses=responses(200, "the updated cluster"))
def replace_cluster(name: ClusterName) -> dict[str, Any]:
    return service().update_cluster(name, app.current_event.decoded_body, caller(), merge=False)


@app.patch("/api/v1/clusters/<name>", tags=CLUSTERS, summary="JSON merge patch of a cluster's registration",
           responses=responses(200, "the updated cluster"))
def patch_cluster(name: ClusterName) -> dict[str, Any]:
    return service().update_cluster(name, app.current_event.decoded_body, caller(), merge=True)


@app.delete("/api/v1/clusters/<name>", tags=CLUSTERS, summary="Forget a cluster (force=true while in use)",
            responses=responses(200, "forgotten"))
def delete_cluster(name: Annotated[str, Path(max_length=253)], force: OptionalText = None) -> dict[str, Any]:
    return service().delete_cluster(name, _query(), caller())


@app.get("/api/v1/repositories", tags=REPOS, summary="Registered repositories (or one, by ?url=)",
         responses=responses(200, "repositories (never their credentials)"))
def list_repositories(url: OptionalText = None) -> dict[str, Any]:
    return service().get_repository(url) if url else service().list_repositories()


@app.delete("/api/v1/repositories", tags=REPOS, summary="Forget a repository by ?url=",
            responses=responses(200, "forgotten"))
def delete_repository_by_url(url: OptionalText = None, force: OptionalText = None) -> dict[str, Any]:
    query = _query()
    url = query.pop("url", None)
    if not url:
        raise InvalidSpecError(["url: query parameter required (or DELETE /api/v1/repositories/{name})"],
                               "invalid delete request")
    return service().delete_repository(url, query, caller())


@app.post("/api/v1/repositories", tags=REPOS, summary="Register a repository and its credentials",
          responses=responses(201, "the registered repository"))
def register_repository(upsert: OptionalText = None) -> Response[Any]:
    return _json(201, service().register_repository(app.current_event.decoded_body, caller(), upsert=_upsert()))


def _repository_url() -> str:
    url = (app.current_event.query_string_parameters or {}).get("url")
    if not url:
        raise InvalidSpecError(["url: query parameter required (or /api/v1/repositories/{name})"], "invalid request")
    return url


@app.put("/api/v1/repositories", tags=REPOS, summary="Replace a repository's registration by ?url= (checked again)",
         responses=responses(200, "the updated repository"))
def replace_repository_by_url(url: OptionalText = None) -> dict[str, Any]:
    return service().update_repository(_repository_url(), app.current_event.decoded_body, caller(), replace=True)


@app.patch("/api/v1/repositories", tags=REPOS, summary="Merge patch of a repository by ?url= (e.g. new credentials)",
           responses=responses(200, "the updated repository"))
def patch_repository_by_url(url: OptionalText = None) -> dict[str, Any]:
    return service().update_repository(_repository_url(), app.current_event.decoded_body, caller(), replace=False)


@app.put("/api/v1/repositories/<repo>", tags=REPOS, summary="Replace a repository's registration (checked again)",
         responses=responses(200, "the updated repository"))
def replace_repository(repo: Annotated[str, Path(max_length=1024)]) -> dict[str, Any]:
    return service().update_repository(repo, app.current_event.decoded_body, caller(), replace=True)


@app.patch("/api/v1/repositories/<repo>", tags=REPOS, summary="Merge patch of a repository (e.g. new credentials)",
           responses=responses(200, "the updated repository"))
def patch_repository(repo: Annotated[str, Path(max_length=1024)]) -> dict[str, Any]:
    return service().update_repository(repo, app.current_event.decoded_body, caller(), replace=False)


# A repository by its registered name (a URL does not fit in one path segment behind API
# Gateway: use ?url= on /api/v1/repositories instead).
@app.get("/api/v1/repositories/<repo>", tags=REPOS, summary="A repository by its registered name",
         responses=responses(200, "the repository"))
def get_repository(repo: Annotated[str, Path(max_length=1024)]) -> dict[str, Any]:
    return service().get_repository(repo)


@app.delete("/api/v1/repositories/<repo>", tags=REPOS, summary="Forget a repository by its registered name",
            responses=responses(200, "forgotten"))
def delete_repository(repo: Annotated[str, Path(max_length=1024)], force: OptionalText = None) -> dict[str, Any]:
    return service().delete_repository(repo, _query(), caller())


TOKENS = ["tokens"]


@app.get("/api/v1/tokens", tags=TOKENS, summary="Named API tokens (never their values)",
         responses=responses(200, "tokens with their roles"))
def list_tokens() -> dict[str, Any]:
    return service().list_tokens()


@app.post("/api/v1/tokens", tags=TOKENS, summary="Create a named token (admin or readonly); its value is shown once",
          responses=responses(201, "the token, with its value this once"))
def create_token() -> Response[Any]:
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON,
                    body=service().create_token(app.current_event.decoded_body, caller()))


@app.delete("/api/v1/tokens/<name>", tags=TOKENS, summary="Revoke a named token",
            responses=responses(200, "revoked"))
def revoke_token(name: Annotated[str, Path(max_length=253)]) -> dict[str, Any]:
    return service().revoke_token(name, caller())


@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
