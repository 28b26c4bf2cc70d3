"""The AWS half of the local stack: moto in server mode plus the resources of template.yaml.

Why this shape: the cloud wiring lives in ONE place, ``template.yaml``. Instead of a second,
hand-written description of tables and queues for the laptop, we run the real SAM translator
(the same code CloudFormation's ``AWS::Serverless`` transform runs) over the template and create
what comes out of it in moto: tables with their GSIs and TTL, FIFO queues with their DLQ redrive,
the bucket, the SNS topic, the alarms, the schedule rules. The functions' environments, event
source mappings, schedules and API routes are read from the same transformed template, with
every ``Ref``/``GetAtt``/``Sub`` resolved to the moto resources, so the runner cannot drift
from what ``sam deploy`` would create.

moto never fires schedules, never invokes functions from queues and never evaluates alarms:
``local/runner.py`` and ``local/alarms.py`` do that from the :class:`Resources` returned here.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"
STACK_NAME = "gitferry"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


# --------------------------------------------------------------------------- moto server


class MotoServer:
    """A moto server on a free loopback port (port 0), so parallel test workers never collide."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, verbose: bool = False) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        if not verbose:  # werkzeug logs every request to stderr; the runner's output is what matters
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=verbose)
        self.endpoint = ""

    def start(self) -> MotoServer:
        from local import motoddb, motosqs, motosts

        motosts.install()  # presigned STS GetCallerIdentity answered as AWS does (EKS tokens)
        motosqs.install()  # a send to a deep queue costs what a send to an empty one does, as in SQS
        motoddb.install()  # DynamoDB items serialised as the JSON they already are, not walked
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        # moto keeps its backends in process-wide globals, whatever server serves them: a second
        # stack in the same process (the next test module, the next demo run) would find the last
        # one's tables, queues and secrets. Start every server from an empty account.
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=30).read()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_moto(host: str = "127.0.0.1", port: int = 0) -> MotoServer:
    """Start moto on ``host:port`` (0 = any free port); ``.endpoint`` is its URL."""
    return MotoServer(host, port).start()


