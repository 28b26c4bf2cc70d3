"""Cold start: each handler's module import (Lambda's init phase) in a fresh interpreter, against
``python -c "import boto3"`` (poll, webhook, report, followup) and ``import boto3, kubernetes``
(diff, apply, api, render), in the same run and interleaved, with and without bytecode.

Run by ``make bench`` only (marker ``bench``). "With bytecode" is how ``make package`` ships the
layers (pycs beside the sources); "without" points ``PYTHONPYCACHEPREFIX`` at an empty
directory for every run, which is what a package with no pycs costs on Lambda's read-only code
directory: everything imported is compiled at every cold start. Peers get the same treatment.
Prints min / median of ROUNDS runs; asserts only that every import succeeded.

``test_cold_start_init_and_first_invocation`` adds what a cold start really costs: a fresh
interpreter per row that imports ``app`` (init) and calls its handler once (first invocation:
the deferred imports, the first boto3 clients, the real requests), both timed inside the process,
against a local stack the bench starts once (moto server, kubesim, git HTTP server; nothing
mocked). Every handler does real work on one registered app (guestbook, two objects, not
automated), with the event of ``events/<stage>.json`` adapted to it, in the pipeline's order
each round:

* poll: the scheduled event; one ls-remote, the app's state read, the fleet summary sent;
* webhook: the sample push, re-signed with the stack's secret for the app's repository under a
  new delivery id (the idempotency record is written, a render is queued);
* render / diff / apply / report / followup: the message the previous stage really sent this
  round (the API's sync queues the render; render hits its cache for an unchanged commit and
  queues the diff; the diff compares with kubesim and queues the apply; the apply runs the
  operation (server-side apply, unchanged objects) and queues report and follow-up);
* api: the sample ``GET /api/v1/applications`` with the stack's token.

Peers, in the same interpreters and rounds: the issue's ``import boto3`` and ``import boto3,
kubernetes`` (init only), and a fairer one for a first invocation, ``+ call``: the same imports,
then a DynamoDB client and one GetItem against the same moto (and, for the cluster peer, a
Kubernetes client from the kubeconfig and one GET /version against kubesim). Interpreter start
(~20 ms) is in no row. Asserts only that every invocation succeeded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.bench
REPO = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("BENCH_COLDSTART_ROUNDS") or 5)
LIGHT = ("poll", "webhook", "report", "followup")
CLUSTER = ("diff", "apply", "api", "render")
_TIMED = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"


@pytest.fixture(autouse=True)
def _only_when_selected(request: pytest.FixtureRequest) -> None:
    if "bench" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("benchmarks run with make bench (-m bench)")


def _import_seconds(stmt: str, cwd: Path, bytecode: bool) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env.update({"PYTHONPATH": str(REPO / "layers" / "core"), "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1", "TABLE_NAME": "t", "BUCKET_NAME": "b", "POWERTOOLS_SERVICE_NAME": "gitferry",
                "POWERTOOLS_METRICS_NAMESPACE": "gitferry"})
    with tempfile.TemporaryDirectory() as empty:
        if not bytecode:
            env.update({"PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"})
        out = subprocess.run([sys.executable, "-c", _TIMED.format(stmt=stmt)], cwd=cwd, env=env,
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (stmt, cwd, out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1])


def test_cold_start_imports() -> None:
    subjects = {f"{stage}": ("import app", REPO / "functions" / stage) for stage in (*LIGHT, *CLUSTER)}
    subjects["peer: import boto3"] = ("import boto3", REPO)
    subjects["peer: import boto3, kubernetes"] = ("import boto3, kubernetes.client", REPO)
    times: dict[tuple[str, bool], list[float]] = {}
    for _ in range(ROUNDS):  # interleaved, so load on the machine falls on every row alike
        for bytecode in (True, False):
            for name, (stmt, cwd) in subjects.items():
                times.setdefault((name, bytecode), []).append(_import_seconds(stmt, cwd, bytecode))

    def row(name: str, bytecode: bool) -> tuple[float, float]:
        runs = times[(name, bytecode)]
        return min(runs), statistics.median(runs)

    print(f"\ncold start: handler import in a fresh python{sys.version_info.major}.{sys.version_info.minor}, "
          f"min / median of {ROUNDS}, seconds; ratio = median / its peer's median (goal <= 1.3)")
    print(f"  {'':<32} {'with bytecode':>16} {'ratio':>6}   {'without bytecode':>16} {'ratio':>6}")
    for name in subjects:
        peer = "peer: import boto3, kubernetes" if name in CLUSTER else "peer: import boto3"
        cells = []
        for bytecode in (True, False):
            low, mid = row(name, bytecode)
            ratio = mid / row(peer, bytecode)[1] if not name.startswith("peer") else 1.0
            cells.append(f"{low:7.3f} / {mid:6.3f} {ratio:6.2f}")
        print(f"  {name:<32} {cells[0]}   {cells[1]}")


# --------------------------------------------------------------------------- init + first invocation

_CHILD = """
import json, sys, time
spec = json.loads(sys.argv[1])
event = spec["event"]
class Context:  # what Lambda's python runtime passes (the attributes Powertools and handlers read)
    function_name = spec["function"]; function_version = "$LATEST"; memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + spec["function"]
    aws_request_id = "00000000-0000-4000-8000-000000000000"; log_group_name = "/aws/lambda/x"
    log_stream_name = "local"; identity = None; client_context = None
    def get_remaining_time_in_millis(self): return 60_000
