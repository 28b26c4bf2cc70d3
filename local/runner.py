"""The local Lambda runtime: delivers events to the handlers exactly as template.yaml wires them.

Why it exists: moto gives us the AWS data plane (tables, queues, buckets...) but no Lambda
service: nothing fires schedules, polls queues for functions or fronts them with API Gateway.
``LocalStack`` plays that role from the very same wiring the cloud uses (``local/aws.py`` reads
the SAM-transformed template):

* schedule ticks: ``tick(function)`` (EventBridge "Scheduled Event"), or a background loop;
* SQS event source mappings: batches of up to BatchSize with the exact Lambda SQS record shape;
  ``batchItemFailures`` honoured (failed messages are made visible again, the rest deleted), a
  raised exception fails the whole batch, and after maxReceiveCount moto's redrive moves the
  message to the DLQ - the same at-least-once contract the handlers get in AWS; a standard
  queue's per-message ``DelaySeconds`` (FollowUpQueue) is honoured by moto on receive, so a
  delayed message is delivered at its time;
* API Gateway REST proxy events (payload v1) from a loopback ``ThreadingHTTPServer`` that routes by
  the template's Api events (path parameters, ``{proxy+}``, query strings, headers, base64 bodies);
  a route with ``AWS_IAM`` authorization (template parameter ApiAuth) first has its SigV4
  signature checked against moto's IAM/STS credentials (``local/sigv4.py``, limits there) and
  its caller put in ``requestContext.identity``, or answers API Gateway's 403;
* a Lambda-like context, the function's own environment (plus ``AWS_ENDPOINT_URL`` pointing at
  moto and dummy credentials) for the init phase and every invocation;
* EMF lines printed by Powertools Metrics are captured into ``metrics``, pushed to moto
  CloudWatch (put_metric_data) and fed to ``local/alarms.py``, which evaluates the template's alarms.

All invocations are serialised by one lock (one delivery at a time, like a single Lambda
sandbox): that makes swapping ``os.environ`` per invocation safe even though the HTTP server is
threaded. An apply that waits for a wave holds the lock meanwhile, so the local stack keeps that
wait short (``SyncWaitSeconds`` in ``local/story.py``) and longer ones go through FollowUpQueue.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import io
import json
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import boto3

from local import alarms as alarmlib
from local import iam, sigv4
from local.aws import DUMMY_CREDENTIALS, FunctionSpec, MotoServer, Resources, Route, create_stack_resources
from local.httpserver import LoopbackHTTPServer

REPO_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- context + output capture


@dataclass
class LambdaContext:
    """What the Python runtime passes as ``context`` (the attributes Powertools and handlers read)."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_ms: float
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.deadline_ms - time.time() * 1000))


