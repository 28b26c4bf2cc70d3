"""template.yaml is the single wiring of gitferry: lint it, transform it with the real SAM
translator, and check the properties the design relies on (DLQs, visibility timeouts, least
privilege, the drift alarm, sample events that match their functions)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.aws import load_sam_template, sam_transform

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
STAGES = ("poll", "webhook", "render", "diff", "apply", "report", "followup", "api")
ENGINE_ENV = (
    "TABLE_NAME", "BUCKET_NAME", "RENDER_QUEUE_URL", "DIFF_QUEUE_URL", "APPLY_QUEUE_URL", "REPORT_QUEUE_URL",
    "FOLLOWUP_QUEUE_URL",
    "SECRET_PREFIX", "GIT_CACHE_DIR", "IDEMPOTENCY_TABLE_NAME", "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE", "DRIFT_CHECK_SECONDS",
)


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return load_sam_template(TEMPLATE)


@pytest.fixture(scope="module")
def cfn(sam: dict[str, Any]) -> dict[str, Any]:
    return sam_transform(sam).cfn


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_cfn_lint_reports_no_errors() -> None:
    cli = Path(sys.executable).parent / "cfn-lint"
    proc = subprocess.run([str(cli), "--format", "parseable", str(TEMPLATE)], capture_output=True, text=True, timeout=120)
    # cfn-lint exit code is a bit mask: 2 errors, 4 warnings, 8 informational.
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sam_translator_transforms_to_plain_cloudformation(cfn: dict[str, Any]) -> None:
    kinds = {v["Type"] for v in cfn["Resources"].values()}
    assert not any(k.startswith("AWS::Serverless::") for k in kinds)
    assert len(_of_type(cfn, "AWS::Lambda::Function")) == len(STAGES)
    assert len(_of_type(cfn, "AWS::Lambda::EventSourceMapping")) == 5
    assert len(_of_type(cfn, "AWS::Lambda::LayerVersion")) == 3


def test_globals_and_function_settings(sam: dict[str, Any], cfn: dict[str, Any]) -> None:
    g = sam["Globals"]["Function"]
    assert (g["Runtime"], g["Architectures"], g["Handler"], g["Tracing"]) == ("python3.12", ["x86_64"], "app.handler", "Active")
    fns = _of_type(cfn, "AWS::Lambda::Function")
    for lid, fn in fns.items():
        env = fn["Properties"]["Environment"]["Variables"]
        assert set(ENGINE_ENV) <= set(env), (lid, set(ENGINE_ENV) - set(env))
        assert env["POWERTOOLS_SERVICE_NAME"] == env["POWERTOOLS_METRICS_NAMESPACE"] == "gitferry"
        assert env["SECRET_PREFIX"] == "gitferry/" and env["GIT_CACHE_DIR"] == "/tmp/gitferry-git"
        assert env["DRIFT_CHECK_SECONDS"] == {"Ref": "DriftCheckSeconds"}
    assert sam["Parameters"]["DriftCheckSeconds"]["Default"] == 180
    render = fns["RenderFunction"]["Properties"]
    assert (render["MemorySize"], render["Timeout"], render["EphemeralStorage"]["Size"]) == (1024, 300, 3072)
    assert fns["ApplyFunction"]["Properties"]["Timeout"] == 900
    layers = {lid: [lay["Ref"].rstrip("0123456789abcdef") for lay in fn["Properties"].get("Layers", [])] for lid, fn in fns.items()}
    assert layers["RenderFunction"] == ["CoreLayer", "ToolsLayer", "ClusterLayer"]  # ClusterLayer: Helm lookup
    assert layers["DiffFunction"] == layers["ApplyFunction"] == ["CoreLayer", "ClusterLayer"]
    assert all("ToolsLayer" not in v for k, v in layers.items() if k != "RenderFunction")
    assert all(v[0] == "CoreLayer" for v in layers.values())


def test_every_code_uri_and_layer_content_uri(sam: dict[str, Any]) -> None:
    spec = importlib.util.spec_from_file_location("gitferry_tools_package_t", ROOT / "tools" / "package.py")
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = package  # dataclasses look their module up while it executes
    spec.loader.exec_module(package)
    LAYERS = package.LAYERS  # noqa: N806

    for lid, res in sam["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            code = ROOT / res["Properties"]["CodeUri"]
            assert code.is_dir(), f"{lid}: CodeUri {code} missing"
            assert (code / "app.py").is_file(), f"{lid}: {code}/app.py missing"
        if res["Type"] == "AWS::Serverless::LayerVersion":
            # Built by tools/package.py (make package) under the very path the template names.
            name = Path(res["Properties"]["ContentUri"]).name
            assert res["Properties"]["ContentUri"] == f"build/layers/{name}" and name in LAYERS, lid


def test_event_triggers(cfn: dict[str, Any]) -> None:
    rules = _of_type(cfn, "AWS::Events::Rule")
    assert [r["Properties"]["ScheduleExpression"] for r in rules.values()] == ["rate(1 minute)"]
    assert rules["PollFunctionTick"]["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["PollFunction", "Arn"]}
    for lid, esm in _of_type(cfn, "AWS::Lambda::EventSourceMapping").items():
        p = esm["Properties"]
        assert p["FunctionResponseTypes"] == ["ReportBatchItemFailures"], lid
        # Apply takes one operation per invocation (it may wait for a wave); the rest batch ten.
        assert p["BatchSize"] == (1 if "ApplyFunction" in lid else 10), lid
    paths = cfn["Resources"]["ServerlessRestApi"]["Properties"]["Body"]["paths"]
    assert set(paths["/webhooks/{provider}"]) == {"post"}
    assert set(paths["/api/{proxy+}"]) == {"x-amazon-apigateway-any-method"}
    assert set(paths["/"]) == {"get"}


def test_every_stage_queue_is_fifo_with_a_dlq_and_enough_visibility(cfn: dict[str, Any]) -> None:
    queues = _of_type(cfn, "AWS::SQS::Queue")
    fns = _of_type(cfn, "AWS::Lambda::Function")
    consumers = {
        esm["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]: esm["Properties"]["FunctionName"]["Ref"]
        for esm in _of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    }
    dlqs = {q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] for q in queues.values() if "RedrivePolicy" in q["Properties"]}
    assert set(consumers) == {"RenderQueue", "DiffQueue", "ApplyQueue", "ReportQueue", "FollowUpQueue"}
    for lid, q in queues.items():
        p = q["Properties"]
        if lid.startswith("FollowUp"):  # standard: FIFO queues take no per-message DelaySeconds
            assert "FifoQueue" not in p and "ContentBasedDeduplication" not in p, lid
        else:
            assert p["FifoQueue"] is True and p["ContentBasedDeduplication"] is True, lid
        if lid in dlqs:
            continue
        assert p["RedrivePolicy"]["maxReceiveCount"] == 5, lid
        timeout = fns[consumers[lid]]["Properties"]["Timeout"]
        assert p["VisibilityTimeout"] >= 6 * timeout, (lid, p["VisibilityTimeout"], timeout)
    assert set(queues) == set(consumers) | dlqs and len(dlqs) == len(consumers)


def test_state_table_bucket_and_idempotency_table(cfn: dict[str, Any]) -> None:
    table = cfn["Resources"]["StateTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    [gsi] = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "byType" and [k["AttributeName"] for k in gsi["KeySchema"]] == ["type", "name"]
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True
    idem = cfn["Resources"]["IdempotencyTable"]["Properties"]
    assert idem["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert idem["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    bucket = cfn["Resources"]["ManifestBucket"]["Properties"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4


def test_drift_alarm(sam: dict[str, Any], cfn: dict[str, Any]) -> None:
    a = cfn["Resources"]["DriftAlarm"]["Properties"]
    assert (a["Namespace"], a["MetricName"], a["Statistic"], a["Period"]) == ("gitferry", "OutOfSyncApps", "Maximum", 60)
    assert a["Dimensions"] == [{"Name": "service", "Value": "gitferry"}]  # what Powertools Metrics emits
    assert a["EvaluationPeriods"] == {"Ref": "DriftAlarmPeriods"} and sam["Parameters"]["DriftAlarmPeriods"]["Default"] == 3
    assert (a["Threshold"], a["ComparisonOperator"], a["TreatMissingData"]) == (1, "GreaterThanOrEqualToThreshold", "notBreaching")
    assert a["AlarmActions"] == [{"Ref": "AlarmTopic"}] and cfn["Resources"]["AlarmTopic"]["Type"] == "AWS::SNS::Topic"


def _statements(cfn: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for lid, role in _of_type(cfn, "AWS::IAM::Role").items():
        for pol in role["Properties"].get("Policies", []):
            if "Fn::If" in pol:  # a conditional policy (EKS parameters): its "true" branch
                pol = pol["Fn::If"][1]
            out += [(lid, st) for st in pol["PolicyDocument"]["Statement"]]
    return out


def test_least_privilege_iam(cfn: dict[str, Any]) -> None:
    statements = _statements(cfn)
    assert statements
    for lid, st in statements:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        for action in actions:
            assert action != "*" and not action.endswith(":*"), (lid, action)
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        # the one exception: ecr:GetAuthorizationToken supports only Resource "*" (docs/oci.md)
        assert "*" not in resources or actions == ["ecr:GetAuthorizationToken"], (lid, st)
        if any(a.startswith("secretsmanager:") for a in actions):
            for r in resources:
                assert r["Fn::Sub"].endswith(":secret:gitferry/*"), (lid, r)
    # Only the API may write secrets; only report may publish to the alarm topic.
    writers = {lid for lid, st in statements for a in st["Action"] if a in ("secretsmanager:CreateSecret", "secretsmanager:PutSecretValue")}
    assert writers == {"ApiFunctionRole"}
    publishers = {lid for lid, st in statements for a in st["Action"] if a == "sns:Publish"}
    assert publishers == {"ReportFunctionRole"}
    # The manifest key: render seals (data keys), diff and apply unseal, and so does the API for
    # GET .../diff (it compares again, then masks Secret values in what it answers); nobody else.
    kms = {(lid, a) for lid, st in statements
           for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]]) if a.startswith("kms:")}
    assert kms == {("RenderFunctionRole", "kms:GenerateDataKey"), ("DiffFunctionRole", "kms:Decrypt"),
                   ("ApplyFunctionRole", "kms:Decrypt"), ("ApiFunctionRole", "kms:Decrypt")}, kms
    ecr = {lid for lid, st in statements if "ecr:GetAuthorizationToken" in st["Action"]}
    assert ecr == {"PollFunctionRole", "RenderFunctionRole", "ApiFunctionRole"}, ecr
    # EKS: only the stages that reach clusters describe them / assume roles, on the ARNs given
    # as parameters (nothing at all when the parameters are empty).
    eks = {(lid, a, json.dumps(st["Resource"])) for lid, st in statements for a in st["Action"]
           if a.startswith(("eks:", "sts:"))}
    assert eks == {(f"{f}FunctionRole", a, json.dumps({"Ref": p}))
                   for f in ("Api", "Diff", "Apply")
                   for a, p in (("eks:DescribeCluster", "EksClusterArns"), ("sts:AssumeRole", "EksAssumeRoleArns"))}, eks
    rules = {r["Id"]: r for r in cfn["Resources"]["ManifestBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireUnreferencedManifests"]["Prefix"] == "manifests/"


def test_every_sample_event_matches_a_function(cfn: dict[str, Any]) -> None:
    events = sorted((ROOT / "events").glob("*.json"))
    assert {e.stem for e in events} == set(STAGES)
    fns = _of_type(cfn, "AWS::Lambda::Function")
    esm = {
        v["Properties"]["FunctionName"]["Ref"]: v["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
        for v in _of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    }
    paths = cfn["Resources"]["ServerlessRestApi"]["Properties"]["Body"]["paths"]
    for path in events:
        fn = next(lid for lid in fns if lid.removesuffix("Function").lower() == path.stem)
        assert fn in fns, path
        event = json.loads(path.read_text())
        if "Records" in event:
            queue = esm[fn]
            for rec in event["Records"]:
                fifo = "FifoQueue" in cfn["Resources"][queue]["Properties"]
                assert rec["eventSource"] == "aws:sqs" and rec["eventSourceARN"].endswith(
                    f"-{queue}.fifo" if fifo else f"-{queue}"), path
                if fifo:
                    assert rec["attributes"]["MessageGroupId"] == json.loads(rec["body"])["app"], path
        elif "httpMethod" in event:
            item = paths[event["resource"]]
            method = event["httpMethod"].lower()
            assert method in item or "x-amazon-apigateway-any-method" in item, path
            assert fn in json.dumps(next(iter(item.values()))["x-amazon-apigateway-integration"]["uri"]), path
        else:
            assert event["detail-type"] == "Scheduled Event" and fn == "PollFunction", path


def test_webhook_sample_event_is_signed() -> None:
    import hashlib
    import hmac

    event = json.loads((ROOT / "events" / "webhook.json").read_text())
    sig = event["headers"]["X-Hub-Signature-256"]
    expected = "sha256=" + hmac.new(b"gitferry-local-webhook-secret", event["body"].encode(), hashlib.sha256).hexdigest()
    assert sig == expected and re.fullmatch(r"[0-9a-f]{40}", json.loads(event["body"])["after"])