t0 = time.perf_counter()
{init}
t1 = time.perf_counter()
{first}
t2 = time.perf_counter()
print("@@coldstart " + json.dumps({{"init": t1 - t0, "first": t2 - t1, "result": result}}, default=str))
"""
_HANDLER = _CHILD.format(init="import app", first="result = app.handler(event, Context())")
_PEER_INIT = {"boto3": "import boto3", "boto3, kubernetes": "import boto3, kubernetes.client"}
_PEER_CALL = {
    "boto3": ("result = boto3.client('dynamodb').get_item(TableName=spec['table'], "
              "Key={'pk': {'S': 'APP#guestbook'}, 'sk': {'S': 'SPEC'}})['ResponseMetadata']['HTTPStatusCode']"),
    "boto3, kubernetes": (
        "result = boto3.client('dynamodb').get_item(TableName=spec['table'], "
        "Key={'pk': {'S': 'APP#guestbook'}, 'sk': {'S': 'SPEC'}})['ResponseMetadata']['HTTPStatusCode']\n"
        "import kubernetes.config\n"
        "result = kubernetes.client.VersionApi(kubernetes.config.new_client_from_config(spec['kubeconfig']))"
        ".get_code().git_version"),
}
STAGES = {"poll": "PollFunction", "webhook": "WebhookFunction", "render": "RenderFunction", "diff": "DiffFunction",
          "apply": "ApplyFunction", "report": "ReportFunction", "followup": "FollowUpFunction", "api": "ApiFunction"}


def _function_env(stack: Any, function: str) -> tuple[dict[str, str], Path]:
    """The function's environment as the local runner gives it, plus its layers on PYTHONPATH."""
    spec = stack.resources.function_named(function)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON", "POWERTOOLS_"))}
    env.update({k: v for k, v in stack.environment(spec).items() if v is not None})
    libs = [layer / "python" if (layer / "python").is_dir() else layer for layer in spec.layer_paths
            if layer.name != "bin"]  # the tools layer is on PATH (environment())
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in [spec.code_dir, *libs])
    return env, spec.code_dir


def _run_child(code: str, env: dict[str, str], cwd: Path, spec: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300)
    marks = [line for line in out.stdout.splitlines() if line.startswith("@@coldstart ")]
    assert out.returncode == 0 and marks, (spec.get("function"), out.stdout[-2000:], out.stderr[-3000:])
    return json.loads(marks[-1].removeprefix("@@coldstart "))  # type: ignore[no-any-return]


def _sample(stage: str) -> dict[str, Any]:
    return json.loads((REPO / "events" / f"{stage}.json").read_text())  # type: ignore[no-any-return]


def _webhook_event(repo_url: str, sha: str, secret: str) -> dict[str, Any]:
    event = _sample("webhook")
    body = json.loads(event["body"])
    body.update({"after": sha, "head_commit": {**body["head_commit"], "id": sha}})
    body["repository"].update({"clone_url": repo_url, "html_url": repo_url.removesuffix(".git")})
    raw = json.dumps(body)
    signature = "sha256=" + hmac.new(secret.encode(), raw.encode(), hashlib.sha256).hexdigest()
    headers = {**event["headers"], "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": signature}
    event.update(body=raw, headers=headers, multiValueHeaders={k: [v] for k, v in headers.items()})
    return event


def _succeeded(stage: str, result: Any) -> bool:
    if stage == "poll":
        return isinstance(result, dict) and result.get("errors") == 0
    if stage in ("webhook", "api"):
        return isinstance(result, dict) and 200 <= int(result.get("statusCode", 500)) < 300
    return isinstance(result, dict) and result.get("batchItemFailures") == []


