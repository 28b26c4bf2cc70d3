"""The scale rig (``make bench-scale``): a fleet on the local stack, measured per stage.

``SCALE`` apps (default 5,000) over ``SCALE / 10`` repositories and ``min(20, SCALE / 10)``
clusters, on the local stack of the e2e suite (``local.story.LocalWorld``: moto server mode,
``git http-backend``, kubesim, the handlers run by ``local/runner.py`` as Lambda would). Every
app is a directory of one ConfigMap in its repository, automated, in its own namespace.

Clusters are 20 registered clusters (names) on **one** kubesim process, each app in its own
namespace: several kubesim processes would compete with the handlers for this machine's 2
cores and measure kubesim's CPU, not gitferry's requests. What is counted per cluster (requests)
is the same either way.

Phases, each measured on its own: ``seed`` (create and first sync, not priced), ``drift`` (one
tick once every app's drift check is due, and everything it causes), ``steady`` (the next tick:
nothing due), ``burst`` (200 commits, one per repository while there are repositories, within
the minute between two ticks, then the tick and everything it causes).

Counted per phase and per stage (function): invocations and their duration p50/p90/p99, the
AWS calls of each function (a botocore ``before-call``/``after-call`` hook on each function's
own boto3 session, the one the runner hands the handler: real calls to moto, nothing mocked),
DynamoDB capacity units (1 RRU per 4 KB read, 1 WRU per 1 KB written, from the sizes of the
items sent and returned: an upper bound, as if every read were strongly consistent), messages
in flight (the deepest each queue got), git round trips (``git http-backend`` requests) and
Kubernetes requests (kubesim's request log) per drift-checked app.

moto's FIFO ``SendMessageBatch`` slowed down as a queue filled (about 1.5 s per call at 1,000
messages; real SQS does not); the local stack's moto now computes queue attributes only when
read (``local/motosqs.py``), so a send costs the same at any depth. The rig still times every SQS send call apart and reports each stage's
duration twice: as measured, and without its SQS send time (``mean_ms_without_sqs_sends``),
which is what the cost model bills (a real send takes milliseconds, which the model leaves out).

Output: a JSON document (``--out``, default ``.cache/bench-scale.json``) and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "layers" / "core")]

import boto3  # noqa: E402

from local.story import LocalWorld  # noqa: E402

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  app: '{n}'\n  rev: '{rev}'\n"
SQS_SENDS = {"SendMessage", "SendMessageBatch"}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _size(value: Any) -> int:
    return len(json.dumps(value, default=str, separators=(",", ":")))


@dataclass
class Calls:
    """AWS calls of one function: count per ``service:Operation``, capacity units, send time."""

    ops: Counter[str] = field(default_factory=Counter)
    rru: float = 0.0
    wru: float = 0.0
    sqs_send_s: float = 0.0
    sqs_fifo: int = 0
    queues: Counter[str] = field(default_factory=Counter)


class AwsCounter:
    """Counts every AWS call a function's clients make, by hooking that function's boto3 session."""

    def __init__(self) -> None:
        self.by_function: dict[str, Calls] = defaultdict(Calls)
        self._lock = threading.Lock()
        self._started: dict[int, float] = {}

    def watch(self, session: boto3.session.Session, names: dict[str, str]) -> None:
        """Count the calls of clients made from ``session``, each for the function running when it
        is made (``AWS_LAMBDA_FUNCTION_NAME``, which the runner sets per invocation; ``names`` maps
        it to the logical id); calls outside an invocation (the runner's own) count as ``runner``."""
        def keep_params(params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
            if context is not None:  # the API parameters, before they are serialised
                context["bench_params"] = dict(params)

        def before(context: dict[str, Any] | None = None, **_: Any) -> None:
            if context is not None:
                context["bench_started"] = time.perf_counter()

        def after(model: Any, parsed: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
            service, op = model.service_model.service_name, model.name
            elapsed = time.perf_counter() - (context or {}).get("bench_started", time.perf_counter())
            params = (context or {}).get("bench_params") or {}
            function = names.get(os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or "", "runner (outside invocations)")
            with self._lock:
                calls = self.by_function[function]
                calls.ops[f"{service}:{op}"] += 1
                if service == "sqs" and op in SQS_SENDS:
                    calls.sqs_send_s += elapsed
                if service == "sqs" and params.get("QueueUrl"):
                    url = str(params["QueueUrl"])
                    calls.sqs_fifo += url.endswith(".fifo")
                    calls.queues[f"{url.rsplit('/', 1)[-1]}:{op}"] += 1
                if service == "dynamodb":
                    rru, wru = _capacity(op, params, parsed)
                    calls.rru += rru
                    calls.wru += wru

        session.events.register("before-parameter-build", keep_params, unique_id="bench-scale-params")
        session.events.register("before-call", before, unique_id="bench-scale-before")
        session.events.register("after-call", after, unique_id="bench-scale-after")

    def snapshot(self) -> dict[str, Calls]:
        with self._lock:
            return {f: Calls(Counter(c.ops), c.rru, c.wru, c.sqs_send_s, c.sqs_fifo, Counter(c.queues)) for f, c in self.by_function.items()}


def _capacity(op: str, params: dict[str, Any], parsed: dict[str, Any]) -> tuple[float, float]:
    """(RRU, WRU) of one DynamoDB call, from item sizes (4 KB per read unit, 1 KB per write unit)."""
    def reads(items: list[Any]) -> float:
        return sum(max(1, math.ceil(_size(i) / 4096)) for i in items) if items else 1.0

    def write(item: Any) -> float:
        return max(1, math.ceil(_size(item) / 1024))

    if op == "GetItem":
        return (reads([parsed["Item"]]) if parsed.get("Item") else 1.0), 0.0
    if op in ("Query", "Scan"):
        return max(1.0, math.ceil(_size(parsed.get("Items") or []) / 4096)), 0.0
    if op == "BatchGetItem":
        return reads([i for items in (parsed.get("Responses") or {}).values() for i in items]), 0.0
    if op == "PutItem":
        return 0.0, write(params.get("Item"))
    if op in ("UpdateItem", "DeleteItem"):
        return 0.0, write(params.get("Key")) + write(params.get("ExpressionAttributeValues") or {}) - 1
    if op == "BatchWriteItem":
        return 0.0, sum(write(r.get("PutRequest", {}).get("Item") or r.get("DeleteRequest", {}).get("Key"))
                        for rs in (params.get("RequestItems") or {}).values() for r in rs)
    if op == "TransactWriteItems":
        return 0.0, sum(2 * write(next(iter(t.values()))) for t in params.get("TransactItems") or [])
    if op == "TransactGetItems":
        return 2 * reads([r.get("Item") for r in parsed.get("Responses") or [] if r.get("Item")]), 0.0
    return 0.0, 0.0


class Rig:
    def __init__(self, apps: int, repos: int, clusters: int, drift_seconds: int, echo: bool = False) -> None:
        self.n_apps, self.n_repos, self.n_clusters = apps, repos, clusters
        self.drift_seconds = drift_seconds
        self.world = LocalWorld(drift_check_seconds=drift_seconds, echo=echo, sync_wait_seconds=5)
        self.aws = AwsCounter()
        stack = self.world.stack
        names = {spec.name: lid for lid, spec in stack.resources.functions.items()}
        sessions = getattr(stack, "_sessions", None)  # a runner with one boto3 session per function
        if isinstance(sessions, dict):
            # made here, as the runner would at each function's first invocation, so the counter
            # sees every call from the first one
            try:
                from local import iam  # type: ignore[attr-defined]
            except ImportError:
                iam = None
            for lid in stack.resources.functions:
                session = boto3.session.Session()
                if iam is not None:
                    iam.REGISTRY.watch(session)
                self.aws.watch(session, names)
                sessions[lid] = session
        else:  # the functions' clients come from boto3's default session
            boto3.setup_default_session()
            self.aws.watch(boto3.DEFAULT_SESSION, names)
        self.repo_names = [f"fleet{r:03d}" for r in range(repos)]
        self.revs: dict[str, int] = {}
        self.phases: dict[str, dict[str, Any]] = {}

    def close(self) -> None:
        self.world.close()

    def app_name(self, n: int) -> str:
        return f"app-{n:05d}"

    def repo_of(self, n: int) -> int:
        return n % self.n_repos

    def seed(self) -> None:
        w = self.world
        kubeconfig = Path(w.kube.kubeconfig_path).read_text()
        for c in range(self.n_clusters):
            w.api_ok("POST", "/api/v1/clusters?upsert=true", {"name": f"cluster-{c:02d}", "kubeconfig": kubeconfig})
        by_repo: dict[int, list[int]] = defaultdict(list)
        for n in range(self.n_apps):
            by_repo[self.repo_of(n)].append(n)
        urls = {}
        for r, members in by_repo.items():
            urls[r] = w.git.make_repo(self.repo_names[r], {f"app{n}/cm.yaml": CONFIGMAP.format(n=n, rev=0)
                                                           for n in members})
        for n in range(self.n_apps):
            w.api_ok("POST", "/api/v1/applications", self.manifest(n, urls[self.repo_of(n)]))
        self.drain()

    def manifest(self, n: int, url: str) -> dict[str, Any]:
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": self.app_name(n), "namespace": "argocd"},
                "spec": {"project": "default",
                         "source": {"repoURL": url, "path": f"app{n}", "targetRevision": "main"},
                         "destination": {"name": f"cluster-{n % self.n_clusters:02d}", "namespace": f"ns-{n:05d}"},
                         "syncPolicy": {"automated": {"prune": True, "selfHeal": True},
                                        "syncOptions": ["CreateNamespace=true"]}}}

    def drain(self, timeout: float = 3600.0) -> dict[str, int]:
        """Deliver until every queue is idle; returns the deepest each queue got (in flight)."""
        stack = self.world.stack
        mapped = sorted({m.queue for m in stack.resources.event_sources if m.enabled})
        deepest = {q: stack.queue_depth(q, delayed=False) for q in mapped}
        deadline = time.time() + timeout
        rounds = 0
        while time.time() < deadline:
            n = stack.deliver()
            rounds += 1
            if n == 0 or rounds % 20 == 0:
                depths = {q: stack.queue_depth(q, delayed=False) for q in mapped}
                for q, d in depths.items():
                    deepest[q] = max(deepest[q], d)
                if n == 0 and not any(depths.values()):
                    return deepest
                if n == 0:
                    time.sleep(0.01)
        raise TimeoutError(f"queues not idle after {timeout}s")

    def measure(self, phase: str, action: Any, checked_apps: int | None = None) -> dict[str, Any]:
        w, stack = self.world, self.world.stack
        inv0, aws0 = len(stack.invocations), self.aws.snapshot()
        git0, kube0 = len(w.git.requests), len(w.kube.request_log)
        started = time.perf_counter()
        ticks = action()
        deepest = self.drain()
        wall = time.perf_counter() - started
        invs = stack.invocations[inv0:]
        aws1 = self.aws.snapshot()
        git = w.git.requests[git0:]
        kube_requests = len(w.kube.request_log) - kube0
        stages: dict[str, Any] = {}
        for fn in sorted({i.function for i in invs} | set(aws1)):
            durations = [i.duration_ms for i in invs if i.function == fn]
            before, after = aws0.get(fn, Calls()), aws1.get(fn, Calls())
            ops = after.ops - before.ops
            send_s = after.sqs_send_s - before.sqs_send_s
            if not durations and not ops:
                continue
            mean = statistics.fmean(durations) if durations else 0.0
            stages[fn] = {
                "invocations": len(durations),
                "errors": sum(1 for i in invs if i.function == fn and i.error),
                "p50_ms": round(percentile(durations, 50), 1), "p90_ms": round(percentile(durations, 90), 1),
                "p99_ms": round(percentile(durations, 99), 1), "mean_ms": round(mean, 1),
                "sqs_send_s": round(send_s, 3),
                "mean_ms_without_sqs_sends": round(max(0.0, mean - (send_s * 1000 / len(durations) if durations else 0)), 1),
                "aws_calls": dict(sorted(ops.items())),
                "sqs_fifo_calls": after.sqs_fifo - before.sqs_fifo,
                "sqs_calls_by_queue": dict(sorted((after.queues - before.queues).items())),
                "log_bytes": sum(len(i.output) for i in invs if i.function == fn),
                "dynamodb_rru": after.rru - before.rru, "dynamodb_wru": after.wru - before.wru,
                "memory_mb": stack.resources.functions[fn].memory_mb if fn in stack.resources.functions else None,
            }
        result = {
            "wall_s": round(wall, 2), "ticks": ticks,
            "checked_apps": checked_apps,
            "git_round_trips": len(git),
            "git_info_refs": sum(1 for q in git if "info/refs" in q[1]),
            "git_round_trips_per_tick": round(len(git) / ticks, 2) if ticks else None,
            "kubernetes_requests": kube_requests,
            "kubernetes_requests_per_checked_app": round(kube_requests / checked_apps, 2) if checked_apps else None,
            "messages_in_flight_max": deepest,
            "stages": stages,
        }
        self.phases[phase] = result
        return result

    def tick(self) -> int:
        self.world.stack.tick("PollFunction")
        return 1

    def drift(self) -> dict[str, Any]:
        """Wait until every app's drift check is due, then one tick and all it causes."""
        newest = max(r["reconciledAt"] for r in (self.world.status(self.app_name(n)) for n in (0, self.n_apps - 1)))
        from datetime import datetime
        age = (datetime.now(datetime.fromisoformat(newest).tzinfo) - datetime.fromisoformat(newest)).total_seconds()
        time.sleep(max(0.0, self.drift_seconds - age + 1.0))
        return self.measure("drift", self.tick, checked_apps=self.n_apps)

    def burst(self, commits: int = 200) -> dict[str, Any]:
        """``commits`` commits within one minute (one app each, spread over the repositories),
        then the tick that sees them and everything it causes."""
        w = self.world
        targets = [(n % self.n_repos) + self.n_repos * (n // self.n_repos) for n in range(min(commits, self.n_apps))]
        for n in targets:
            self.revs[self.app_name(n)] = self.revs.get(self.app_name(n), 0) + 1
            w.git.commit(self.repo_names[self.repo_of(n)], {f"app{n}/cm.yaml": CONFIGMAP.format(
                n=n, rev=self.revs[self.app_name(n)])}, f"burst {n}")
        return self.measure("burst", self.tick, checked_apps=len(targets))

    def check_burst_applied(self) -> list[str]:
        """Apps of the burst whose new revision did not reach the cluster (should be none)."""
        missing = []
        from kubernetes import client

        core = client.CoreV1Api(self.world.k8s)
        for name, rev in self.revs.items():
            n = int(name.split("-")[1])
            cm = core.read_namespaced_config_map("settings", f"ns-{n:05d}")
            if cm.data.get("rev") != str(rev):
                missing.append(name)
        return missing


def custom_metrics(records: list[Any], apps: int) -> dict[str, float]:
    """Distinct CloudWatch metrics (namespace, name, dimension values) the EMF lines created:
    those without an ``app`` dimension (``fleet``) and those with one, per app (``per_app``)."""
    seen: set[tuple[Any, ...]] = set()
    for record in records:
        doc = record.document
        for directive in (doc.get("_aws") or {}).get("CloudWatchMetrics") or []:
            for dims in directive.get("Dimensions") or [[]]:
                values = tuple((d, str(doc.get(d))) for d in dims)
                for metric in directive.get("Metrics") or []:
                    seen.add((directive.get("Namespace"), metric.get("Name"), values))
    per_app = sum(1 for m in seen if any(d == "app" for d, _ in m[2]))
    return {"fleet": len(seen) - per_app, "per_app": round(per_app / apps, 3),
            "names": sorted({f"{m[1]}[{','.join(d for d, _ in m[2])}]" for m in seen})}


def run(apps: int, *, drift_seconds: int | None = None, commits: int = 200, echo: bool = False,
        repos: int | None = None) -> dict[str, Any]:
    repos = repos or max(1, apps // 10)
    clusters = max(1, min(20, repos))
    started = time.perf_counter()
    # The drift interval outlasts the drift phase (about 0.25 s per app here), so the steady
    # tick after it has nothing due; the seed (about 0.8 s per app) outlasts the interval, so
    # every app is due at the drift tick.
    rig = Rig(apps, repos, clusters, drift_seconds or max(20, apps // 2), echo=echo)
    try:
        t0 = time.perf_counter()
        rig.seed()
        seed_s = time.perf_counter() - t0
        rig.drift()
        rig.measure("steady", rig.tick, checked_apps=None)
        rig.burst(commits)
        missing = rig.check_burst_applied()
        return {
            "scale": {"apps": apps, "repositories": repos, "clusters": clusters, "kubesim_processes": 1,
                      "drift_check_seconds": rig.drift_seconds, "burst_commits": min(commits, apps)},
            "seed_s": round(seed_s, 1), "total_s": round(time.perf_counter() - started, 1),
            "burst_not_applied": missing,
            "alarms": len(rig.world.stack.resources.alarms),
            "custom_metrics": custom_metrics(rig.world.stack.metrics, apps),
            "phases": rig.phases,
        }
    finally:
        rig.close()


def print_table(doc: dict[str, Any]) -> None:
    s = doc["scale"]
    print(f"\nscale rig: {s['apps']} apps / {s['repositories']} repositories / {s['clusters']} clusters "
          f"(seed {doc['seed_s']} s, total {doc['total_s']} s)")
    for phase, p in doc["phases"].items():
        print(f"\n[{phase}] wall {p['wall_s']} s, git round trips {p['git_round_trips']} "
              f"(info/refs {p['git_info_refs']}), kubernetes requests {p['kubernetes_requests']}"
              + (f" ({p['kubernetes_requests_per_checked_app']} per checked app)" if p["checked_apps"] else "")
              + f", in flight max {p['messages_in_flight_max']}")
        print(f"  {'stage':<18}{'inv':>6}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'sqs send s':>11}"
              f"{'ddb':>6}{'s3':>6}{'sqs':>6}{'sm':>5}")
        for fn, st in p["stages"].items():
            ops = st["aws_calls"]

            def of(service: str, ops: dict[str, int] = ops) -> int:
                return sum(v for k, v in ops.items() if k.startswith(service + ":"))
            print(f"  {fn:<18}{st['invocations']:>6}{st['p50_ms']:>9}{st['p90_ms']:>9}{st['p99_ms']:>9}"
                  f"{st['sqs_send_s']:>11}{of('dynamodb'):>6}{of('s3'):>6}{of('sqs'):>6}{of('secretsmanager'):>5}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=int(os.environ.get("SCALE") or 5000))
    parser.add_argument("--drift-seconds", type=int, default=None)
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--out", default=str(REPO / ".cache" / "bench-scale.json"))
    args = parser.parse_args(argv)
    doc = run(args.apps, drift_seconds=args.drift_seconds, commits=args.commits)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))
    print_table(doc)
    print(f"\nwritten {args.out}")
    return 1 if doc["burst_not_applied"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
