"""The published OpenAPI document, and schemathesis against it on the local stack.

``GET /openapi.json`` (no token) lists every route of the API function with the status codes a
script can rely on. schemathesis loads it from the local API Gateway endpoint and sends each
operation a bounded number of generated requests, authenticated with the token; no answer may
be a 5xx, use an undocumented status code or content type, or break its documented schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from local.story import SERVICE, LocalWorld, application

ERROR_CODES = {"400", "401", "403", "404", "409", "413", "422"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: generated requests per operation (about 20 operations: well under a minute in all)
EXAMPLES = 6


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        w.register_cluster("local")
        repo = w.git.make_repo("guestbook", {"app/service.yaml": SERVICE})
        w.api_ok("POST", "/api/v1/applications", application("guestbook", repo, w.kube.url, automated=False,
                                                                path="app"))
        w.settle()
        yield w


def test_the_document_needs_no_token_and_lists_every_route_with_its_error_codes(world: LocalWorld) -> None:
    status, doc = world.call("GET", "/openapi.json", headers={})
    assert status == 200 and doc["openapi"].startswith("3.")
    assert doc["servers"] == [{"url": "/Prod"}]  # the stage the local API Gateway serves, as AWS does
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    operations = {(path, method): op for path, ops in doc["paths"].items() for method, op in ops.items()}
    expected = {
        ("/api/v1/applications", "get"), ("/api/v1/applications", "post"),
        ("/api/v1/applications/{name}", "get"), ("/api/v1/applications/{name}", "put"),
        ("/api/v1/applications/{name}", "patch"), ("/api/v1/applications/{name}", "delete"),
        ("/api/v1/applications/{name}/sync", "post"), ("/api/v1/applications/{name}/operation", "delete"),
        ("/api/v1/applications/{name}/refresh", "post"),
        ("/api/v1/applications/{name}/rollback/{history_id}", "post"),
        ("/api/v1/applications/{name}/history", "get"), ("/api/v1/applications/{name}/events", "get"),
        ("/api/v1/applications/{name}/resources", "get"), ("/api/v1/applications/{name}/sync-results", "get"),
        ("/api/v1/applications/{name}/diff", "get"), ("/api/v1/applications/{name}/resource-tree", "get"),
        ("/api/v1/audit", "get"), ("/api/v1/clusters", "get"), ("/api/v1/clusters", "post"),
        ("/api/v1/clusters/{name}", "get"), ("/api/v1/clusters/{name}", "delete"),
        ("/api/v1/repositories", "get"), ("/api/v1/repositories", "post"), ("/api/v1/repositories", "delete"),
        ("/api/v1/repositories/{repo}", "get"), ("/api/v1/repositories/{repo}", "delete"),
    }
    assert expected <= set(operations), expected - set(operations)
    for key, op in operations.items():
        assert ERROR_CODES <= set(op["responses"]), (key, sorted(op["responses"]))
    create = operations[("/api/v1/applications", "post")]["requestBody"]["content"]
    assert create["application/json"]["schema"] == {"$ref": "#/components/schemas/Application"}
    filters = {p["name"] for p in operations[("/api/v1/applications", "get")]["parameters"]}
    assert filters == {"project", "repo", "cluster", "namespace", "sync", "health", "selector", "search",
                       "limit", "cursor"}
    # every route the document lists refuses a caller without the token
    assert world.call("GET", "/api/v1/applications", headers={})[0] == 401


def test_schemathesis_finds_no_server_error_and_no_schema_break(world: LocalWorld) -> None:
    """Every operation of the document, EXAMPLES generated requests each (derandomized, so a
    failure is the same at every run); all failures are collected, then reported together."""
    schema = schemathesis.openapi.from_url(world.api + "/openapi.json")
    headers = {"Authorization": f"Bearer {world.api_token}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - collected: every operation is tried
            failures.append(f"{operation.method.upper()} {operation.path}: {type(exc).__name__}: {str(exc)[:1500]}")
    assert operations >= 26
    assert not failures, "\n\n".join(failures)


def test_a_callers_mistake_is_a_4xx_naming_what_is_wrong(world: LocalWorld) -> None:
    """Inputs past what DynamoDB keys or the routes take are refused as the caller's mistake."""
    long_url = "https://git.example.com/" + "a" * 2020
    status, answer = world.call("POST", "/api/v1/repositories", {"url": long_url})
    assert status == 400 and any(p.startswith("url:") for p in answer["problems"]), answer
    status, answer = world.call("GET", "/api/v1/repositories?url=" + "%F0%9F%98%80" * 600)
    assert status == 404, answer
    status, answer = world.call("GET", "/api/v1/applications/Not_A_Name")
    assert status == 400 and answer["problems"][0].startswith("name:"), answer
    status, answer = world.call("GET", "/api/v1/clusters/" + "%F0%9F%98%80" * 250)
    assert status == 404, answer
    status, answer = world.call("POST", "/api/v1/applications/guestbook/rollback/x1")
    assert status == 400, answer
    status, answer = world.call("POST", "/api/v1/applications/guestbook/sync", {"revision": "no-such-branch"})
    assert status == 422 and answer["message"].startswith("revision:"), answer
    status, answer = world.call("POST", "/api/v1/applications/guestbook/sync", b"\xff\xfe")
    assert status == 400 and "not UTF-8" in answer["problems"][0], answer
    status, answer = world.call("POST", "/api/v1/applications", "x" * (1024 * 1024 + 1))
    assert status == 413, answer
    status, answer = world.call("GET", "/api/v1/nothing-here")
    assert status == 404 and "message" in answer, answer
    for status, answer in (world.call("POST", "/api/v1/applications", {"kind": "Application"}),):
        assert status == 400 and "Traceback" not in str(answer)