class _StdoutRouter(io.TextIOBase):
    """sys.stdout stand-in during invocations: the invoking thread's output is captured (EMF lines
    are what Lambda ships to CloudWatch) and echoed; other threads pass straight through."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def begin(self, echo_to: Any) -> None:
        self._local.buf = []
        self._local.echo = echo_to

    def end(self) -> str:
        text = "".join(getattr(self._local, "buf", []) or [])
        self._local.buf = None
        self._local.echo = None
        return text

    def _target(self) -> Any:
        echo = getattr(self._local, "echo", None)
        if echo is not None:
            return echo
        current = sys.stdout
        return current if current is not self else sys.__stdout__

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        buf = getattr(self._local, "buf", None)
        if buf is not None:
            buf.append(s)
        target = self._target()
        if target is not None and target is not _DISCARD:
            try:
                target.write(s)
            except ValueError:  # a closed capture stream (pytest) must not break a handler
                pass
        return len(s)

    def flush(self) -> None:
        target = self._target()
        if target is not None and target is not _DISCARD:
            try:
                target.flush()
            except ValueError:
                pass


_DISCARD = io.StringIO()
_ROUTER = _StdoutRouter()


# --------------------------------------------------------------------------- records


@dataclass
class Invocation:
    """One handler call, kept for tests and for the ``up`` console."""

    function: str
    request_id: str
    trigger: str  # schedule | sqs | api | direct
    started: float
    duration_ms: float
    result: Any = None
    error: str | None = None
    output: str = ""
    timed_out: bool = False


@dataclass
class MetricRecord:
    """One captured EMF document and the function that printed it."""

    function: str
    request_id: str
    document: dict[str, Any]
    datapoints: list[alarmlib.Datapoint] = field(default_factory=list)


class HandlerError(RuntimeError):
    pass


# --------------------------------------------------------------------------- the stack


class LocalStack:
    """Handlers of one template, wired to moto exactly as the template wires them in AWS."""

    def __init__(
        self,
        resources: Resources,
        *,
        extra_env: dict[str, str | None] | None = None,
        echo: bool = True,
        moto: MotoServer | None = None,
    ) -> None:
        self.resources = resources
        self.extra_env = dict(extra_env or {})
        self.echo = echo
        self.invocations: list[Invocation] = []
        self.metrics: list[MetricRecord] = []
        self._moto = moto
        self._lock = threading.RLock()
        self._credentials: dict[str, dict[str, str]] = {}
        self._sessions: dict[str, boto3.session.Session] = {}  # one per function, as one process each
        self._modules: dict[str, Callable[[Any, Any], Any]] = {}
        self._api: _ApiServer | None = None
        self._loop: threading.Thread | None = None
        self._stop = threading.Event()
        self._sqs = resources.client("sqs")
        self._cloudwatch = resources.client("cloudwatch")
        specs = []
        for lid, props in resources.alarms.items():
            try:
                specs.append(alarmlib.AlarmSpec.from_properties(props, logical_id=lid))
            except ValueError as exc:
                print(f"[local] {exc}", file=sys.stderr)
        self.alarms = alarmlib.AlarmEvaluator(specs, on_transition=self._on_alarm_transition)

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        template_path: Path | str = REPO_ROOT / "template.yaml",
        *,
        endpoint: str | None = None,
        parameters: dict[str, Any] | None = None,
        extra_env: dict[str, str | None] | None = None,
        echo: bool = True,
    ) -> LocalStack:
        """Start moto (unless ``endpoint`` is given), create the template's resources, return the stack."""
        moto = None
        if endpoint is None:
            moto = MotoServer().start()
            endpoint = moto.endpoint
        resources = create_stack_resources(template_path, endpoint, parameters=parameters)
        return cls(resources, extra_env=extra_env, echo=echo, moto=moto)

    def close(self) -> None:
        self._stop.set()
        if self._loop is not None:
            self._loop.join(timeout=10)
        if self._api is not None:
            self._api.stop()
            self._api = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def endpoint(self) -> str:
        return self.resources.endpoint

    # ---- environment -------------------------------------------------------------------

    def environment(self, spec: FunctionSpec) -> dict[str, str | None]:
        """What the function's process sees: Lambda's reserved variables, moto endpoint, dummy
        credentials, the template's Environment, the tools layer on PATH. None = unset."""
        env: dict[str, str | None] = {
            **self.role_credentials(spec),
            "AWS_PROFILE": None,
            "AWS_DEFAULT_PROFILE": None,
            "AWS_REGION": self.resources.region,
            "AWS_DEFAULT_REGION": self.resources.region,
            "AWS_ENDPOINT_URL": self.resources.endpoint,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            # No X-Ray daemon locally; Powertools Tracer would try to reach it.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        bins = [str(p) for p in spec.layer_paths if _is_bin_dir(p)]
        bins += [str(p / "bin") for p in spec.layer_paths if (p / "bin").is_dir() and not _is_bin_dir(p)]
        if bins:
            env["PATH"] = os.pathsep.join([*bins, os.environ.get("PATH", "")])
        env.update(spec.environment)
        env.update(self.extra_env)
        return env

    def role_credentials(self, spec: FunctionSpec) -> dict[str, str]:
        """Temporary credentials of the function's execution role (moto ``sts:AssumeRole``, session
        name = function name), as Lambda puts them in the environment: STS then says who the
        function is (an EKS token made with them maps to the role). Dummy ones without a role."""
        if spec.role_arn is None:
            return dict(DUMMY_CREDENTIALS)
        with self._lock:
            cached = self._credentials.get(spec.logical_id)
            if cached is None:
                creds = self.resources.client("sts").assume_role(
                    RoleArn=spec.role_arn, RoleSessionName=spec.name[:64])["Credentials"]
                cached = self._credentials[spec.logical_id] = {
                    "AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                    "AWS_SESSION_TOKEN": creds["SessionToken"]}
                # What the handler does with them is held to the role's policies, as in AWS.
                iam.REGISTRY.register(creds["AccessKeyId"], spec.logical_id,
                                      iam.statements_of(spec.role_policies, spec.logical_id),
                                      self.resources.region, self.resources.account_id)
            return dict(cached)

    @contextmanager
    def _environ(self, spec: FunctionSpec) -> Iterator[None]:
        """The function's environment and its own boto3 default session for the invocation. In
        Lambda each function is its own process; here they share one, and a shared default
        session would resolve credentials once (botocore caches them) and hand the first
        function's role to every other function's clients."""
        saved = {k: os.environ.get(k) for k in self.environment(spec)}
        saved_session = boto3.DEFAULT_SESSION
        try:
            for key, value in self.environment(spec).items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            session = self._sessions.get(spec.logical_id)
            if session is None:
                session = self._sessions[spec.logical_id] = boto3.session.Session()
                iam.REGISTRY.watch(session)
            boto3.DEFAULT_SESSION = session
            yield
        finally:
            boto3.DEFAULT_SESSION = saved_session
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    # ---- handler loading ---------------------------------------------------------------

    def handler_for(self, function: str) -> Callable[[Any, Any], Any]:
        """Import the function's handler module by path under an isolated module name (init phase
        under the function's own environment, as Lambda runs module code at cold start)."""
        spec = self.resources.function_named(function)
        with self._lock:
            cached = self._modules.get(spec.logical_id)
            if cached is not None:
                return cached
            module_name, _, attr = spec.handler.rpartition(".")
            path = spec.code_dir / (module_name.replace(".", "/") + ".py")
            if not path.is_file():
                raise FileNotFoundError(f"{spec.logical_id}: handler {spec.handler} not found at {path}")
            for layer in spec.layer_paths:
                lib = layer / "python" if (layer / "python").is_dir() else layer
                if not _is_bin_dir(layer) and str(lib) not in sys.path:
                    sys.path.append(str(lib))
            isolated = f"_gitferry_fn_{spec.logical_id}_{module_name.replace('.', '_')}"
            before = set(sys.modules)
            sys.path.insert(0, str(spec.code_dir))
            try:
                with self._environ(spec), self._capture(spec.logical_id, "init") as _:
                    mod_spec = importlib.util.spec_from_file_location(isolated, path)
                    assert mod_spec is not None and mod_spec.loader is not None
                    module: ModuleType = importlib.util.module_from_spec(mod_spec)
                    sys.modules[isolated] = module
                    mod_spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(spec.code_dir))
                # Sibling modules of this function (functions/<stage>/*.py) must not shadow another
                # function's siblings of the same name: forget them once the handler holds them.
                for name in set(sys.modules) - before:
                    file = getattr(sys.modules[name], "__file__", None) or ""
                    if name != isolated and file.startswith(str(spec.code_dir) + os.sep):
                        del sys.modules[name]
            fn = getattr(module, attr)
            self._modules[spec.logical_id] = fn
            return fn

    @contextmanager
    def _capture(self, function: str, request_id: str) -> Iterator[list[str]]:
        out: list[str] = []
        previous = sys.stdout
        echo_to = (previous if previous is not _ROUTER else sys.__stdout__) if self.echo else _DISCARD
        _ROUTER.begin(echo_to)
        sys.stdout = _ROUTER
        try:
            yield out
        finally:
            if sys.stdout is _ROUTER:
                sys.stdout = previous if previous is not _ROUTER else sys.__stdout__
            text = _ROUTER.end()
            out.append(text)
            self._collect_metrics(function, request_id, text)

    # ---- invocation --------------------------------------------------------------------

    def invoke(self, function: str, event: Any, *, trigger: str = "direct", raise_errors: bool = False) -> Invocation:
        """Run one invocation of ``function`` with ``event``; exceptions are recorded, like Lambda."""
        spec = self.resources.function_named(function)
        handler = self.handler_for(spec.logical_id)
        request_id = str(uuid.uuid4())
        with self._lock:
            started = time.time()
            ctx = LambdaContext(
                function_name=spec.name,
                function_version="$LATEST",
                invoked_function_arn=spec.arn,
                memory_limit_in_mb=spec.memory_mb,
                aws_request_id=request_id,
                log_group_name=f"/aws/lambda/{spec.name}",
                log_stream_name=f"{time.strftime('%Y/%m/%d')}/[$LATEST]local",
                deadline_ms=started * 1000 + spec.timeout * 1000,
            )
            record = Invocation(spec.logical_id, request_id, trigger, started, 0.0)
            with self._environ(spec), self._capture(spec.logical_id, request_id) as out:
                try:
                    record.result = handler(event, ctx)
                except Exception as exc:  # noqa: BLE001 - a handler error is an invocation result
                    record.error = f"{type(exc).__name__}: {exc}"
                    traceback.print_exc(file=sys.stderr)
            record.output = "".join(out)
            record.duration_ms = (time.time() - started) * 1000
            if record.duration_ms > spec.timeout * 1000:
                record.timed_out = True
                print(
                    f"[local] {spec.logical_id} ran {record.duration_ms:.0f} ms > Timeout {spec.timeout} s "
                    "(Lambda would have killed it)",
                    file=sys.stderr,
                )
            self.invocations.append(record)
        self.evaluate_alarms()
        if raise_errors and record.error:
            raise HandlerError(f"{spec.logical_id}: {record.error}")
        return record

    # ---- schedules ---------------------------------------------------------------------

    def tick(self, function: str | None = None) -> list[Invocation]:
        """Deliver one EventBridge scheduled event to every scheduled function (or just ``function``)."""
        results = []
        for sched in self.resources.schedules:
            if not sched.enabled:
                continue
            if function is not None and self.resources.function_named(function).logical_id != sched.function:
                continue
            if sched.input is not None:
                event = json.loads(sched.input)
            else:
                event = {
                    "version": "0",
                    "id": str(uuid.uuid4()),
                    "detail-type": "Scheduled Event",
                    "source": "aws.events",
                    "account": self.resources.account_id,
                    "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "region": self.resources.region,
                    "resources": [sched.arn],
                    "detail": {},
                }
            results.append(self.invoke(sched.function, event, trigger="schedule"))
        if function is not None and not results:
            raise KeyError(f"{function} has no enabled schedule in the template")
        return results

    # ---- SQS ---------------------------------------------------------------------------

    def send(self, queue: str, body: str | dict[str, Any], *, group: str | None = None, **kwargs: Any) -> str:
        """Send to a template queue (logical id); FIFO group defaults to body['app'] when present."""
        q = self.resources.queues[queue]
        text = body if isinstance(body, str) else json.dumps(body)
        params: dict[str, Any] = {"QueueUrl": q.url, "MessageBody": text, **kwargs}
        if q.fifo:
            from gitferry.queues import group_id

            app = body.get("app") if isinstance(body, dict) else None
            params["MessageGroupId"] = group or (group_id(app) if isinstance(app, str) and app else "default")
        return str(self._sqs.send_message(**params)["MessageId"])

    def deliver(self) -> int:
        """One round: at most one batch per event source mapping. Returns messages delivered."""
        total = 0
        for mapping in self.resources.event_sources:
            if not mapping.enabled:
                continue
            messages: list[dict[str, Any]] = []
            while len(messages) < mapping.batch_size:
                got = self._sqs.receive_message(
                    QueueUrl=mapping.queue_url,
                    MaxNumberOfMessages=min(10, mapping.batch_size - len(messages)),
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                    WaitTimeSeconds=0,
                ).get("Messages", [])
                if not got:
                    break
                messages.extend(got)
            if not messages:
                continue
            total += len(messages)
            event = {"Records": [self._sqs_record(m, mapping.queue_arn) for m in messages]}
            inv = self.invoke(mapping.function, event, trigger="sqs")
            failed = self._failed_ids(inv, messages, mapping.report_batch_item_failures)
            for m in messages:
                if m["MessageId"] in failed:
                    # Lambda leaves it for redelivery after the visibility timeout; locally at once.
                    self._sqs.change_message_visibility(
                        QueueUrl=mapping.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    self._sqs.delete_message(QueueUrl=mapping.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return total

    def take_event(self, queue: str, *, wait_seconds: float = 0.0) -> dict[str, Any] | None:
        """Receive (and delete) up to 10 visible messages of a template queue (logical id) as the
        Lambda SQS event its function would get, without invoking it; None when none came within
        ``wait_seconds`` (a delayed message is visible at its time). For a bench that runs the
        handler elsewhere (a fresh interpreter) with the message the pipeline really sent."""
        q = self.resources.queues[queue]
        deadline = time.time() + wait_seconds
        while True:
            got = self._sqs.receive_message(QueueUrl=q.url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"],
                                            MessageAttributeNames=["All"], WaitTimeSeconds=0).get("Messages", [])
            if got or time.time() >= deadline:
                break
            time.sleep(0.05)
        for m in got:
            self._sqs.delete_message(QueueUrl=q.url, ReceiptHandle=m["ReceiptHandle"])
        return {"Records": [self._sqs_record(m, q.arn) for m in got]} if got else None

    @staticmethod
    def _failed_ids(inv: Invocation, messages: list[dict[str, Any]], partial: bool) -> set[str]:
        """Lambda's rules: an error (or timeout) fails the batch; with ReportBatchItemFailures a
        response naming an unknown/empty itemIdentifier also fails the whole batch."""
        ids = {m["MessageId"] for m in messages}
        if inv.error is not None or inv.timed_out:
            return ids
        if not partial or not isinstance(inv.result, dict):
            return set()
        failures = inv.result.get("batchItemFailures") or []
        failed: set[str] = set()
        for item in failures:
            ident = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not ident or ident not in ids:
                return ids
            failed.add(ident)
        return failed

    def _sqs_record(self, m: dict[str, Any], queue_arn: str) -> dict[str, Any]:
        attrs = {k: str(v) for k, v in (m.get("Attributes") or {}).items()}
        msg_attrs: dict[str, Any] = {}
        for name, a in (m.get("MessageAttributes") or {}).items():
            entry: dict[str, Any] = {
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": a["DataType"],
            }
            if "StringValue" in a:
                entry["stringValue"] = a["StringValue"]
            if "BinaryValue" in a:
                entry["binaryValue"] = base64.b64encode(a["BinaryValue"]).decode()
            msg_attrs[name] = entry
        record: dict[str, Any] = {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": attrs,
            "messageAttributes": msg_attrs,
            "md5OfBody": m.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": self.resources.region,
        }
        if "MD5OfMessageAttributes" in m:
            record["md5OfMessageAttributes"] = m["MD5OfMessageAttributes"]
        return record

    def queue_depth(self, queue: str, *, delayed: bool = True) -> int:
        """Messages in a queue (logical id): visible + in flight (+ delayed, unless ``delayed``
        is False: a delayed message is work scheduled for later, not work waiting now)."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        if delayed:
            names.append("ApproximateNumberOfMessagesDelayed")
        got = self._sqs.get_queue_attributes(QueueUrl=self.resources.queues[queue].url,
                                             AttributeNames=names)["Attributes"]
        return sum(int(got.get(n, 0)) for n in names)

    def run_until_idle(self, timeout: float = 30.0, *, until_delayed: bool = False) -> int:
        """Deliver until every mapped queue is empty; returns messages delivered. Delayed
        messages (FollowUpQueue's) are delivered when their time comes but count as idle,
        unless ``until_delayed``: then their time is waited for too.

        Raises TimeoutError when queues are still busy after ``timeout`` seconds (a message
        in flight elsewhere, a delay, or handlers that keep feeding each other)."""
        deadline = time.time() + timeout
        delivered = 0
        mapped = {m.queue for m in self.resources.event_sources if m.enabled}
        while True:
            n = self.deliver()
            delivered += n
            if n == 0 and all(self.queue_depth(q, delayed=until_delayed) == 0 for q in mapped):
                return delivered
            if time.time() > deadline:
                busy = {q: self.queue_depth(q) for q in mapped}
                raise TimeoutError(f"queues not idle after {timeout}s: {busy}")
            if n == 0:
                time.sleep(0.01)

    # ---- background loop (make up) ------------------------------------------------------

    def start_loop(self, *, schedule_interval: float | None = None, poll_interval: float = 0.2) -> None:
        """Deliver forever in a background thread: schedule ticks (at the template's rate, or every
        ``schedule_interval`` seconds) and SQS batches every ``poll_interval`` seconds."""
        if self._loop is not None:
            return
        next_tick: dict[int, float] = {i: time.time() for i in range(len(self.resources.schedules))}

        def loop() -> None:
            while not self._stop.is_set():
                now = time.time()
                for i, sched in enumerate(self.resources.schedules):
                    interval = schedule_interval or sched.interval_seconds
                    if sched.enabled and interval and now >= next_tick[i]:
                        next_tick[i] = now + interval
                        try:
                            self.tick(sched.function)
                        except Exception:  # noqa: BLE001 - keep the loop alive
                            traceback.print_exc()
                try:
                    if self.deliver() == 0:
                        self._stop.wait(poll_interval)
                except Exception:  # noqa: BLE001
                    traceback.print_exc()
                    self._stop.wait(1.0)

        self._loop = threading.Thread(target=loop, name="gitferry-local-delivery", daemon=True)
        self._loop.start()

    # ---- API Gateway ---------------------------------------------------------------------

    def start_api(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the template's API routes on a loopback port; returns the base URL."""
        if self._api is None:
            self._api = _ApiServer(self, host, port)
            self._api.start()
        return self._api.url

    @property
    def api_url(self) -> str:
        if self._api is None:
            raise RuntimeError("start_api() first")
        return self._api.url

    def match_route(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """API Gateway REST routing: literal segments beat {param}, which beats {proxy+}."""
        segments = [s for s in path.split("/") if s]
        best: tuple[tuple[int, int, int], Route, dict[str, str]] | None = None
        for route in self.resources.routes:
            if route.method not in ("ANY", method.upper()):
                continue
            params = _match(route.path, segments)
            if params is None:
                continue
            rsegs = [s for s in route.path.split("/") if s]
            literal = sum(1 for s in rsegs if not s.startswith("{"))
            greedy = any(s.endswith("+}") for s in rsegs)
            score = (0 if greedy else 1, literal, 1 if route.method != "ANY" else 0)
            if best is None or score > best[0]:
                best = (score, route, params)
        return None if best is None else (best[1], best[2])

    def api_event(
        self,
        method: str,
        raw_path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str = "127.0.0.1",
    ) -> tuple[Route, dict[str, Any]] | None:
        """The REST API proxy event (payload 1.0) API Gateway would send, or None (no route)."""
        split = urlsplit(raw_path)
        path = unquote(split.path) or "/"
        stage = self.resources.routes[0].stage if self.resources.routes else "Prod"
        if path == f"/{stage}" or path.startswith(f"/{stage}/"):
            path = path[len(stage) + 1 :] or "/"
        found = self.match_route(method, path)
        if found is None:
            return None
        route, params = found
        single: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for k, v in headers:
            single[k] = v
            multi.setdefault(k, []).append(v)
        qs = parse_qsl(split.query, keep_blank_values=True)
        q_single: dict[str, str] = {}
        q_multi: dict[str, list[str]] = {}
        for k, v in qs:
            q_single[k] = v
            q_multi.setdefault(k, []).append(v)
        text: str | None
        if not body:
            text, is_b64 = None, False
        else:
            try:
                text, is_b64 = body.decode("utf-8"), False
            except UnicodeDecodeError:
                text, is_b64 = base64.b64encode(body).decode(), True
        now = time.time()
        request_id = str(uuid.uuid4())
        lower = {k.lower(): v for k, v in single.items()}
        event = {
            "resource": route.path,
            "path": path,
            "httpMethod": method.upper(),
            "headers": single or None,
            "multiValueHeaders": multi or None,
            "queryStringParameters": q_single or None,
            "multiValueQueryStringParameters": q_multi or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": "local",
                "resourcePath": route.path,
                "httpMethod": method.upper(),
                "extendedRequestId": request_id,
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "path": f"/{route.stage}{path}",
                "accountId": self.resources.account_id,
                "protocol": "HTTP/1.1",
                "stage": route.stage,
                "domainPrefix": lower.get("host", "localhost").split(".")[0],
                "requestTimeEpoch": int(now * 1000),
                "requestId": request_id,
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": None,
                    "cognitoIdentityId": None,
                    "caller": None,
                    "sourceIp": source_ip,
                    "principalOrgId": None,
                    "accessKey": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": None,
                    "userAgent": lower.get("user-agent"),
                    "user": None,
                },
                "domainName": lower.get("host", "localhost"),
                "apiId": str(self.resources.physical.get(route.api, "local")),
            },
            "body": text,
            "isBase64Encoded": is_b64,
        }
        return route, event

    # ---- metrics + alarms ----------------------------------------------------------------

    def _collect_metrics(self, function: str, request_id: str, text: str) -> None:
        for line in text.splitlines():
            doc = alarmlib.parse_emf_line(line)
            if doc is None:
                continue
            dps = self.alarms.add_emf(doc)
            self.metrics.append(MetricRecord(function, request_id, doc, dps))
            self._put_metric_data(dps)

    def _put_metric_data(self, dps: list[alarmlib.Datapoint]) -> None:
        """Mirror datapoints into moto CloudWatch so get_metric_statistics/list_metrics see them."""
        by_ns: dict[str, list[dict[str, Any]]] = {}
        for dp in dps:
            by_ns.setdefault(dp.namespace, []).append(
                {
                    "MetricName": dp.metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dp.dimensions],
                    "Timestamp": dt.datetime.fromtimestamp(dp.timestamp, tz=dt.UTC),
                    "Value": dp.value,
                    "Unit": dp.unit if dp.unit in _CW_UNITS else "None",
                }
            )
        for ns, data in by_ns.items():
            for i in range(0, len(data), 1000):
                try:
                    self._cloudwatch.put_metric_data(Namespace=ns, MetricData=data[i : i + 1000])
                except Exception as exc:  # noqa: BLE001 - metrics mirroring must not fail an invocation
                    print(f"[local] put_metric_data failed: {exc}", file=sys.stderr)

    def evaluate_alarms(self, now: float | None = None) -> dict[str, str]:
        """Evaluate every template alarm over the captured datapoints (wall clock by default)."""
        return self.alarms.evaluate(now)

    def alarm_state(self, name: str) -> str:
        """OK / ALARM / INSUFFICIENT_DATA for an alarm (logical id or physical name)."""
        return self.alarms.alarm_state(name)

    def _on_alarm_transition(self, spec: alarmlib.AlarmSpec, transition: alarmlib.Transition) -> None:
        try:
            self._cloudwatch.set_alarm_state(
                AlarmName=spec.name, StateValue=transition.new, StateReason=transition.reason[:1023]
            )
        except Exception as exc:  # noqa: BLE001
            print(f"[local] set_alarm_state failed: {exc}", file=sys.stderr)
        if transition.actions:
            sns = self.resources.client("sns")
            message = json.dumps(alarmlib.alarm_message(spec, transition, self.resources.region, self.resources.account_id))
            for arn in transition.actions:
                if arn.startswith("arn:aws:sns:"):
                    sns.publish(
                        TopicArn=arn,
                        Subject=f'{transition.new}: "{spec.name}" in {self.resources.region}'[:100],
                        Message=message,
                    )
        print(f"[local] alarm {spec.name}: {transition.old} -> {transition.new} ({transition.reason})", file=sys.stderr)


_CW_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}


def _is_bin_dir(path: Path) -> bool:
    return path.name == "bin"


def _match(route_path: str, segments: list[str]) -> dict[str, str] | None:
    rsegs = [s for s in route_path.split("/") if s]
    params: dict[str, str] = {}
    for i, rs in enumerate(rsegs):
        m = re.fullmatch(r"\{(\w+)(\+?)\}", rs)
        if m and m.group(2):
            rest = segments[i:]
            if not rest:
                return None
            params[m.group(1)] = "/".join(rest)
            return params
        if i >= len(segments):
            return None
        if m:
            params[m.group(1)] = segments[i]
        elif rs != segments[i]:
            return None
    return params if len(rsegs) == len(segments) else None


# --------------------------------------------------------------------------- HTTP front door


class _ApiServer:
    """Loopback API Gateway: HTTP request -> proxy event -> handler -> HTTP response."""

    def __init__(self, stack: LocalStack, host: str, port: int) -> None:
        self.stack = stack
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                if outer.stack.echo:
                    sys.stderr.write(f"[api] {self.address_string()} {format % args}\n")

            def _any(self) -> None:
                outer.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _any

        self.httpd = LoopbackHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="gitferry-local-api", daemon=True)
        h, p = self.httpd.server_address[:2]
        self.url = f"http://{h}:{p}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        built = self.stack.api_event(req.command, req.path, list(req.headers.items()), body, req.client_address[0])
        if built is None:
            # What API Gateway REST answers for an unknown resource/method.
            return self._send(req, 403, {"Content-Type": "application/json"}, b'{"message":"Missing Authentication Token"}')
        route, event = built
        if route.authorization == "AWS_IAM":
            try:
                who = sigv4.verify(req.command, f"http://{req.headers.get('Host', '')}{req.path}",
                                   list(req.headers.items()), body, region=self.stack.resources.region,
                                   account_id=self.stack.resources.account_id)
            except sigv4.SigV4Refused as refused:
                return self._send(req, 403, {"Content-Type": "application/json",
                                             "x-amzn-ErrorType": sigv4.error_type(str(refused))},
                                  json.dumps({"message": str(refused)}).encode())
            event["requestContext"]["identity"].update(who.request_context())
        inv = self.stack.invoke(route.function, event, trigger="api")
        result = inv.result
        if inv.error is not None or not isinstance(result, dict) or "statusCode" not in result:
            return self._send(req, 502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}')
        headers: dict[str, str] = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        multi = result.get("multiValueHeaders") or {}
        raw_body = result.get("body") or ""
        data = base64.b64decode(raw_body) if result.get("isBase64Encoded") else str(raw_body).encode()
        self._send(req, int(result["statusCode"]), headers, data, multi)

    @staticmethod
    def _send(
        req: BaseHTTPRequestHandler,
        status: int,
        headers: dict[str, str],
        data: bytes,
        multi: dict[str, list[str]] | None = None,
    ) -> None:
        req.send_response(status)
        skip = {"content-length", "connection", "transfer-encoding"}
        for k, v in headers.items():
            if k.lower() not in skip and k not in (multi or {}):
                req.send_header(k, v)
        for k, values in (multi or {}).items():
            if k.lower() in skip:
                continue
            for v in values:
                req.send_header(k, str(v))
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(data)