def client(service: str, endpoint: str, region: str = REGION) -> Any:
    """A boto3 client bound to moto with dummy credentials (never the caller's real ones)."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
    )


# --------------------------------------------------------------------------- template + SAM transform


def load_sam_template(path: Path | str) -> dict[str, Any]:
    """Parse a SAM/CloudFormation YAML template; short-form tags (!Ref, !Sub ...) become long form."""
    from samtranslator.yaml_helper import yaml_parse

    return dict(yaml_parse(Path(path).read_text()))


@dataclass
class Transformed:
    """The CloudFormation template the SAM transform produced, plus the local code paths
    that had to be swapped for dummy S3 URIs (the translator accepts only s3:// locations)."""

    cfn: dict[str, Any]
    code_uris: dict[str, str]  # function logical id -> CodeUri as written (relative to the template)
    content_uris: dict[str, str]  # SAM layer logical id -> ContentUri as written


def sam_transform(
    sam: dict[str, Any], parameters: dict[str, Any] | None = None, region: str = REGION
) -> Transformed:
    """Run the real SAM translator with no AWS access: a region-only boto3 session and an empty
    managed-policy map (the template names managed policies by ARN only, if at all)."""
    import boto3 as _boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    sam = copy.deepcopy(sam)
    globals_fn = sam.get("Globals", {}).get("Function", {})
    code_uris: dict[str, str] = {}
    content_uris: dict[str, str] = {}
    for logical_id, res in sam.get("Resources", {}).items():
        props = res.setdefault("Properties", {})
        if res.get("Type") == "AWS::Serverless::Function":
            uri = props.get("CodeUri", globals_fn.get("CodeUri"))
            if isinstance(uri, str) and not uri.startswith("s3://"):
                code_uris[logical_id] = uri
                props["CodeUri"] = f"s3://local-code/{logical_id}"
        elif res.get("Type") == "AWS::Serverless::LayerVersion":
            uri = props.get("ContentUri")
            if isinstance(uri, str) and not uri.startswith("s3://"):
                content_uris[logical_id] = uri
                props["ContentUri"] = f"s3://local-code/{logical_id}"
    params = dict(parameters or {})
    to_py27_compatible_template(sam, params)
    translator = Translator(None, Parser(), boto_session=_boto3.Session(region_name=region))
    cfn = translator.translate(sam, params, passthrough_metadata=True, get_managed_policy_map=lambda: {})
    return Transformed(undo_mark_unicode_str_in_template(cfn), code_uris, content_uris)


# --------------------------------------------------------------------------- intrinsic functions


class Resolver:
    """Evaluates CloudFormation intrinsics against known physical ids and attributes.

    Only what templates like ours use: Ref, Fn::GetAtt, Fn::Sub (both forms), Fn::Join,
    Fn::Select, Fn::Split, Fn::If / Equals / Not / And / Or, Condition, Fn::FindInMap,
    Fn::GetAZs, Fn::Base64, AWS::NoValue. An unknown reference raises instead of guessing."""

    NO_VALUE = object()

    def __init__(self, template: dict[str, Any], parameters: dict[str, Any], pseudo: dict[str, str]) -> None:
        self.template = template
        self.refs: dict[str, Any] = dict(pseudo)
        for name, decl in template.get("Parameters", {}).items():
            if name in parameters:
                value = parameters[name]
            elif "Default" in decl:
                value = decl["Default"]
            else:
                raise KeyError(f"parameter {name} has no default and no value")
            if decl.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                value = [v.strip() for v in value.split(",")]  # as CloudFormation ("" -> [""])
            self.refs[name] = str(value) if not isinstance(value, list) else value
        self.attrs: dict[str, dict[str, Any]] = {}
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.template.get("Conditions", {})[name]))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            out = [self.resolve(v) for v in value]
            return [v for v in out if v is not self.NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            fn = self._FUNCTIONS.get(key)
            if fn is not None:
                return fn(self, arg)
        out = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not self.NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return self.NO_VALUE
        if name not in self.refs:
            raise KeyError(f"Ref {name}: not created (yet)")
        return self.refs[name]

    def _getatt(self, arg: Any) -> Any:
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        logical, attr = arg[0], self.resolve(arg[1])
        try:
            return self.attrs[logical][attr]
        except KeyError:
            raise KeyError(f"GetAtt {logical}.{attr}: unknown") from None

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, local_vars = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text, local_vars = arg, {}

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local_vars:
                return str(local_vars[name])
            if "." in name and name.split(".", 1)[0] in self.attrs:
                return str(self._getatt(name))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def _join(self, arg: Any) -> str:
        sep, items = arg
        return str(sep).join(str(x) for x in self.resolve(items))

    def _select(self, arg: Any) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]

    def _split(self, arg: Any) -> list[str]:
        sep, text = arg
        return str(self.resolve(text)).split(sep)

    def _if(self, arg: Any) -> Any:
        name, yes, no = arg
        return self.resolve(yes if self.condition(name) else no)

    def _equals(self, arg: Any) -> bool:
        a, b = self.resolve(arg)
        return str(a) == str(b)

    def _not(self, arg: Any) -> bool:
        return not self.resolve(arg[0])

    def _and(self, arg: Any) -> bool:
        return all(self.resolve(a) for a in arg)

    def _or(self, arg: Any) -> bool:
        return any(self.resolve(a) for a in arg)

    def _condition_ref(self, arg: Any) -> bool:
        return self.condition(arg)

    def _find_in_map(self, arg: Any) -> Any:
        m, k1, k2 = (self.resolve(a) for a in arg)
        return self.template["Mappings"][m][k1][k2]

    def _get_azs(self, arg: Any) -> list[str]:
        region = self.resolve(arg) or self.refs["AWS::Region"]
        return [f"{region}a", f"{region}b", f"{region}c"]

    def _base64(self, arg: Any) -> str:
        import base64

        return base64.b64encode(str(self.resolve(arg)).encode()).decode()

    _FUNCTIONS: dict[str, Callable[[Resolver, Any], Any]] = {
        "Ref": _ref,
        "Fn::GetAtt": _getatt,
        "Fn::Sub": _sub,
        "Fn::Join": _join,
        "Fn::Select": _select,
        "Fn::Split": _split,
        "Fn::If": _if,
        "Fn::Equals": _equals,
        "Fn::Not": _not,
        "Fn::And": _and,
        "Fn::Or": _or,
        "Condition": _condition_ref,
        "Fn::FindInMap": _find_in_map,
        "Fn::GetAZs": _get_azs,
        "Fn::Base64": _base64,
    }


