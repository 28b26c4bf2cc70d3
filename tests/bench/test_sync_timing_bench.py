"""How long operations take to finish: waves, wave boundaries, health after a rollout.

Run by ``make bench`` only (marker ``bench``). The whole local stack at the template's real
60 s poll interval (``LocalWorld(real_schedule=True)``), an app in the shape of Argo CD's
sync-waves example (waves -1..2 of Jobs, Deployments and Services). A watcher thread polls the
cluster every 0.1 s (official client) and records when each object appeared and when it became
healthy, which is the objects' own readiness, the peer every gitferry time is compared with.

Rows: sync start -> Succeeded; for each wave boundary, the time from the last object of a wave
being healthy to the first object of the next wave appearing (goal < 5 s) against that wave's
own readiness; rollout of a new image finished (Deployment healthy) -> Healthy shown by the
API (goal < 10 s). Prints a table; asserts correctness (phases, order), never timings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import yaml

from local.story import DEPLOYMENT, LocalWorld, application

pytestmark = pytest.mark.bench

WAVES: list[list[tuple[str, str]]] = [
    [("Job", "upgrade-sql-schema")],
    [("Deployment", "backend"), ("Service", "backend")],
    [("Job", "maint-page-down")],
    [("Deployment", "frontend"), ("Service", "frontend")],
]


@pytest.fixture(autouse=True)
def _only_when_selected(request: pytest.FixtureRequest) -> None:
    if "bench" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("benchmarks run with make bench (-m bench)")


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld(real_schedule=True) as w:
        w.register_cluster("local")
        yield w


def _manifest(kind: str, name: str, wave: int, image: str = "nginx:1.27") -> dict[str, Any]:
    meta = {"name": name, "annotations": {"argocd.argoproj.io/sync-wave": str(wave)}}
    if kind == "Job":
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": {"backoffLimit": 0, "template": {
            "spec": {"restartPolicy": "Never", "containers": [{"name": name, "image": "busybox:1.36"}]}}}}
    if kind == "Service":
        return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
                "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 80}]}}
    doc = yaml.safe_load(DEPLOYMENT.format(replicas=2, image=image).replace("guestbook-ui", name))
    doc["metadata"]["annotations"] = meta["annotations"]
    return doc


class Watcher:
    """Polls the namespace every 0.1 s: first time each object was seen, first time healthy."""

    def __init__(self, world: LocalWorld, namespace: str) -> None:
        self.world, self.namespace = world, namespace
        self.appeared: dict[str, float] = {}
        self.healthy: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def reset(self, key: str) -> None:
        self.healthy.pop(key, None)

    def _run(self) -> None:
        from gitferry import health
        from kubernetes import client

        api = self.world.k8s  # the official client with kubesim's kubeconfig
        apps, batch, core = client.AppsV1Api(api), client.BatchV1Api(api), client.CoreV1Api(api)
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                objects = ([("Deployment", d) for d in apps.list_namespaced_deployment(self.namespace).items]
                           + [("Job", j) for j in batch.list_namespaced_job(self.namespace).items]
                           + [("Service", s) for s in core.list_namespaced_service(self.namespace).items])
            except Exception:  # noqa: BLE001 - the namespace does not exist yet
                objects = []
            for kind, obj in objects:
                key = f"{kind}/{obj.metadata.name}"
                self.appeared.setdefault(key, now)
                doc = api.sanitize_for_serialization(obj)
                doc.setdefault("kind", kind)
                doc.setdefault("apiVersion", {"Deployment": "apps/v1", "Job": "batch/v1"}.get(kind, "v1"))
                if health.resource_health(doc).status == health.HEALTHY:
                    self.healthy.setdefault(key, now)
            self._stop.wait(0.1)


def _op(world: LocalWorld, app: str) -> dict[str, Any]:
    return world.status(app).get("operationState") or {}


def test_sync_timing(world: LocalWorld) -> None:
    app = "syncwaves"
    files = {f"app/{w}-{kind.lower()}-{name}.yaml": yaml.safe_dump(_manifest(kind, name, w - 1))
             for w, wave in enumerate(WAVES) for kind, name in wave}
    repo = world.git.make_repo(app, files)
    manifest = yaml.safe_load(application(app, repo, world.kube.url, automated=True, path="app", namespace=app))
    rows: list[tuple[str, float, str]] = []
    with Watcher(world, app) as watch:
        world.api_ok("POST", "/api/v1/applications", yaml.safe_dump(manifest))
        world.until("Succeeded", lambda: _op(world, app).get("phase") in ("Succeeded", "Failed"), timeout=180)
        done = time.time()
        op = _op(world, app)
        assert op["phase"] == "Succeeded", op
        total = done - datetime.fromisoformat(op["startedAt"]).timestamp()
        rows.append(("sync start -> Succeeded seen (4 waves)", total, ""))
        for k in range(len(WAVES) - 1):
            ready = max(watch.healthy[f"{kind}/{name}"] for kind, name in WAVES[k])
            own = ready - min(watch.appeared[f"{kind}/{name}"] for kind, name in WAVES[k])
            nxt = min(watch.appeared[f"{kind}/{name}"] for kind, name in WAVES[k + 1])
            assert nxt >= ready - 0.2, f"wave {k} started before wave {k - 1} was healthy"
            rows.append((f"boundary wave {k - 1} -> {k}", nxt - ready, f"wave {k - 1} own readiness {own:.1f} s"
                                                                         f" (ratio {(nxt - ready) / own:.2f})"))

        # A new image: the rollout finishes in the cluster; how long until the API shows Healthy?
        world.until("Healthy", lambda: (world.status(app).get("health") or {}).get("status") == "Healthy",
                    timeout=60)
        world.git.commit(app, {"app/3-deployment-frontend.yaml": yaml.safe_dump(
            _manifest("Deployment", "frontend", 2, image="nginx:1.28"))}, "frontend 1.28")
        world.api_ok("POST", f"/api/v1/applications/{app}/refresh")  # as the push webhook would
        world.until("new image applied", lambda: world.deployment(
            app, "frontend").spec.template.spec.containers[0].image == "nginx:1.28", timeout=60)
        watch.reset("Deployment/frontend")  # from here: the rollout of the new image
        seen: dict[str, float] = {}

        def healthy_at_new_image() -> bool:
            st = world.status(app)
            if (st.get("health") or {}).get("status") == "Healthy" and (st.get("sync") or {}).get("status") == "Synced" \
                    and world.deployment(app, "frontend").spec.template.spec.containers[0].image == "nginx:1.28":
                seen.setdefault("at", time.monotonic())
                return True
            return False

        world.until("Healthy after the rollout", healthy_at_new_image, timeout=120)
        rolled = watch.healthy.get("Deployment/frontend")
        assert rolled is not None
        rows.append(("rollout finished -> Healthy shown", seen["at"] - rolled, "goal < 10 s"))
    print()
    print(f"{'what':<44} {'seconds':>8}  notes")
    for what, seconds, note in rows:
        print(f"{what:<44} {seconds:>8.2f}  {note}")
    print(f"poll ticks during the run: {world.poll_ticks} (the template's 60 s schedule)")
