"""api: the management API (applications, clusters, repositories) and the dashboard."""

from functools import cache

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.utilities.typing import LambdaContext
from gitferry.dashboard import DASHBOARD_HTML
from gitferry.errors import (
    ConflictError,
    GitError,
    InvalidSpecError,
    LeaseHeldError,
    NotFoundError,
    UnauthorizedError,
)
from gitferry.pipeline import Engine
from gitferry.service import Service

logger = Logger()
app = APIGatewayRestResolver()


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
    """Every route but the static dashboard page needs the API bearer token."""
    if router.current_event.path != "/":
        service().authorize(router.current_event.headers.get("Authorization"))  # case-insensitive
    return next_middleware(router)


app.use(middlewares=[require_token])


@app.exception_handler(UnauthorizedError)
def unauthorized(exc: UnauthorizedError) -> Response:
    return Response(status_code=401, content_type=content_types.APPLICATION_JSON,
                    body={"message": str(exc)}, headers={"WWW-Authenticate": "Bearer"})


@app.exception_handler(InvalidSpecError)
def invalid(exc: InvalidSpecError) -> Response:
    return _error(400, exc.subject, problems=exc.problems)


@app.exception_handler(NotFoundError)
def not_found(exc: NotFoundError) -> Response:
    return _error(404, str(exc))


@app.exception_handler(ConflictError)
def conflict(exc: ConflictError) -> Response:
    return _error(409, str(exc))


@app.exception_handler(LeaseHeldError)
def busy(exc: LeaseHeldError) -> Response:
    return _error(409, str(exc))


@app.exception_handler(GitError)
def git_error(exc: GitError) -> Response:
    return _error(502, str(exc))


@app.get("/")
def dashboard() -> Response:
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=DASHBOARD_HTML)


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
def delete_app(name: str) -> dict:
    return service().delete_app(name, caller())


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


@app.get("/api/v1/applications/<name>/resource-tree")
def resource_tree(name: str) -> dict:
    return service().resource_tree(name)


@app.get("/api/v1/audit")
def audit() -> dict:
    return service().audit_day((app.current_event.query_string_parameters or {}).get("date"))


@app.get("/api/v1/clusters")
def list_clusters() -> dict:
    return service().list_clusters()


@app.post("/api/v1/clusters")
def register_cluster() -> Response:
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON,
                    body=service().register_cluster(app.current_event.decoded_body, caller()))


@app.get("/api/v1/repositories")
def list_repositories() -> dict:
    return service().list_repositories()


@app.post("/api/v1/repositories")
def register_repository() -> Response:
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON,
                    body=service().register_repository(app.current_event.decoded_body, caller()))


@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
