"""Faults injected through real sockets into the local stack, and what a user then sees.

``slow`` tests (longer scenarios: retries, DLQ, redeliveries) run in ``make reliability`` only;
the others also in ``make test``.

Every test ends with :func:`assert_consistent`: no operation lease left behind, no operation
Running without something scheduled to finish it, and the DLQs holding only what the test
expects."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml

from local.faults import Fault, dynamodb_error, kube_status
from local.story import application

NOT_DRY_RUN = r"^(?!.*dryRun)"
KUBE_TIMEOUT = 2.0  # KUBE_REQUEST_TIMEOUT_SECONDS of the faulty world (conftest)
GIT_TIMEOUT = 2.0  # GIT_REQUEST_TIMEOUT_SECONDS of the faulty world (conftest)


def wave_files(tag: str) -> dict[str, str]:
    return {
        "app/first.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\ndata:\n  tag: {tag}\n",
        "app/late.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n"
                         "  annotations:\n    argocd.argoproj.io/sync-wave: '1'\n"
                         f"data:\n  tag: {tag}\n",
    }


def register(faulty: Any, name: str, *, automated: bool = True, retry: dict[str, Any] | None = None) -> str:
    repo = faulty.repo(name, wave_files("v1"))
    doc = yaml.safe_load(application(name, repo, faulty.server, automated=automated, path="app", namespace=name))
    if retry:
        doc["spec"]["syncPolicy"]["retry"] = retry
    faulty.world.api_ok("POST", "/api/v1/applications", yaml.safe_dump(doc))
    return repo


def store(faulty: Any) -> Any:
    from gitferry.blobs import ManifestStore
    from gitferry.state import StateStore

    res = faulty.world.stack.resources
    return StateStore(res.physical["StateTable"], client=res.client("dynamodb"),
                      blobs=ManifestStore(res.physical["ManifestBucket"], client=res.client("s3")))


def configmap(faulty: Any, ns: str, name: str) -> dict[str, str] | None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        return client.CoreV1Api(faulty.world.k8s).read_namespaced_config_map(name, ns).data
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def dlq_depths(faulty: Any) -> dict[str, int]:
    stack = faulty.world.stack
    return {q: stack.queue_depth(q) for q in stack.resources.queues if "DeadLetter" in q}


def assert_consistent(faulty: Any, app: str, *, dlq: dict[str, int] | None = None) -> dict[str, Any]:
    """The invariants of the brief, checked on what is stored."""
    status = faulty.world.status(app)
    op = status.get("operationState") or {}
    lease = store(faulty).get_operation(app)
    if op.get("phase") == "Running":
        # a Running operation must have a way to finish: a resume scheduled, or a lease that expires
        assert status.get("nextCheckAt") or (lease is not None and lease.expires_at > time.time()), status
    else:
        assert lease is None or lease.expires_at <= time.time(), f"lease of {app} left behind: {lease}"
    depths = dlq_depths(faulty)
    expected = {q: 0 for q in depths} | (dlq or {})
    assert depths == expected, depths
    return status


def test_no_fault_baseline_through_the_proxies(faulty: Any, outcome: Any) -> None:
    register(faulty, "calm")
    faulty.world.until("calm synced", lambda: faulty.world.status("calm").get("sync", {}).get("status") == "Synced"
                       and (faulty.world.status("calm").get("operationState") or {}).get("phase") == "Succeeded")
    assert configmap(faulty, "calm", "late") == {"tag": "v1"}
    assert faulty.kube_proxy.log and faulty.git_proxy.log and faulty.ddb_proxy.log  # really went through them
    assert_consistent(faulty, "calm")
    outcome("no fault (proxies forward)", result="Synced, Succeeded")


def test_git_server_500_shows_a_comparison_error_and_touches_nothing(faulty: Any, outcome: Any) -> None:
    rule = faulty.git_proxy.add(Fault(path=r"/gitbad\.git/", status=500, response="boom", times=None))
    register(faulty, "gitbad")
    faulty.world.tick()
    status = assert_consistent(faulty, "gitbad")
    conditions = {c["type"]: c["message"] for c in status.get("conditions", [])}
    assert "ComparisonError" in conditions and "500" in conditions["ComparisonError"], conditions
    assert status["sync"]["status"] == "Unknown" and not status.get("operationState")
    assert configmap(faulty, "gitbad", "first") is None
    cases = rule.hits
    faulty.git_proxy.clear()
    faulty.world.until("gitbad synced once git answers", lambda: (faulty.world.status("gitbad").get(
        "operationState") or {}).get("phase") == "Succeeded")
    status = assert_consistent(faulty, "gitbad")
    assert not [c for c in status.get("conditions", []) if c["type"] == "ComparisonError"]
    outcome("git server 500", cases=cases, result="ComparisonError shown, cluster untouched; synced once healed")


def test_git_server_that_hangs_times_out_into_a_comparison_error(faulty: Any, outcome: Any) -> None:
    rule = faulty.git_proxy.add(Fault(path=r"/githang\.git/", delay=3 * GIT_TIMEOUT, times=None))
    register(faulty, "githang")
    faulty.world.tick()
    status = assert_consistent(faulty, "githang")
    conditions = {c["type"]: c["message"] for c in status.get("conditions", [])}
    assert "timed out" in conditions.get("ComparisonError", "").lower(), conditions
    assert configmap(faulty, "githang", "first") is None and rule.hits >= 1
    outcome(f"git server hangs (> {GIT_TIMEOUT:g} s timeout)", cases=rule.hits,
            result="fetch timed out: ComparisonError shown, cluster untouched")


@pytest.mark.parametrize("code,reason", [(500, "InternalError"),
                                         pytest.param(429, "TooManyRequests", marks=pytest.mark.slow),
                                         pytest.param(409, "Conflict", marks=pytest.mark.slow)])
def test_kubernetes_error_mid_wave_fails_the_operation_cleanly(faulty: Any, outcome: Any, code: int,
                                                                 reason: str) -> None:
    app = f"kube{code}"
    rule = faulty.kube_proxy.add(kube_status(code, reason, f"injected {code} for late"), method="PATCH",
                                 path=NOT_DRY_RUN + rf".*/namespaces/{app}/configmaps/late", times=None)
    register(faulty, app)
    faulty.world.until(f"{app} operation finished", lambda: (faulty.world.status(app).get(
        "operationState") or {}).get("phase") in ("Failed", "Error"))
    status = assert_consistent(faulty, app)
    op = status["operationState"]
    assert f"injected {code}" in op["message"] or any(
        f"injected {code}" in (r.get("message") or "") for r in op["syncResult"]["resources"]), op
    assert configmap(faulty, app, "first") == {"tag": "v1"}  # wave 0 went in
    assert configmap(faulty, app, "late") is None  # wave 1 did not
    assert rule.hits >= 1
    outcome(f"Kubernetes API {code} mid-wave", cases=rule.hits,
            result=f"operation {op['phase']} naming the object, lease released, wave 1 not applied")


@pytest.mark.slow
def test_kubernetes_error_mid_wave_is_retried_under_sync_policy_retry(faulty: Any, outcome: Any) -> None:
    rule = faulty.kube_proxy.add(kube_status(500, "InternalError", "injected once"), method="PATCH",
                                 path=NOT_DRY_RUN + r".*/namespaces/kuberetry/configmaps/late", times=1)
    register(faulty, "kuberetry", retry={"limit": 2, "backoff": {"duration": "1s", "maxDuration": "1s"}})
    faulty.world.until("kuberetry recovered", lambda: (faulty.world.status("kuberetry").get(
        "operationState") or {}).get("phase") == "Succeeded", timeout=90)
    status = assert_consistent(faulty, "kuberetry")
    assert status["operationState"]["retryCount"] >= 1 and rule.hits == 1
    assert configmap(faulty, "kuberetry", "late") == {"tag": "v1"}
    outcome("Kubernetes API 500 once, retry policy", cases=rule.hits, result="retried, Succeeded")


def test_kubernetes_api_timeout_mid_wave_fails_the_operation_cleanly(faulty: Any, outcome: Any) -> None:
    rule = faulty.kube_proxy.add(Fault(method="PATCH", path=NOT_DRY_RUN + r".*/namespaces/kubehang/configmaps/late",
                                       delay=3 * KUBE_TIMEOUT, times=1))
    register(faulty, "kubehang")
    faulty.world.until("kubehang operation finished", lambda: (faulty.world.status("kubehang").get(
        "operationState") or {}).get("phase") in ("Failed", "Error", "Succeeded"))
    status = assert_consistent(faulty, "kubehang")
    op = status["operationState"]
    assert op["phase"] == "Failed", op
    assert "timed out" in json.dumps(op).lower(), op
    assert configmap(faulty, "kubehang", "first") == {"tag": "v1"} and rule.hits == 1
    outcome(f"Kubernetes API hangs mid-wave (> {KUBE_TIMEOUT:g} s timeout)", cases=rule.hits,
            result="request timed out, operation Failed, lease released")


@pytest.mark.slow
def test_slow_kubernetes_api_only_slows_the_sync(faulty: Any, outcome: Any) -> None:
    rule = faulty.kube_proxy.add(Fault(method="PATCH", path=NOT_DRY_RUN + r".*/namespaces/kubeslow/", delay=1.5,
                                       times=2))
    register(faulty, "kubeslow")
    faulty.world.until("kubeslow synced", lambda: (faulty.world.status("kubeslow").get(
        "operationState") or {}).get("phase") == "Succeeded")
    assert_consistent(faulty, "kubeslow")
    outcome("Kubernetes API slow (1.5 s answers)", cases=rule.hits, result="Succeeded")


def test_dynamodb_throttling_is_absorbed_by_retries(faulty: Any, outcome: Any) -> None:
    rule = faulty.ddb_proxy.add(dynamodb_error("ProvisionedThroughputExceededException", "injected throttle"),
                                header=("X-Amz-Target", r"UpdateItem|PutItem|Query|GetItem"), times=2)
    register(faulty, "throttled")
    faulty.world.until("throttled synced", lambda: (faulty.world.status("throttled").get(
        "operationState") or {}).get("phase") == "Succeeded")
    assert rule.hits == 2
    assert_consistent(faulty, "throttled")
    outcome("DynamoDB throttling (2 answers in a row)", cases=rule.hits, result="absorbed by SDK retries, Succeeded")


@pytest.mark.slow
def test_persistent_throttling_sends_the_diff_to_its_dlq_and_a_redrive_recovers(faulty: Any, outcome: Any) -> None:
    world = faulty.world
    register(faulty, "dlqapp")
    rule = faulty.ddb_proxy.add(dynamodb_error("ProvisionedThroughputExceededException", "injected throttle"),
                                header=("X-Amz-Target", r"UpdateItem"), body=r"APP#dlqapp", times=None)
    world.settle()  # render, then the diff fails to record its status on every delivery
    dlq = next(q for q in world.stack.resources.queues if "DeadLetter" in q and "Diff" in q)
    assert dlq_depths(faulty)[dlq] == 1 and rule.hits >= 5
    assert configmap(faulty, "dlqapp", "first") is None  # nothing applied without a recorded status
    assert store(faulty).get_operation("dlqapp") is None
    faulty.ddb_proxy.clear()

    # redrive, as `aws sqs start-message-move-task` does: back to the source queue, same group
    sqs = world.stack.resources.client("sqs")
    source = world.stack.resources.queues[dlq.replace("DeadLetterQueue", "Queue").replace("DLQ", "Queue")]
    msgs = sqs.receive_message(QueueUrl=world.stack.resources.queues[dlq].url, MaxNumberOfMessages=10,
                               MessageSystemAttributeNames=["All"]).get("Messages", [])
    for m in msgs:
        sqs.send_message(QueueUrl=source.url, MessageBody=m["Body"],
                         MessageGroupId=m["Attributes"]["MessageGroupId"],
                         MessageDeduplicationId=f"redrive-{m['MessageId']}")
        sqs.delete_message(QueueUrl=world.stack.resources.queues[dlq].url, ReceiptHandle=m["ReceiptHandle"])
    world.settle()
    world.until("dlqapp synced after the redrive", lambda: (world.status("dlqapp").get(
        "operationState") or {}).get("phase") == "Succeeded")
    assert_consistent(faulty, "dlqapp")
    outcome("DynamoDB throttling persistent + DLQ redrive", cases=rule.hits,
            result="diff message in DiffQueue DLQ after 5 receives, nothing applied; redriven: Succeeded")


def test_lease_conditional_failure_leaves_no_half_operation(faulty: Any, outcome: Any) -> None:
    rule = faulty.ddb_proxy.add(dynamodb_error("ConditionalCheckFailedException", "The conditional request failed"),
                                header=("X-Amz-Target", r"PutItem"), body=r'"APP#leased".*"OPERATION"|'
                                r'"OPERATION".*"APP#leased"', times=3)
    register(faulty, "leased")
    faulty.world.until("leased synced after the lease frees", lambda: (faulty.world.status("leased").get(
        "operationState") or {}).get("phase") == "Succeeded", timeout=90)
    assert rule.hits >= 1
    assert_consistent(faulty, "leased")
    outcome("DynamoDB conditional failure on the lease", cases=rule.hits,
            result="operation not started while 'held', then Succeeded")


def test_missing_manifest_blob_before_the_diff(faulty: Any, outcome: Any) -> None:
    world = faulty.world
    register(faulty, "noblob", automated=False)
    world.settle()
    diff = next(m for m in world.stack.resources.event_sources if m.function == "DiffFunction")
    diff.enabled = False  # hold the diff message while the blob disappears
    try:
        world.api_ok("POST", "/api/v1/applications/noblob/refresh")
        world.settle()
        s3 = world.stack.resources.client("s3")
        bucket = world.stack.resources.physical["ManifestBucket"]
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="manifests/").get("Contents", [])]
        for key in keys:  # expired by the lifecycle rule, or deleted by hand
            s3.delete_object(Bucket=bucket, Key=key)
    finally:
        diff.enabled = True
    world.settle()
    status = assert_consistent(faulty, "noblob")
    conditions = {c["type"]: c["message"] for c in status.get("conditions", [])}
    assert "not found" in conditions.get("ComparisonError", ""), conditions
    assert status["sync"]["status"] == "Unknown" and not status.get("operationState")
    world.until("noblob compared again", lambda: world.status("noblob")["sync"]["status"] == "OutOfSync")
    assert_consistent(faulty, "noblob")
    outcome("S3 manifest blob missing before the diff", cases=len(keys),
            result="ComparisonError naming the object, nothing applied; next tick re-renders")


def _hold(world: Any, function: str) -> Any:
    mapping = next(m for m in world.stack.resources.event_sources if m.function == function)
    mapping.enabled = False
    return mapping


def _take_messages(world: Any, queue: str) -> list[dict[str, Any]]:
    sqs = world.stack.resources.client("sqs")
    url = world.stack.resources.queues[queue].url
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"],
                                  MessageAttributeNames=["All"]).get("Messages", [])
        if not got:
            return out
        for m in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            out.append(m)


def _send_copy(world: Any, queue: str, m: dict[str, Any], dedup: str) -> None:
    world.stack.resources.client("sqs").send_message(
        QueueUrl=world.stack.resources.queues[queue].url, MessageBody=m["Body"],
        MessageGroupId=m["Attributes"]["MessageGroupId"], MessageDeduplicationId=dedup,
        MessageAttributes=m.get("MessageAttributes") or {})


@pytest.mark.slow
def test_duplicate_apply_delivery_runs_one_operation(faulty: Any, outcome: Any) -> None:
    world = faulty.world
    register(faulty, "dup", automated=False)
    world.settle()
    apply = _hold(world, "ApplyFunction")
    try:
        world.api_ok("POST", "/api/v1/applications/dup/sync")
        world.settle()
        messages = _take_messages(world, "ApplyQueue")
        assert len(messages) == 1
        for i in range(3):  # SQS is at-least-once: the same message delivered three times
            _send_copy(world, "ApplyQueue", messages[0], f"dup-{i}")
    finally:
        apply.enabled = True
    world.settle()
    world.until("dup synced", lambda: (world.status("dup").get("operationState") or {}).get("phase") == "Succeeded")
    history = world.api_ok("GET", "/api/v1/applications/dup/history")["items"]
    outcome("duplicate SQS delivery (apply x3)", cases=3, result=f"{len(history)} operations recorded (1 wanted)")
    assert len(history) == 1, history
    op = world.status("dup")["operationState"]
    assert op["operation"]["sync"]["operationId"] == json.loads(messages[0]["Body"])["operationId"]
    assert_consistent(faulty, "dup")


@pytest.mark.slow
def test_out_of_order_apply_delivery_does_not_roll_back(faulty: Any, outcome: Any) -> None:
    """Two automated decisions (v1 at creation, v2 at a refresh) whose ApplyRequests SQS
    delivers newest first: the older one is refused, the cluster stays at v2."""
    world = faulty.world
    apply = _hold(world, "ApplyFunction")
    try:
        register(faulty, "ooo")
        world.settle()
        old = _take_messages(world, "ApplyQueue")
        world.git.commit("ooo", wave_files("v2"), "v2")
        world.api_ok("POST", "/api/v1/applications/ooo/refresh")
        world.settle()
        new = _take_messages(world, "ApplyQueue")
        assert len(old) == len(new) == 1
        assert json.loads(old[0]["Body"])["decidedAt"] < json.loads(new[0]["Body"])["decidedAt"]
        _send_copy(world, "ApplyQueue", new[0], "ooo-new")
        _send_copy(world, "ApplyQueue", old[0], "ooo-old")  # the older request arrives last
    finally:
        apply.enabled = True
    world.settle()
    world.until("ooo settled", lambda: (world.status("ooo").get("operationState") or {}).get("phase")
                in ("Succeeded", "Failed", "Error"))
    status = assert_consistent(faulty, "ooo")
    outcome("out-of-order SQS delivery (older apply last)", cases=2,
            result=f"cluster at {configmap(faulty, 'ooo', 'first')} after both (v2 wanted)")
    assert configmap(faulty, "ooo", "first") == {"tag": "v2"}, "an older request rolled the cluster back"
    assert status["sync"]["revision"] == status["operationState"]["syncResult"]["revision"]
    assert status["operationState"]["operation"]["sync"]["operationId"] == json.loads(new[0]["Body"])["operationId"]
    history = world.api_ok("GET", "/api/v1/applications/ooo/history")["items"]
    assert [h["revision"] for h in history] == [json.loads(new[0]["Body"])["commit"]], history


@pytest.mark.slow
def test_lambda_dying_between_two_waves_leaves_a_resumable_operation(faulty: Any, outcome: Any) -> None:
    """The apply invocation dies right after wave 0 went in: from then on none of its DynamoDB
    or Kubernetes requests get through (wave 1 is not applied, its status writes and its lease
    release fail at once: what a killed Lambda leaves, the operation recorded Running and its
    lease held). SQS redelivers the
    message; the redelivery takes the operation over and finishes it, and at no point is it
    Running with nothing to finish it."""
    world = faulty.world
    dead: list[Fault] = []

    def die() -> None:
        dead.append(faulty.ddb_proxy.add(dynamodb_error("AccessDeniedException", "injected: the invocation is dead"),
                                         body=r"APP#killed", times=None))

    apply = _hold(world, "ApplyFunction")
    try:
        register(faulty, "killed")
        world.settle()  # render and diff: the ApplyRequest waits in ApplyQueue
    finally:
        apply.enabled = True
    faulty.kube_proxy.add(Fault(method="PATCH", path=NOT_DRY_RUN + r".*/namespaces/killed/configmaps/first",
                                times=1, then=die))
    # nor do its writes to the cluster after wave 0 (only wave 1 writes come after it)
    faulty.kube_proxy.add(Fault(method="PATCH", path=NOT_DRY_RUN + r".*/namespaces/killed/configmaps/late",
                                drop=True, times=None))
    world.stack.deliver()  # one round: the apply invocation that dies after wave 0
    faulty.clear()
    assert dead and dead[0].hits >= 1
    assert any(inv.function == "ApplyFunction" and inv.error for inv in world.stack.invocations)
    running = world.status("killed")["operationState"]
    lease = store(faulty).get_operation("killed")
    assert running["phase"] == "Running" and lease is not None and lease.expires_at > time.time()
    assert configmap(faulty, "killed", "first") == {"tag": "v1"} and configmap(faulty, "killed", "late") is None
    assert_consistent(faulty, "killed")  # Running, with a live lease that will end it at worst
    world.settle()  # the redelivery
    world.until("killed finished", lambda: (world.status("killed").get("operationState") or {}).get("phase")
                in ("Succeeded", "Failed", "Error"), timeout=120)
    status = assert_consistent(faulty, "killed")
    op = status["operationState"]
    outcome("Lambda dies between two waves (DynamoDB lost)", cases=dead[0].hits,
            result=f"redelivery took the operation over: {op['phase']}, DLQs "
                   f"{({k: v for k, v in dlq_depths(faulty).items() if v})}")
    assert op["phase"] == "Succeeded", op
    assert op["operation"]["sync"]["operationId"] == running["operation"]["sync"]["operationId"]  # the same one
    assert configmap(faulty, "killed", "late") == {"tag": "v1"}
    assert len(world.api_ok("GET", "/api/v1/applications/killed/history")["items"]) == 1