def references(value: Any) -> Iterator[str]:
    """Logical ids a template fragment depends on (Ref, GetAtt, ${X} / ${X.Attr} in Sub)."""
    if isinstance(value, list):
        for v in value:
            yield from references(v)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                yield arg
            elif key == "Fn::GetAtt":
                yield (arg.split(".", 1)[0] if isinstance(arg, str) else arg[0])
            elif key == "Fn::Sub":
                text = arg[0] if isinstance(arg, list) else arg
                for name in re.findall(r"\$\{([^}!][^}]*)\}", text):
                    yield name.split(".", 1)[0]
                if isinstance(arg, list):
                    yield from references(arg[1])
            else:
                yield from references(arg)


# --------------------------------------------------------------------------- what the runner needs


@dataclass
class FunctionSpec:
    """One AWS::Lambda::Function as the runner must reproduce it."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    runtime: str
    timeout: int
    memory_mb: int
    environment: dict[str, str]
    layers: list[str]  # transformed layer logical ids
    layer_paths: list[Path]  # Metadata.LocalPath of those layers, resolved (may be empty)
    role_arn: str | None = None  # the execution role (Lambda gives the function its credentials)
    role_policies: list[dict[str, Any]] = field(default_factory=list)  # its resolved inline Policies


@dataclass
class QueueSpec:
    logical_id: str
    name: str
    url: str
    arn: str
    fifo: bool
    visibility_timeout: int
    dead_letter_arn: str | None
    max_receive_count: int | None


@dataclass
class EventSourceMapping:
    """SQS -> function, as AWS::Lambda::EventSourceMapping says."""

    function: str  # function logical id
    queue: str  # queue logical id
    queue_url: str
    queue_arn: str
    batch_size: int
    report_batch_item_failures: bool
    enabled: bool = True


@dataclass
class Schedule:
    rule: str  # rule logical id
    name: str
    arn: str
    expression: str
    function: str
    enabled: bool = True
    input: str | None = None

    @property
    def interval_seconds(self) -> float | None:
        """rate(N unit) in seconds; None for cron() (the runner only ticks rates on its own)."""
        m = re.fullmatch(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)", self.expression.strip())
        if not m:
            return None
        unit = {"minute": 60, "hour": 3600, "day": 86400}[m.group(2).rstrip("s")]
        return int(m.group(1)) * unit


@dataclass
class Route:
    """One API Gateway REST method (aws_proxy integration) from the RestApi's OpenAPI body."""

    api: str  # RestApi logical id
    method: str  # GET, POST ... or ANY
    path: str  # resource path, e.g. /webhooks/{provider}
    function: str  # function logical id
    stage: str = "Prod"
    authorization: str = "NONE"  # or AWS_IAM: API Gateway checks a SigV4 signature first (local/sigv4.py)


@dataclass
class Resources:
    """Everything created in moto for one template, and the wiring the runner needs."""

    endpoint: str
    region: str
    account_id: str
    stack_name: str
    template_path: Path
    cfn: dict[str, Any]
    parameters: dict[str, str]
    physical: dict[str, Any] = field(default_factory=dict)  # logical id -> Ref value
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> GetAtt values
    tables: dict[str, str] = field(default_factory=dict)  # logical id -> table name
    queues: dict[str, QueueSpec] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)  # logical id -> topic ARN
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> resolved properties
    secrets: dict[str, str] = field(default_factory=dict)  # logical id -> secret ARN
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    event_sources: list[EventSourceMapping] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return client(service, self.endpoint, self.region)

    def queue_by_arn(self, arn: str) -> QueueSpec:
        for q in self.queues.values():
            if q.arn == arn:
                return q
        raise KeyError(arn)

    def function_named(self, name: str) -> FunctionSpec:
        """Look a function up by logical id (``RenderFunction``), physical name, or stage (``render``)."""
        if name in self.functions:
            return self.functions[name]
        for spec in self.functions.values():
            if name in (spec.name, spec.logical_id.removesuffix("Function").lower()):
                return spec
        raise KeyError(f"no function {name!r}; have {sorted(self.functions)}")


