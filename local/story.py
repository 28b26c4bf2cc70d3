"""The guestbook story on the local stack: what `make demo` plays and the e2e tests check.

Everything is real: moto server for AWS, kubesim for the cluster, `git http-backend`
for the repository, and gitferry's own Lambda handlers wired by template.yaml
through the local runner. The story talks to gitferry the way a user does: the
management API, a signed GitHub push webhook, Git commits, and kubectl-like
changes behind gitferry's back (through the official Kubernetes client).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from local.gitserver import GitServer
from local.kubesim.server import KubeSim
from local.runner import LocalStack

WEBHOOK_SECRET = "guestbook-webhook-secret"
API_TOKEN = "local-api-token"

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: guestbook-ui
spec:
  replicas: {replicas}
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      app: guestbook-ui
  template:
    metadata:
      labels:
        app: guestbook-ui
    spec:
      containers:
      - image: {image}
        name: guestbook-ui
        ports:
        - containerPort: 80
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: guestbook-ui
spec:
  ports:
  - port: 80
    targetPort: 80
  selector:
    app: guestbook-ui
"""


def application(name: str, repo_url: str, server: str, *, automated: bool, path: str = "guestbook",
                namespace: str = "guestbook") -> str:
    """An Argo CD Application manifest, exactly as users write it."""
    doc: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "targetRevision": "HEAD", "path": path},
            "destination": {"server": server, "namespace": namespace},
            "syncPolicy": {"syncOptions": ["CreateNamespace=true"]},
        },
    }
    if automated:
        doc["spec"]["syncPolicy"]["automated"] = {"prune": True, "selfHeal": True}
    return yaml.safe_dump(doc, sort_keys=False)


@dataclass
class Step:
    title: str
    seconds: float
    observed: list[str] = field(default_factory=list)


class StoryError(AssertionError):
    """A step did not observe what it had to."""


# Called with every LocalWorld as it closes, before anything is torn down (tests/e2e/conftest.py
# checks the operation invariant there).
CLOSE_HOOKS: list[Callable[[LocalWorld], None]] = []


