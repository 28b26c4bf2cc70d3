"""api: the management API (applications, clusters, repositories) and the web console's static files."""

import base64
from functools import cache
from pathlib import Path

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.utilities.typing import LambdaContext
from gitferry.console import Console, Page, is_page, stage_prefix
from gitferry.errors import (
    ConflictError,
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
from gitferry.model import format_validation_error
from gitferry.pipeline import Engine
from gitferry.service import MAX_BODY_BYTES, Service
from pydantic import ValidationError

logger = Logger()
app = APIGatewayRestResolver()
#: the console's build output (``make dev`` / ``make package`` write it; gitignored)
CONSOLE = Console(Path(__file__).resolve().parent / "console")


@cache
def service() -> Service:
    return Service(Engine.from_env())


def caller() -> str:
    """Who is asking: the IAM identity API Gateway authenticated, else "api"."""
    identity = (app.current_event.request_context.identity.user_arn
                if app.current_event.request_context.identity else None)
    return f"api:{identity}" if identity else "api"


def _error(status: int, message: str, **extra: object) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body={"message": message, **extra})


def require_token(router: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
    """Every route but the console's static pages and assets needs the API bearer token."""
    if not is_page(router.current_event.path):
        service().authorize(router.current_event.headers.get("Authorization"))  # case-insensitive
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


@app.exception_handler(InvalidSpecError)
def invalid(exc: InvalidSpecError) -> Response:
    return _error(400, exc.subject, problems=exc.problems)


@app.exception_handler(PayloadTooLargeError)
def too_large(exc: PayloadTooLargeError) -> Response:
    return _error(413, str(exc))


@app.exception_handler(ValidationError)
def invalid_model(exc: ValidationError) -> Response:
    return _error(400, "invalid request", problems=format_validation_error(exc))


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


def _static(page: Page) -> Response:
    return Response(status_code=page.status, content_type=page.content_type, body=page.body, headers=page.headers)


@app.get("/")
@app.get("/applications")
@app.get("/applications/<name>")
@app.get("/repositories")
@app.get("/clusters")
def console_page(name: str | None = None) -> Response:
    """Every console route answers index.html (deep links); the page reads data with the token."""
    event = app.current_event
    return _static(CONSOLE.page(stage_prefix(event.request_context.path, event.path)))


@app.get("/assets/<file>")
def console_asset(file: str) -> Response:
    return _static(CONSOLE.asset(app.current_event.path))


@app.get("/api/v1/applications")
def list_apps() -> dict:
    return service().list_apps()


@app.post("/api/v1/applications")
def create_app() -> Response:
    upsert = (app.current_event.query_string_parameters or {}).get("upsert") == "true"
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON,
                    body=service().create_app(app.current_event.decoded_body, upsert=upsert, caller=caller()))


@app.get("/api/v1/applications/<name>")
def get_app(name: str) -> dict:
    return service().get_app(name)


@app.delete("/api/v1/applications/<name>")
def delete_app(name: str) -> Response:
    status, body = service().delete_app(name, app.current_event.query_string_parameters or {}, caller())
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


@app.post("/api/v1/applications/<name>/sync")
def sync(name: str) -> Response:
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON,
                    body=service().sync(name, app.current_event.decoded_body, caller()))


@app.post("/api/v1/applications/<name>/refresh")
def refresh(name: str) -> Response:
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON,
                    body=service().refresh(name, caller()))


@app.post("/api/v1/applications/<name>/rollback/<history_id>")
def rollback(name: str, history_id: str) -> Response:
    if not history_id.isdigit():
        raise InvalidSpecError([f"id: {history_id!r} is not a history id"], "invalid rollback")
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON,
                    body=service().rollback(name, int(history_id), caller()))


@app.get("/api/v1/applications/<name>/history")
def history(name: str) -> dict:
    return service().history(name)


@app.get("/api/v1/applications/<name>/resources")
def resources(name: str) -> dict:
    query = app.current_event.query_string_parameters or {}
    return service().resources(name, query.get("limit"), query.get("cursor"))


@app.get("/api/v1/applications/<name>/sync-results")
def sync_results(name: str) -> dict:
    query = app.current_event.query_string_parameters or {}
    return service().sync_results(name, query.get("limit"), query.get("cursor"))


@app.get("/api/v1/applications/<name>/diff")
def diff(name: str) -> dict:
    return service().diff(name)


@app.get("/api/v1/applications/<name>/resource-tree")
def resource_tree(name: str) -> dict:
    return service().resource_tree(name)


@app.get("/api/v1/audit")
def audit() -> dict:
    query = app.current_event.query_string_parameters or {}
    return service().audit_day(query.get("date"), query.get("limit"), query.get("cursor"))


@app.get("/api/v1/clusters")
def list_clusters() -> dict:
    return service().list_clusters()


def _upsert() -> bool:
    value = (app.current_event.query_string_parameters or {}).get("upsert", "false")
    if value not in ("true", "false"):
        raise InvalidSpecError([f"upsert: {value!r} is not true or false"], "invalid request")
    return value == "true"


@app.post("/api/v1/clusters")
def register_cluster() -> Response:
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON,
                    body=service().register_cluster(app.current_event.decoded_body, caller(), upsert=_upsert()))


@app.get("/api/v1/clusters/<name>")
def get_cluster(name: str) -> dict:
    return service().get_cluster(name)


@app.delete("/api/v1/clusters/<name>")
def delete_cluster(name: str) -> dict:
    return service().delete_cluster(name, app.current_event.query_string_parameters or {}, caller())


@app.get("/api/v1/repositories")
def list_repositories() -> dict:
    url = (app.current_event.query_string_parameters or {}).get("url")
    return service().get_repository(url) if url else service().list_repositories()


@app.delete("/api/v1/repositories")
def delete_repository_by_url() -> dict:
    query = dict(app.current_event.query_string_parameters or {})
    url = query.pop("url", None)
    if not url:
        raise InvalidSpecError(["url: query parameter required (or DELETE /api/v1/repositories/{name})"],
                               "invalid delete request")
    return service().delete_repository(url, query, caller())


@app.post("/api/v1/repositories")
def register_repository() -> Response:
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON,
                    body=service().register_repository(app.current_event.decoded_body, caller(), upsert=_upsert()))


# A repository by its registered name (a URL does not fit in one path segment behind API
# Gateway: use ?url= on /api/v1/repositories instead).
@app.get("/api/v1/repositories/<repo>")
def get_repository(repo: str) -> dict:
    return service().get_repository(repo)


@app.delete("/api/v1/repositories/<repo>")
def delete_repository(repo: str) -> dict:
    return service().delete_repository(repo, app.current_event.query_string_parameters or {}, caller())


@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