def test_cold_start_init_and_first_invocation() -> None:
    from local.story import DEPLOYMENT, SERVICE, WEBHOOK_SECRET, LocalWorld, application

    with LocalWorld() as world:
        stack = world.stack
        repo = world.git.make_repo("guestbook", {"guestbook/deployment.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.25"),
                                                 "guestbook/service.yaml": SERVICE})
        server = world.register_cluster("local")
        world.api_ok("POST", "/api/v1/repositories", {"url": repo})
        world.set_webhook_secret("github", WEBHOOK_SECRET)
        world.api_ok("POST", "/api/v1/applications", application("guestbook", repo, server, automated=False))
        world.tick()  # rendered and compared once: the state every round starts from
        sha = world.status("guestbook")["sync"]["revision"]
        table = stack.resources.tables["StateTable"]
        manifests: list[str] = []  # this round's render output (the diff message names it)

        def drain() -> None:
            for queue in stack.resources.queues:
                while stack.take_event(queue) is not None:
                    pass

        def event_for(stage: str) -> dict[str, Any]:
            if stage == "poll":
                return _sample("poll")
            if stage == "webhook":
                return _webhook_event(repo, sha, WEBHOOK_SECRET)
            if stage == "api":
                event = _sample("api")
                auth = f"Bearer {world.api_token}"
                event["headers"]["Authorization"], event["multiValueHeaders"]["Authorization"] = auth, [auth]
                return event
            if stage == "followup":  # the sample rollout check, due now, for this round's manifests
                event = _sample("followup")
                body = json.loads(event["Records"][0]["body"])
                body.update(dueAt=time.time(), token=f"health:{uuid.uuid4().hex}")
                body["diff"].update(commit=sha, manifests=manifests[0])
                event["Records"][0]["body"] = json.dumps(body)
                return event
            if stage == "render":
                drain()
                world.api_ok("POST", "/api/v1/applications/guestbook/sync", {})
            queue = {"render": "RenderQueue", "diff": "DiffQueue", "apply": "ApplyQueue", "report": "ReportQueue"}[stage]
            event = stack.take_event(queue, wait_seconds=2)
            assert event is not None, f"no {queue} message for {stage} this round"
            if stage == "diff":
                manifests[:] = [json.loads(event["Records"][0]["body"])["manifests"]]
            return event

        times: dict[str, dict[str, list[float]]] = {}
        failures: list[str] = []
        peer_env, peer_cwd = _function_env(stack, "PollFunction")
        peer_spec = {"table": table, "kubeconfig": world.kube.kubeconfig_path, "function": "peer", "event": None}
        for _ in range(ROUNDS):
            for stage, function in STAGES.items():
                env, cwd = _function_env(stack, function)
                out = _run_child(_HANDLER, env, cwd, {"function": function, "event": event_for(stage)})
                if not _succeeded(stage, out["result"]):
                    failures.append(f"{stage}: {out['result']}")
                for part in ("init", "first"):
                    times.setdefault(stage, {}).setdefault(part, []).append(out[part])
                for peer, init in _PEER_INIT.items():  # a peer run after every handler: load falls alike
                    for name, first in ((f"peer: import {peer}", "result = None"),
                                        (f"peer: import {peer} + call", _PEER_CALL[peer])):
                        got = _run_child(_CHILD.format(init=init, first=first), peer_env, peer_cwd, peer_spec)
                        for part in ("init", "first"):
                            times.setdefault(name, {}).setdefault(part, []).append(got[part])
    assert not failures, failures

    def stat(name: str, part: str) -> tuple[float, float]:
        runs = times[name][part] if part != "total" else [a + b for a, b in zip(times[name]["init"],
                                                                                  times[name]["first"], strict=True)]
        return min(runs), statistics.median(runs)

    print(f"\ncold start: init (import app) + first invocation in a fresh python{sys.version_info.major}."
          f"{sys.version_info.minor}, bytecode as present, min / median of {ROUNDS} rounds (peers: "
          f"{ROUNDS * len(STAGES)} runs), seconds; ratios = median total / the peer's median (goal <= 1.3)")
    print(f"  {'':<38} {'init':>15} {'first invocation':>17} {'total':>15}   {'/ import':>8} {'/ +call':>8}")
    for name in times:
        peer = "boto3, kubernetes" if name in CLUSTER else "boto3"
        cells = [f"{stat(name, part)[0]:6.3f} / {stat(name, part)[1]:6.3f}" for part in ("init", "first", "total")]
        ratios = ("", "")
        if not name.startswith("peer"):
            total = stat(name, "total")[1]
            ratios = (f"{total / stat(f'peer: import {peer}', 'total')[1]:8.2f}",
                      f"{total / stat(f'peer: import {peer} + call', 'total')[1]:8.2f}")
        print(f"  {name:<38} {cells[0]:>15} {cells[1]:>17} {cells[2]:>15}   {ratios[0]:>8} {ratios[1]:>8}")