class LocalWorld:
    """kubesim + git server + the local stack of gitferry's handlers, in one process.

    ``real_schedule``: the poll ticks at the template's rate (every 60 s since the world started,
    as EventBridge would) and the template's own refresh / drift intervals apply; :meth:`until`
    then only delivers messages in between. Without it (the default, for quick stories) every
    :meth:`until` round ticks the poll and the drift check is every ``drift_check_seconds``.

    ``api_auth`` (template parameter ApiAuth): ``AWS_IAM`` puts the runner's SigV4 check in front
    of the /api routes (local/sigv4.py); :meth:`call` then needs signed headers.

    ``sync_wait_seconds`` (template parameter SyncWaitSeconds): how long one apply invocation
    waits for a wave or hook. The local runner runs one invocation at a time, so this is also how
    long an API call can wait behind an apply; kept short here, longer waits go on through the
    FollowUpQueue exactly as in AWS."""

    def __init__(self, *, drift_check_seconds: int = 2, alarm_periods: int = 3, echo: bool = False,
                 real_schedule: bool = False, sync_wait_seconds: int = 10,
                 followup_grace_seconds: int | None = None,
                 extra_env: dict[str, str] | None = None, api_auth: str = "NONE",
                 parameters: dict[str, str] | None = None) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="gitferry-local-"))
        self.kube = KubeSim(kubeconfig_path=str(self.workdir / "kubeconfig")).start()
        self.git = GitServer(self.workdir / "git").start()
        self.real_schedule = real_schedule
        extra_env_base = {
            "GIT_CACHE_DIR": str(self.workdir / "git-cache"),
            "DISCOVERY_CACHE_DIR": str(self.workdir / "discovery"),
        }
        if followup_grace_seconds is not None:  # how overdue a follow-up is before the poll re-sends it
            extra_env_base["FOLLOWUP_GRACE_SECONDS"] = str(followup_grace_seconds)
        if not real_schedule:
            extra_env_base.update({"ROLLOUT_CHECK_SECONDS": "1", "DRIFT_CHECK_SECONDS": str(drift_check_seconds)})
        self.stack = LocalStack.start(
            parameters={"DriftCheckSeconds": str(max(30, drift_check_seconds)), "DriftAlarmPeriods": str(alarm_periods),
                        "SyncWaitSeconds": str(sync_wait_seconds), "ApiAuth": api_auth, **(parameters or {})},
            extra_env={**extra_env_base, **(extra_env or {})},
            echo=echo,
        )
        poll = next(s for s in self.stack.resources.schedules if s.function == "PollFunction")
        self.poll_interval = float(poll.interval_seconds or 60)
        self.next_tick = time.monotonic() + self.poll_interval
        self.poll_ticks = 0
        self.api = self.stack.start_api()
        self._k8s: Any = None
        self.api_token = API_TOKEN
        self.put_secret("gitferry/api-token", API_TOKEN)  # what an admin does once

    def close(self) -> None:
        try:
            for hook in list(CLOSE_HOOKS):
                hook(self)
        finally:
            self._teardown()

    def _teardown(self) -> None:
        for closer in (self.stack.close, self.git.stop, self.kube.stop):
            try:
                closer()
            except Exception:  # noqa: BLE001 - close everything we can
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ talking to gitferry

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """One HTTP request to the local API Gateway; returns (status, parsed JSON body)."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        if headers is None:
            headers = {"Authorization": f"Bearer {self.api_token}"}
        req = urllib.request.Request(self.api.rstrip("/") + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                text = resp.read().decode()
                status = resp.status
        except urllib.error.HTTPError as err:
            text = err.read().decode()
            status = err.code
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def api_ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.call(method, path, body)
        if status >= 300:
            raise StoryError(f"{method} {path} answered {status}: {answer}")
        return answer

    def set_webhook_secret(self, provider: str, value: str) -> None:
        """What an admin does once: put the webhook secret into Secrets Manager."""
        self.put_secret(f"gitferry/webhooks/{provider}", value)

    def put_secret(self, name: str, value: str) -> None:
        client = self.stack.resources.client("secretsmanager")
        try:
            client.create_secret(Name=name, SecretString=value)
        except client.exceptions.ResourceExistsException:
            client.put_secret_value(SecretId=name, SecretString=value)

    def push_webhook(self, repo_url: str, sha: str, *, secret: str = WEBHOOK_SECRET, branch: str = "main") -> tuple[int, Any]:
        """A GitHub push delivery for ``sha``, signed with ``secret``."""
        body = json.dumps({
            "ref": f"refs/heads/{branch}", "before": "0" * 40, "after": sha,
            "repository": {"clone_url": repo_url, "html_url": repo_url.removesuffix(".git")},
        }).encode()
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return self.call("POST", "/webhooks/github", body, {
            "Content-Type": "application/json", "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": signature,
        })

    def subscribe_notifications(self) -> str:
        """An SQS queue subscribed (raw delivery) to the NotificationTopic, as a user's Slack
        bridge or e-mail would be; returns its URL."""
        sqs = self.stack.resources.client("sqs")
        sns = self.stack.resources.client("sns")
        url = sqs.create_queue(QueueName=f"notifications-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if "NotificationTopic" in t["TopicArn"])
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"},
                      ReturnSubscriptionArn=True)
        return url

    def notifications(self, queue_url: str) -> list[dict[str, Any]]:
        """Everything delivered so far: ``{"trigger", "app", "body"}`` per message."""
        sqs = self.stack.resources.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                      WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return out
            for m in got:
                attrs = m.get("MessageAttributes") or {}
                out.append({"trigger": attrs.get("trigger", {}).get("StringValue"),
                            "app": attrs.get("app", {}).get("StringValue"), "body": json.loads(m["Body"])})
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])

    def register_cluster(self, name: str = "local") -> str:
        # upsert: stories register their cluster again at will (a second plain POST is a 409)
        self.api_ok("POST", "/api/v1/clusters?upsert=true",
                    {"name": name, "kubeconfig": Path(self.kube.kubeconfig_path).read_text()})
        return self.kube.url

    def status(self, app: str) -> dict[str, Any]:
        return self.api_ok("GET", f"/api/v1/applications/{app}").get("status") or {}

    # ------------------------------------------------------------------ driving the pipeline

    def settle(self, timeout: float = 60.0) -> None:
        self.stack.run_until_idle(timeout=timeout)

    def tick(self) -> None:
        """One EventBridge tick of the poll function, then everything it caused."""
        self.stack.tick("PollFunction")
        self.poll_ticks += 1
        self.next_tick = time.monotonic() + self.poll_interval
        self.settle()

    def pump(self) -> None:
        """What the cloud does in a moment: the poll if its scheduled time has come (real
        schedule), then every message that is visible now (delayed ones when they are due)."""
        if self.real_schedule and time.monotonic() >= self.next_tick:
            self.tick()
        else:
            self.settle()

    def until(self, what: str, check: Callable[[], bool], timeout: float = 60.0, tick: bool = True) -> None:
        """Tick and deliver until ``check`` holds (rollouts take simulated seconds). With the
        real schedule the poll ticks only at its scheduled times, whatever ``tick`` says."""
        deadline = time.monotonic() + timeout
        while True:
            if check():
                return
            if time.monotonic() > deadline:
                raise StoryError(f"timed out waiting for {what}")
            if self.real_schedule:
                self.pump()
            elif tick:
                self.tick()
            else:
                self.settle()
            time.sleep(0.2)

    def orphaned_operations(self) -> list[str]:
        """Apps whose operation is Running with nothing to move it on: no apply holds its lease
        and it has no pending follow-up (a record plus a message waiting, visible or delayed, in
        FollowUpQueue or ApplyQueue). Empty when the invariant holds."""
        ddb = self.stack.resources.client("dynamodb")
        table = self.stack.resources.tables["StateTable"]
        waiting = sum(self.stack.queue_depth(q) for q in ("FollowUpQueue", "ApplyQueue"))
        running = []
        for item in self.api_ok("GET", "/api/v1/applications").get("items", []):
            name = item["metadata"]["name"]
            op = (item.get("status") or {}).get("operationState") or self.status(name).get("operationState") or {}
            if op.get("phase") != "Running":
                continue
            def get(sk: str, app: str = name) -> dict[str, Any] | None:
                return ddb.get_item(TableName=table, Key={"pk": {"S": f"APP#{app}"}, "sk": {"S": sk}},
                                    ConsistentRead=True).get("Item")
            lease = get("OPERATION")
            if lease is not None and float(lease["expiresAt"]["N"]) > time.time():
                continue  # being processed
            follow = get("FOLLOWUP")
            if follow is None:
                running.append(f"{name}: Running ({op.get('message')}) with no follow-up and no lease")
            else:
                running.append(name)  # needs a waiting message of its own (counted below)
        orphans = [r for r in running if ":" in r]
        if len(running) - len(orphans) > waiting:
            orphans.append(f"{len(running) - len(orphans)} Running operation(s) with a follow-up record but only "
                           f"{waiting} message(s) waiting in FollowUpQueue/ApplyQueue")
        return orphans

    # ------------------------------------------------------------------ the cluster, as kubectl would

    @property
    def k8s(self) -> Any:
        if self._k8s is None:
            from kubernetes import config

            self._k8s = config.new_client_from_config(config_file=self.kube.kubeconfig_path)
        return self._k8s

    def deployment(self, namespace: str, name: str) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.k8s).read_namespaced_deployment(name, namespace)

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        from kubernetes import client

        client.AppsV1Api(self.k8s).patch_namespaced_deployment_scale(
            name, namespace, {"spec": {"replicas": replicas}}, field_manager="kubectl")

    def service_exists(self, namespace: str, name: str) -> bool:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            client.CoreV1Api(self.k8s).read_namespaced_service(name, namespace)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    def object_count(self, namespace: str) -> int:
        """Objects of the kinds an app deploys in ``namespace`` (for "cluster untouched")."""
        from kubernetes import client

        apps = client.AppsV1Api(self.k8s)
        core = client.CoreV1Api(self.k8s)
        return (len(apps.list_namespaced_deployment(namespace).items)
                + len(core.list_namespaced_service(namespace).items)
                + len(core.list_namespaced_config_map(namespace).items))


def synced_healthy(world: LocalWorld, app: str, revision: str | None = None) -> Callable[[], bool]:
    def check() -> bool:
        st = world.status(app)
        sync, health = st.get("sync") or {}, st.get("health") or {}
        return (sync.get("status") == "Synced" and health.get("status") == "Healthy"
                and (revision is None or sync.get("revision") == revision))
    return check


def play_guestbook(world: LocalWorld, on_step: Callable[[Step], None] | None = None) -> list[Step]:
    """The five steps of the demo; raises StoryError when a step is not observed."""
    steps: list[Step] = []
    app = "guestbook"
    ns = "guestbook"

    def record(step: Step) -> None:
        steps.append(step)
        if on_step:
            on_step(step)

    # 1. repo + cluster + automated app registered through the API
    t0 = time.monotonic()
    repo = world.git.make_repo("guestbook", {
        "guestbook/guestbook-ui-deployment.yaml": DEPLOYMENT.format(replicas=1, image="gcr.io/heptio-images/ks-guestbook-demo:0.1"),
        "guestbook/guestbook-ui-svc.yaml": SERVICE,
        "README.md": "guestbook example\n",
    })
    server = world.register_cluster("local")
    world.api_ok("POST", "/api/v1/repositories", {"url": repo})
    world.set_webhook_secret("github", WEBHOOK_SECRET)
    created = world.api_ok("POST", "/api/v1/applications", application(app, repo, server, automated=True))
    record(Step("repo served over HTTP; cluster and automated app (prune, selfHeal) registered via the API",
                time.monotonic() - t0, [f"repo {repo}", f"cluster {server}", f"app {created['metadata']['name']}"]))

    # 2. next poll renders, diffs OutOfSync, applies; Synced + Healthy once rolled out
    t0 = time.monotonic()
    world.tick()
    first_commit = world.status(app).get("sync", {}).get("revision")
    world.until("Synced and Healthy", synced_healthy(world, app))
    dep = world.deployment(ns, "guestbook-ui")
    st = world.status(app)
    history = world.api_ok("GET", f"/api/v1/applications/{app}/history")["items"]
    if not history:
        raise StoryError("no sync recorded in history")
    world.tick()  # the next look records the tree with the pods the rollout made
    nodes = world.api_ok("GET", f"/api/v1/applications/{app}/resource-tree")["nodes"]
    kinds = sorted({n["kind"] for n in nodes})
    if not {"Deployment", "ReplicaSet", "Pod", "Service"} <= set(kinds):
        raise StoryError(f"resource tree lacks the rollout's objects: {kinds}")
    tree_counts = ", ".join(f"{kind} x{sum(1 for n in nodes if n['kind'] == kind)}" for kind in kinds)
    record(Step("poll -> render -> diff (OutOfSync) -> apply: Synced and Healthy", time.monotonic() - t0, [
        f"revision {str(first_commit)[:8]}", f"deployment ready {dep.status.ready_replicas}/{dep.spec.replicas}",
        f"resources {[r['kind'] + '/' + r['name'] for r in st.get('resources', [])]}", f"history entries {len(history)}",
        f"resource tree {tree_counts}",
    ]))

    # 3. new commit (new image, 3 replicas) announced by a signed GitHub webhook
    t0 = time.monotonic()
    new_image = "gcr.io/heptio-images/ks-guestbook-demo:0.2"
    sha = world.git.commit("guestbook", {
        "guestbook/guestbook-ui-deployment.yaml": DEPLOYMENT.format(replicas=3, image=new_image),
    }, "guestbook 0.2 with 3 replicas")
    status_code, answer = world.push_webhook(repo, sha)
    if status_code != 202 or not answer.get("queued"):
        raise StoryError(f"webhook answered {status_code}: {answer}")
    world.settle()
    world.until("Synced at the new commit", synced_healthy(world, app, sha))
    dep = world.deployment(ns, "guestbook-ui")
    if dep.spec.replicas != 3 or dep.spec.template.spec.containers[0].image != new_image:
        raise StoryError(f"deployment not updated: replicas {dep.spec.replicas}, image {dep.spec.template.spec.containers[0].image}")
    record(Step("signed GitHub push webhook (202) -> Synced at the new commit", time.monotonic() - t0, [
        f"webhook 202 queued {answer['queued']}", f"revision {sha[:8]}",
        f"image {new_image}, ready {dep.status.ready_replicas}/3",
    ]))

    # 4. drift: scaled behind gitferry's back -> seen at the next drift check, metric, healed, recorded
    t0 = time.monotonic()
    history_before = len(world.api_ok("GET", f"/api/v1/applications/{app}/history")["items"])
    metrics_before = len(world.stack.metrics)
    points = lambda: [d for m in world.stack.metrics[metrics_before:] for d in m.datapoints]  # noqa: E731
    world.scale(ns, "guestbook-ui", 1)
    time.sleep(float(os.environ.get("GITFERRY_DRIFT_WAIT", "2.1")))  # the drift check interval
    world.until("drift healed", lambda: world.deployment(ns, "guestbook-ui").spec.replicas == 3)
    drift_points = [d for d in points()
                    if d.metric == "OutOfSync" and d.value == 1 and d.dimension_dict.get("app") == app]
    if not drift_points:
        raise StoryError("no OutOfSync metric emitted for the drift")
    world.until("Synced and Healthy after healing", synced_healthy(world, app, sha))
    history = world.api_ok("GET", f"/api/v1/applications/{app}/history")["items"]
    if len(history) <= history_before:
        raise StoryError("the healing sync was not recorded in history")
    op = world.status(app).get("operationState") or {}
    record(Step("drift (scaled to 1 by hand) seen, OutOfSync metric emitted, self-healed, recorded",
                time.monotonic() - t0, [
                    f"OutOfSync metric datapoints {len(drift_points)}", "replicas back to 3",
                    f"history entries {len(history)} (last by {history[-1].get('initiatedBy')})",
                    f"operation {op.get('phase')}",
                ]))

    # 5. Service deleted from Git -> pruned
    t0 = time.monotonic()
    sha = world.git.commit("guestbook", {}, "drop the service", delete=["guestbook/guestbook-ui-svc.yaml"])
    world.until("Service pruned", lambda: not world.service_exists(ns, "guestbook-ui"))
    world.until("Synced after prune", synced_healthy(world, app, sha))
    op = world.status(app).get("operationState") or {}
    pruned = [r for r in (op.get("syncResult") or {}).get("resources", []) if r.get("status") == "Pruned"]
    if not pruned:
        raise StoryError(f"no Pruned result recorded: {op}")
    record(Step("Service deleted from Git -> pruned", time.monotonic() - t0, [
        f"revision {sha[:8]}", f"pruned {[r['kind'] + '/' + r['name'] for r in pruned]}",
    ]))
    return steps