# --------------------------------------------------------------------------- creation


def _physical_name(stack: str, logical_id: str, *, lower: bool = False, max_len: int = 80) -> str:
    name = f"{stack}-{logical_id}"
    return (name.lower() if lower else name)[:max_len]


def _bool(value: Any) -> bool:
    return str(value).lower() == "true"


def _attr_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _topological(resources: dict[str, Any]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(lid: str) -> None:
        if state.get(lid) == 2:
            return
        if state.get(lid) == 1:
            raise ValueError(f"circular dependency through {lid}")
        state[lid] = 1
        res = resources[lid]
        deps = set(references(res.get("Properties", {})))
        depends_on = res.get("DependsOn", [])
        deps.update([depends_on] if isinstance(depends_on, str) else depends_on)
        for dep in sorted(deps):
            if dep in resources and dep != lid:
                visit(dep)
        state[lid] = 2
        order.append(lid)

    for lid in sorted(resources):
        visit(lid)
    return order


class _Creator:
    """Creates one transformed template's resources in moto, in dependency order."""

    def __init__(self, res: Resources, resolver: Resolver) -> None:
        self.res = res
        self.r = resolver
        self.region = res.region
        self.account = res.account_id

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def create(self, lid: str, decl: dict[str, Any]) -> None:
        kind = decl["Type"]
        props = self.r.resolve(decl.get("Properties", {}))
        method = getattr(self, "_" + kind.replace("::", "_").lower(), None)
        if method is not None:
            ref, attrs = method(lid, props)
        else:
            ref, attrs = self._passive(lid, kind, props)
        self.r.refs[lid] = ref
        self.r.attrs[lid] = attrs
        self.res.physical[lid] = ref
        self.res.attributes[lid] = attrs

    def _passive(self, lid: str, kind: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        if kind == "AWS::IAM::Role":
            name = props.get("RoleName") or _physical_name(self.res.stack_name, lid, max_len=64)
            return name, {"Arn": f"arn:aws:iam::{self.account}:role/{name}", "RoleId": f"AROA{lid[:16].upper()}"}
        if kind == "AWS::ApiGateway::RestApi":
            api_id = re.sub(r"[^a-z0-9]", "", lid.lower())[:10] or "api"
            return api_id, {"RootResourceId": "root"}
        if kind == "AWS::Lambda::LayerVersion":
            name = props.get("LayerName") or _physical_name(self.res.stack_name, lid)
            return self.arn("lambda", f"layer:{name}:1"), {}
        return f"{self.res.stack_name}-{lid}", {"Arn": self.arn("local", lid)}

    # -- AWS::Lambda::Function: recorded, not created (moto would need Docker to invoke it)
    def _aws_lambda_function(self, lid: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("FunctionName") or _physical_name(self.res.stack_name, lid, max_len=64)
        return name, {"Arn": self.arn("lambda", f"function:{name}")}

    def _aws_dynamodb_table(self, lid: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        ddb = self.res.client("dynamodb")
        name = props.get("TableName") or _physical_name(self.res.stack_name, lid, max_len=255)
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if kwargs["BillingMode"] == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = props.get(
                "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            )
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification", "SSESpecification"):
            if key in props:
                kwargs[key] = props[key]
        if "SSESpecification" in kwargs:
            kwargs["SSESpecification"] = {"Enabled": _bool(kwargs["SSESpecification"].get("SSEEnabled", False))}
        desc = ddb.create_table(**kwargs)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and _bool(ttl.get("Enabled", False)):
            ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
            )
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr and _bool(pitr.get("PointInTimeRecoveryEnabled", False)):
            ddb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        self.res.tables[lid] = name
        return name, {"Arn": desc["TableArn"], "StreamArn": desc.get("LatestStreamArn", "")}

    def _aws_sqs_queue(self, lid: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        sqs = self.res.client("sqs")
        fifo = _bool(props.get("FifoQueue", False))
        name = props.get("QueueName") or _physical_name(self.res.stack_name, lid, max_len=75)
        if fifo and not name.endswith(".fifo"):
            name += ".fifo"
        attrs: dict[str, str] = {}
        for key in (
            "FifoQueue",
            "ContentBasedDeduplication",
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "MaximumMessageSize",
            "ReceiveMessageWaitTimeSeconds",
            "DeduplicationScope",
            "FifoThroughputLimit",
            "RedrivePolicy",
            "SqsManagedSseEnabled",
        ):
            if key in props:
                attrs[key] = _attr_str(props[key])
        url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        arn = self.arn("sqs", name)
        redrive = props.get("RedrivePolicy")
        self.res.queues[lid] = QueueSpec(
            logical_id=lid,
            name=name,
            url=url,
            arn=arn,
            fifo=fifo,
            visibility_timeout=int(props.get("VisibilityTimeout", 30)),
            dead_letter_arn=redrive.get("deadLetterTargetArn") if redrive else None,
            max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
        )
        return url, {"Arn": arn, "QueueName": name, "QueueUrl": url}

    def _aws_s3_bucket(self, lid: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        s3 = self.res.client("s3")
        name = props.get("BucketName") or _physical_name(self.res.stack_name, lid, lower=True, max_len=63)
        if self.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region})
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]})
        if "BucketEncryption" in props:
            rules = [
                {("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v for k, v in rule.items()}
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={k: _bool(v) for k, v in props["PublicAccessBlockConfiguration"].items()},
            )
        self.res.buckets[lid] = name
        return name, {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{self.region}.amazonaws.com",
        }

    def _aws_sns_topic(self, lid: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        sns = self.res.client("sns")
        name = props.get("TopicName") or _physical_name(self.res.stack_name, lid, max_len=256)
        attributes = {k: _attr_str(props[k]) for k in ("DisplayName", "FifoTopic", "ContentBasedDeduplication") if k in props}
        arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
        self.res.topics[lid] = arn
        return arn, {"TopicArn": arn, "TopicName": name}

    def _aws_sns_subscription(self, lid: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        sns = self.res.client("sns")
        arn = sns.subscribe(TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"])[
            "SubscriptionArn"
        ]
        return arn, {"Arn": arn}

    def _aws_cloudwatch_alarm(self, lid: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        cw = self.res.client("cloudwatch")
        name = props.get("AlarmName") or _physical_name(self.res.stack_name, lid, max_len=255)
        kwargs: dict[str, Any] = {"AlarmName": name}
        for key in (
            "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions", "InsufficientDataActions",
            "MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit",
            "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator",
            "TreatMissingData", "EvaluateLowSampleCountPercentile", "Metrics", "ThresholdMetricId",
        ):
            if key in props:
                kwargs[key] = props[key]
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in kwargs:
                kwargs[key] = int(kwargs[key])
        if "Threshold" in kwargs:
            kwargs["Threshold"] = float(kwargs["Threshold"])
        if "ActionsEnabled" in kwargs:
            kwargs["ActionsEnabled"] = _bool(kwargs["ActionsEnabled"])
        cw.put_metric_alarm(**kwargs)
        self.res.alarms[lid] = kwargs
        return name, {"Arn": self.arn("cloudwatch", f"alarm:{name}")}

    def _aws_events_rule(self, lid: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        events = self.res.client("events")
        name = props.get("Name") or _physical_name(self.res.stack_name, lid, max_len=64)
        kwargs: dict[str, Any] = {"Name": name, "State": props.get("State", "ENABLED")}
        for key in ("ScheduleExpression", "EventPattern", "Description"):
            if key in props:
                kwargs[key] = props[key] if key != "EventPattern" else json.dumps(props[key])
        arn = events.put_rule(**kwargs)["RuleArn"]
        targets = props.get("Targets", [])
        if targets:
            events.put_targets(Rule=name, Targets=[{k: v for k, v in t.items() if k in ("Id", "Arn", "Input")} for t in targets])
        return name, {"Arn": arn}

    def _aws_secretsmanager_secret(self, lid: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        sm = self.res.client("secretsmanager")
        name = props.get("Name") or _physical_name(self.res.stack_name, lid, max_len=256)
        kwargs: dict[str, Any] = {"Name": name}
        if "SecretString" in props:
            kwargs["SecretString"] = props["SecretString"]
        elif "GenerateSecretString" in props:
            import secrets as _secrets

            kwargs["SecretString"] = _secrets.token_urlsafe(32)
        if "Description" in props:
            kwargs["Description"] = props["Description"]
        arn = sm.create_secret(**kwargs)["ARN"]
        self.res.secrets[lid] = arn
        return arn, {"Id": arn}

    def _aws_kms_key(self, lid: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        kms = self.res.client("kms")
        kwargs: dict[str, Any] = {k: props[k] for k in ("Description", "KeyUsage", "KeySpec") if k in props}
        if "KeyPolicy" in props:
            kwargs["Policy"] = json.dumps(props["KeyPolicy"])
        meta = kms.create_key(**kwargs)["KeyMetadata"]
        if _bool(props.get("EnableKeyRotation", False)):
            kms.enable_key_rotation(KeyId=meta["KeyId"])
        return meta["KeyId"], {"Arn": meta["Arn"], "KeyId": meta["KeyId"]}


def create_stack_resources(
    template_path: Path | str,
    endpoint: str,
    *,
    parameters: dict[str, Any] | None = None,
    stack_name: str = STACK_NAME,
    region: str = REGION,
    account_id: str = ACCOUNT_ID,
) -> Resources:
    """Create every resource of ``template_path`` in the moto server at ``endpoint``.

    Returns physical names/URLs/ARNs and each function's fully resolved environment, so that
    handlers see exactly the variables CloudFormation would give them."""
    template_path = Path(template_path).resolve()
    sam = load_sam_template(template_path)
    tx = sam_transform(sam, parameters, region)
    cfn = tx.cfn
    pseudo = {
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::StackName": stack_name,
        "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/local",
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NotificationARNs": [],
    }
    resolver = Resolver(cfn, {k: v for k, v in (parameters or {}).items()}, pseudo)
    res = Resources(
        endpoint=endpoint,
        region=region,
        account_id=account_id,
        stack_name=stack_name,
        template_path=template_path,
        cfn=cfn,
        parameters={k: _param_text(resolver.refs[k]) for k in cfn.get("Parameters", {})},
    )
    creator = _Creator(res, resolver)
    resources = cfn.get("Resources", {})
    for lid in _topological(resources):
        decl = resources[lid]
        if "Condition" in decl and not resolver.condition(decl["Condition"]):
            continue
        creator.create(lid, decl)

    base = template_path.parent
    layer_local: dict[str, Path | None] = {}
    for lid, decl in resources.items():
        if decl["Type"] == "AWS::Lambda::LayerVersion":
            local_path = (decl.get("Metadata") or {}).get("LocalPath")
            layer_local[lid] = (base / local_path) if local_path else None

    for lid, decl in resources.items():
        kind = decl["Type"]
        if kind == "AWS::Lambda::Function" and lid in res.physical:
            props = resolver.resolve(decl["Properties"])
            raw_layers = decl["Properties"].get("Layers", [])
            layer_ids = [lay["Ref"] for lay in raw_layers if isinstance(lay, dict) and "Ref" in lay]
            code_uri = tx.code_uris.get(lid)
            if code_uri is None:
                raise ValueError(f"{lid}: CodeUri must be a local directory for the local stack")
            res.functions[lid] = FunctionSpec(
                logical_id=lid,
                name=res.physical[lid],
                arn=res.attributes[lid]["Arn"],
                code_dir=(base / code_uri).resolve(),
                handler=props.get("Handler", "app.handler"),
                runtime=props.get("Runtime", "python3.12"),
                timeout=int(props.get("Timeout", 3)),
                memory_mb=int(props.get("MemorySize", 128)),
                environment={k: _attr_str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()},
                layers=layer_ids,
                layer_paths=[p for p in (layer_local.get(x) for x in layer_ids) if p is not None],
                role_arn=props.get("Role") if isinstance(props.get("Role"), str) else None,
                role_policies=_role_policies(decl["Properties"].get("Role"), resources, resolver),
            )
    arn_to_function = {spec.arn: lid for lid, spec in res.functions.items()}
    name_to_function = {spec.name: lid for lid, spec in res.functions.items()}
    for lid, decl in resources.items():
        kind = decl["Type"]
        if kind == "AWS::Lambda::EventSourceMapping":
            props = resolver.resolve(decl["Properties"])
            fn = name_to_function.get(props["FunctionName"]) or arn_to_function.get(props["FunctionName"])
            try:
                queue = res.queue_by_arn(props["EventSourceArn"])
            except KeyError:
                continue  # streams etc.: not delivered locally
            if fn is None:
                continue
            res.event_sources.append(
                EventSourceMapping(
                    function=fn,
                    queue=queue.logical_id,
                    queue_url=queue.url,
                    queue_arn=queue.arn,
                    batch_size=int(props.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                    enabled=_bool(props.get("Enabled", True)),
                )
            )
        elif kind == "AWS::Events::Rule" and "ScheduleExpression" in decl.get("Properties", {}):
            props = resolver.resolve(decl["Properties"])
            for target in props.get("Targets", []):
                fn = arn_to_function.get(target["Arn"])
                if fn is not None:
                    res.schedules.append(
                        Schedule(
                            rule=lid,
                            name=res.physical[lid],
                            arn=res.attributes[lid]["Arn"],
                            expression=props["ScheduleExpression"],
                            function=fn,
                            enabled=props.get("State", "ENABLED") == "ENABLED",
                            input=target.get("Input"),
                        )
                    )
        elif kind == "AWS::ApiGateway::RestApi":
            body = decl.get("Properties", {}).get("Body", {})
            stage = "Prod"
            for other in resources.values():
                if other["Type"] == "AWS::ApiGateway::Stage" and other["Properties"].get("RestApiId") == {"Ref": lid}:
                    stage = str(other["Properties"].get("StageName", stage))
            sigv4 = {name for name, scheme in (body.get("securityDefinitions") or {}).items()
                     if isinstance(scheme, dict) and scheme.get("x-amazon-apigateway-authtype") == "awsSigv4"}
            for path, item in body.get("paths", {}).items():
                for method, op in item.items():
                    integ = op.get("x-amazon-apigateway-integration") if isinstance(op, dict) else None
                    if not integ or integ.get("type") != "aws_proxy":
                        continue
                    fn = _function_in_uri(integ.get("uri"), res)
                    if fn is None:
                        continue
                    verb = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                    schemes = {name for req in (op.get("security") or []) for name in req}
                    res.routes.append(Route(api=lid, method=verb, path=path, function=fn, stage=stage,
                                            authorization="AWS_IAM" if schemes & sigv4 else "NONE"))
    for name, out in cfn.get("Outputs", {}).items():
        if "Condition" in out and not resolver.condition(out["Condition"]):
            continue
        try:
            res.outputs[name] = resolver.resolve(out["Value"])
        except KeyError:
            continue
    return res


def _role_policies(role: Any, resources: dict[str, Any], resolver: Resolver) -> list[dict[str, Any]]:
    """The inline policies of the role a function's ``Role: !GetAtt X.Arn`` names, resolved (the
    "true" branch of a conditional policy only when its condition holds)."""
    if not (isinstance(role, dict) and "Fn::GetAtt" in role):
        return []
    lid = role["Fn::GetAtt"][0]
    out = []
    for pol in resources.get(lid, {}).get("Properties", {}).get("Policies", []):
        if "Fn::If" in pol:
            condition, yes, no = pol["Fn::If"]
            pol = yes if resolver.condition(condition) else no
        resolved = resolver.resolve(pol)
        if isinstance(resolved, dict) and "PolicyDocument" in resolved:
            out.append(resolved)
    return out


def _function_in_uri(uri: Any, res: Resources) -> str | None:
    """The function logical id inside an aws_proxy integration URI (Fn::Sub with ${Fn.Arn})."""
    text = uri.get("Fn::Sub") if isinstance(uri, dict) else uri
    if isinstance(text, list):
        text = text[0]
    if not isinstance(text, str):
        return None
    m = re.search(r"\$\{(\w+)\.Arn\}", text)
    if m and m.group(1) in res.functions:
        return m.group(1)
    for lid, spec in res.functions.items():
        if spec.arn in text:
            return lid
    return None


def _param_text(value: Any) -> str:
    """A parameter value as CloudFormation takes it (a CommaDelimitedList joined by commas)."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)
