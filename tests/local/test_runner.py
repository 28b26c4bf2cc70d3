"""The local runner against a real moto server and a real loopback HTTP server (no mocks).

The fixture stack (tests/local/fixtures/template.yaml) uses the same constructs as template.yaml:
a schedule, a FIFO SQS chain with DLQs and ReportBatchItemFailures, API events with path
parameters and {proxy+}, and an alarm on an EMF metric emitted by Powertools.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.runner import LocalStack

FIXTURE = Path(__file__).parent / "fixtures" / "template.yaml"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack.start(FIXTURE, echo=False) as s:
        s.start_api()
        yield s


def _items(stack: LocalStack, pk: str) -> dict[str, dict[str, Any]]:
    ddb = stack.resources.client("dynamodb")
    got = ddb.query(
        TableName=stack.resources.tables["Table"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
        ConsistentRead=True,
    )["Items"]
    return {i["sk"]["S"]: {k: next(iter(v.values())) for k, v in i.items()} for i in got}


def _drain(stack: LocalStack, queue: str) -> list[dict[str, Any]]:
    sqs = stack.resources.client("sqs")
    return sqs.receive_message(
        QueueUrl=stack.resources.queues[queue].url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    ).get("Messages", [])


def test_schedule_tick_runs_handler_with_template_environment_and_context(stack: LocalStack) -> None:
    [inv] = stack.tick("PingFunction")
    assert inv.error is None, inv.error
    items = _items(stack, "ping")
    item = next(i for i in items.values() if i["requestId"] == inv.request_id)
    assert item["detailType"] == "Scheduled Event" and item["source"] == "aws.events"
    schedule = stack.resources.schedules[0]
    assert json.loads(item["resources"]) == [schedule.arn] and schedule.expression == "rate(5 minutes)"
    assert item["greeting"] == "hello from gitferry"  # !Sub over AWS::StackName, resolved
    assert item["functionName"] == stack.resources.functions["PingFunction"].name
    assert item["memory"] == "256"
    assert 0 < int(item["remainingMs"]) <= 10_000  # Timeout 10 from Globals


def test_sqs_chain_across_two_queues(stack: LocalStack) -> None:
    stack.send(
        "FirstQueue",
        {"id": "chain-1", "app": "guestbook"},
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "render"}},
    )
    delivered = stack.run_until_idle(timeout=20)
    assert delivered >= 2
    body = json.loads(_items(stack, "sink")["chain-1"]["body"])
    assert body["hops"] == ["relay", "sink"]
    assert body["groupSeen"] == "guestbook"  # attributes.MessageGroupId
    assert body["sourceArn"] == stack.resources.queues["FirstQueue"].arn  # eventSourceARN
    assert body["attr"] == "render"  # messageAttributes.kind.stringValue
    assert stack.queue_depth("FirstQueue") == 0 and stack.queue_depth("SecondQueue") == 0


def test_partial_batch_failure_redelivers_only_failed_record_then_dlq(stack: LocalStack) -> None:
    stack.send("FlakyQueue", {"id": "ok-1", "app": "a"})
    stack.send("FlakyQueue", {"id": "bad-1", "app": "a", "fail": True})
    stack.send("FlakyQueue", {"id": "ok-2", "app": "b"})
    stack.run_until_idle(timeout=20)
    attempts = {k: int(v["attempts"]) for k, v in _items(stack, "flaky").items()}
    max_receive = stack.resources.queues["FlakyQueue"].max_receive_count
    assert max_receive == 3
    assert attempts["ok-1"] == 1 and attempts["ok-2"] == 1  # deleted after the first success
    assert attempts["bad-1"] == max_receive  # redelivered until maxReceiveCount
    dead = _drain(stack, "FlakyDLQ")
    assert [json.loads(m["Body"])["id"] for m in dead] == ["bad-1"]
    assert stack.queue_depth("FlakyQueue") == 0


def test_handler_exception_fails_whole_batch(stack: LocalStack) -> None:
    # A body the sink cannot parse makes the handler raise: every record of the batch goes back.
    stack.send("SecondQueue", "not json", group="broken")
    stack.run_until_idle(timeout=20)
    errors = [i for i in stack.invocations if i.function == "SinkFunction" and i.error]
    assert len(errors) == 5  # maxReceiveCount of SecondQueue
    assert [m["Body"] for m in _drain(stack, "SecondDLQ")] == ["not json"]


def test_api_round_trip_with_path_parameters_query_headers_and_body(stack: LocalStack) -> None:
    req = urllib.request.Request(
        stack.api_url + "/items/42?x=1&x=2&y=three",
        data=json.dumps({"name": "guestbook"}).encode(),
        method="POST",
        headers={"X-Test": "yes", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201
        assert resp.headers.get_all("X-Multi") == ["a", "b"]
        got = json.loads(resp.read())
    assert got["resource"] == "/items/{id}" and got["path"] == "/items/42"
    assert got["pathParameters"] == {"id": "42"}
    assert got["query"] == {"x": "2", "y": "three"} and got["multiQuery"] == {"x": ["1", "2"], "y": ["three"]}
    assert got["header"] == "yes" and got["method"] == "POST" and got["stage"] == "Prod"
    assert json.loads(got["body"]) == {"name": "guestbook"} and got["isBase64Encoded"] is False


def test_api_routing_literal_greedy_binary_and_missing(stack: LocalStack) -> None:
    # A literal route beats {id}.
    req = urllib.request.Request(stack.api_url + "/items/special", data=b"\x00\xff", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        got = json.loads(resp.read())
    assert got["resource"] == "/items/special" and got["pathParameters"] is None
    assert got["isBase64Encoded"] is True and got["body"] == "00ff"  # non-UTF-8 body arrives base64
    # {proxy+} takes the rest of the path; stage prefix accepted; base64 response decoded.
    with urllib.request.urlopen(stack.api_url + "/Prod/files/a/b/c.bin", timeout=10) as resp:
        assert resp.read() == b"\x00\xffbin"
    with urllib.request.urlopen(stack.api_url + "/files/docs/readme", timeout=10) as resp:
        assert json.loads(resp.read())["pathParameters"] == {"proxy": "docs/readme"}
    for path, method in (("/nothing", "GET"), ("/items/42", "GET"), ("/files", "GET")):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(stack.api_url + path, method=method), timeout=10)
        assert err.value.code == 403


def test_emf_capture_and_alarm_evaluation(stack: LocalStack) -> None:
    sqs = stack.resources.client("sqs")
    sns = stack.resources.client("sns")
    # Watch the alarm topic the way an operator would: an SQS subscription.
    watch_url = sqs.create_queue(QueueName="alarm-watch")["QueueUrl"]
    watch_arn = sqs.get_queue_attributes(QueueUrl=watch_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=stack.resources.topics["AlarmTopic"], Protocol="sqs", Endpoint=watch_arn)

    now = time.time()
    base = now - now % 60
    before = len(stack.metrics)

    def emit(value: float, ts: float) -> None:
        stack.send("MetricsQueue", {"value": value, "timestamp": ts}, group="m", MessageDeduplicationId=f"{ts}")
        stack.run_until_idle(timeout=20)

    alarm_name = stack.resources.physical["DriftAlarm"]
    # The runner evaluates after every invocation at wall-clock time; pinning ``now`` keeps the
    # test independent of where in the minute it runs.
    emit(1, base - 120)
    emit(3, base - 60)
    assert stack.evaluate_alarms(now=base + 2)[alarm_name] == "OK"  # two breaching periods of three
    emit(1, base + 1)
    assert stack.evaluate_alarms(now=base + 2)[alarm_name] == "ALARM"
    assert stack.alarm_state("DriftAlarm") == "ALARM"
    captured = stack.metrics[before:]
    assert [m.document["OutOfSyncApps"] for m in captured] == [[1.0], [3.0], [1.0]]
    assert all(m.function == "MetricsFunction" for m in captured)
    cw = stack.resources.client("cloudwatch")
    assert cw.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0]["StateValue"] == "ALARM"
    stats = cw.get_metric_statistics(
        Namespace="fixture",
        MetricName="OutOfSyncApps",
        Dimensions=[{"Name": "service", "Value": "fixture"}],
        StartTime=base - 180,
        EndTime=base + 60,
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert max(d["Maximum"] for d in stats) == 3.0  # datapoints are visible in moto too

    # Next period: back in sync.
    emit(0, base + 61)
    assert stack.evaluate_alarms(now=base + 62)[alarm_name] == "OK"
    assert stack.alarm_state("DriftAlarm") == "OK"
    notes = [json.loads(json.loads(m["Body"])["Message"]) for m in sqs.receive_message(QueueUrl=watch_url, MaxNumberOfMessages=10).get("Messages", [])]
    assert [n["NewStateValue"] for n in notes][-2:] == ["ALARM", "OK"]


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def real() -> Iterator[LocalStack]:
    with LocalStack.start(ROOT / "template.yaml", parameters={"DriftCheckSeconds": "45"}, echo=False) as s:
        s.start_api()
        yield s


def test_real_template_wiring(real: LocalStack) -> None:
    res = real.resources
    assert {m.function: m.queue for m in res.event_sources} == {
        "RenderFunction": "RenderQueue", "DiffFunction": "DiffQueue", "ApplyFunction": "ApplyQueue", "ReportFunction": "ReportQueue",
        "FollowUpFunction": "FollowUpQueue",
    }
    assert [(s.function, s.interval_seconds) for s in res.schedules] == [("PollFunction", 60)]
    assert {(r.method, r.path, r.function) for r in res.routes} == {
        ("POST", "/webhooks/{provider}", "WebhookFunction"), ("ANY", "/api/{proxy+}", "ApiFunction"), ("GET", "/", "ApiFunction"),
        ("GET", "/openapi.json", "ApiFunction"),
        *{("GET", page, "ApiFunction") for page in ("/applications", "/applications/{name}", "/repositories",
                                                    "/clusters", "/assets/{file}")},  # the console
    }
    for spec in res.functions.values():
        env = spec.environment
        assert env["RENDER_QUEUE_URL"] == res.queues["RenderQueue"].url and env["RENDER_QUEUE_URL"].startswith(res.endpoint)
        assert env["TABLE_NAME"] == res.tables["StateTable"] and env["BUCKET_NAME"] == res.buckets["ManifestBucket"]
        assert env["IDEMPOTENCY_TABLE_NAME"] == res.tables["IdempotencyTable"]
        assert env["DRIFT_CHECK_SECONDS"] == "45"  # parameter override reaches the functions
        tools_on_path = str(ROOT / "layers" / "tools" / "bin") in (real.environment(spec).get("PATH") or "").split(":")
        assert tools_on_path == (spec.logical_id == "RenderFunction")
    sqs = res.client("sqs")
    redrive = json.loads(sqs.get_queue_attributes(QueueUrl=res.queues["ApplyQueue"].url, AttributeNames=["All"])["Attributes"]["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": res.queues["ApplyDeadLetterQueue"].arn, "maxReceiveCount": 5}
    follow = sqs.get_queue_attributes(QueueUrl=res.queues["FollowUpQueue"].url, AttributeNames=["All"])["Attributes"]
    assert "FifoQueue" not in follow  # standard: the only kind that takes a per-message delay
    assert json.loads(follow["RedrivePolicy"])["deadLetterTargetArn"] == res.queues["FollowUpDeadLetterQueue"].arn
    for spec in res.functions.values():
        assert spec.environment["FOLLOWUP_QUEUE_URL"] == res.queues["FollowUpQueue"].url


def test_real_handlers_accept_the_sample_events(real: LocalStack) -> None:
    # events/api.json carries the token an admin put into Secrets Manager.
    real.resources.client("secretsmanager").create_secret(Name="gitferry/api-token", SecretString="gitferry-local-api-token")
    for stage in ("poll", "render", "diff", "apply", "report", "followup", "api"):
        event = json.loads((ROOT / "events" / f"{stage}.json").read_text())
        inv = real.invoke(stage, event)
        assert inv.error is None, (stage, inv.error)
        if stage == "api":
            assert inv.result["statusCode"] == 200, inv.result
    # The webhook through the loopback API Gateway, signed as in events/webhook.json.
    real.resources.client("secretsmanager").create_secret(
        Name="gitferry/webhooks/github", SecretString="gitferry-local-webhook-secret"
    )
    event = json.loads((ROOT / "events" / "webhook.json").read_text())
    headers = {k: v for k, v in event["headers"].items() if k != "Host"}
    req = urllib.request.Request(real.api_url + "/webhooks/github", data=event["body"].encode(), method="POST", headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 202
    req = urllib.request.Request(real.api_url + "/api/v1/applications",
                                 headers={"Authorization": "Bearer gitferry-local-api-token"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200 and json.loads(resp.read()) == {"items": []}


def test_handlers_are_held_to_their_roles_policies(real: LocalStack) -> None:
    """What a function's role may not do fails locally as in AWS (moto alone checks no IAM): the
    webhook may send to RenderQueue only and read, never write, gitferry's secrets."""
    import boto3
    from botocore.exceptions import ClientError

    from local import iam

    res = real.resources
    creds = real.role_credentials(res.functions["WebhookFunction"])
    session = boto3.session.Session(  # as the runner gives the webhook handler its own
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"], aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=creds["AWS_SESSION_TOKEN"], region_name=res.region)
    iam.REGISTRY.watch(session)

    def as_webhook(service: str) -> Any:
        return session.client(service, endpoint_url=res.endpoint)

    sqs = as_webhook("sqs")
    sqs.send_message(QueueUrl=res.queues["RenderQueue"].url, MessageBody="{}", MessageGroupId="g",
                     MessageDeduplicationId="iam-1")
    with pytest.raises(ClientError) as denied:
        sqs.send_message_batch(QueueUrl=res.queues["ApplyQueue"].url, Entries=[
            {"Id": "1", "MessageBody": "{}", "MessageGroupId": "g", "MessageDeduplicationId": "iam-2"}])
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert "WebhookFunction" in str(denied.value) and "sqs:SendMessage" in str(denied.value)
    secrets = as_webhook("secretsmanager")
    with pytest.raises(ClientError) as denied:
        secrets.create_secret(Name="gitferry/planted", SecretString="x")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    ddb = as_webhook("dynamodb")
    ddb.describe_table(TableName=res.tables["StateTable"])  # DynamoDBCrudPolicy on its own table
    with pytest.raises(ClientError):
        ddb.describe_table(TableName="someone-elses-table")
    # The harness's own credentials are not a function's: unchecked.
    res.client("sqs").send_message(QueueUrl=res.queues["ApplyQueue"].url, MessageBody="{}", MessageGroupId="g",
                                   MessageDeduplicationId="iam-3")
