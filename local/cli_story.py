"""The guestbook story told through the ``gitferry`` CLI: what ``make demo`` plays and prints.

Every step is what a user types (the ``gitferry`` console script and ``kubectl`` in
subprocesses, ``git`` commits on the local git server, the push webhook GitHub would send) and
what they see. The pipeline runs in the background as it does in AWS: the runner's delivery loop
fires the poll schedule (every ``POLL_SECONDS`` here instead of the template's minute, so the
story does not wait for it) and drains the queues. Each step also checks what it must observe
and raises :class:`StoryError` when it does not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from local.runner import REPO_ROOT
from local.story import DEPLOYMENT, SERVICE, WEBHOOK_SECRET, LocalWorld, Step, StoryError

GITFERRY = Path(sys.executable).parent / "gitferry"
KUBECTL = REPO_ROOT / "layers" / "tools" / "bin" / "kubectl"
POLL_SECONDS = 2.0
IMAGE_1 = "gcr.io/heptio-images/ks-guestbook-demo:0.1"
IMAGE_2 = "gcr.io/heptio-images/ks-guestbook-demo:0.2"


@dataclass
class Shown:
    """One command as the user typed it, its exit code and what it printed."""

    command: str
    code: int
    output: str


class Terminal:
    """Runs commands as a user's shell would, with their own config dir, and keeps the transcript."""

    def __init__(self, world: LocalWorld, home: Path, echo: Callable[[Shown], None] | None = None) -> None:
        self.world = world
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GITFERRY_")}
        self.env.update({"XDG_CONFIG_HOME": str(home / "config"), "KUBECONFIG": world.kube.kubeconfig_path,
                         "COLUMNS": "110", "NO_COLOR": "1"})
        self.echo = echo
        self.transcript: list[Shown] = []

    def run(self, argv: list[str], *, shown: str, stdin: str | None = None, expect: tuple[int, ...] = (0,),
            quiet: bool = False, timeout: float = 180) -> Shown:
        proc = subprocess.run(argv, env=self.env, input=stdin, capture_output=True, text=True, timeout=timeout)
        out = (proc.stdout + proc.stderr).rstrip("\n")
        result = Shown(shown, proc.returncode, out)
        if proc.returncode not in expect:
            raise StoryError(f"`{shown}` exited {proc.returncode} (expected {expect}):\n{out}")
        if not quiet:
            self.transcript.append(result)
            if self.echo:
                self.echo(result)
        return result

    def gitferry(self, *args: str, stdin: str | None = None, expect: tuple[int, ...] = (0,),
                 quiet: bool = False, shown: str | None = None) -> Shown:
        return self.run([str(GITFERRY), *args], shown=shown or "gitferry " + " ".join(args), stdin=stdin,
                        expect=expect, quiet=quiet)

    def kubectl(self, *args: str) -> Shown:
        return self.run([str(KUBECTL), *args], shown="kubectl " + " ".join(args))

    def json(self, *args: str) -> Any:
        return json.loads(self.gitferry(*args, "-o", "json", quiet=True).output)


def _eventually(what: str, check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise StoryError(f"timed out waiting for {what}")
        time.sleep(0.3)


def play_cli_story(world: LocalWorld, on_step: Callable[[Step], None] | None = None,
                   echo: Callable[[Shown], None] | None = None) -> list[Step]:
    """The five steps of the demo through the CLI; the world's delivery loop must be running."""
    home = Path(tempfile.mkdtemp(prefix="gitferry-demo-home-", dir=world.workdir))
    term = Terminal(world, home, echo)
    steps: list[Step] = []
    app, ns = "guestbook", "guestbook"

    def record(title: str, started: float, observed: list[str]) -> None:
        step = Step(title, time.monotonic() - started, observed)
        steps.append(step)
        if on_step:
            on_step(step)

    # 1. log in, register the cluster and the repository, create the app from an Argo CD manifest
    t0 = time.monotonic()
    repo = world.git.make_repo("guestbook", {
        "guestbook/guestbook-ui-deployment.yaml": DEPLOYMENT.format(replicas=1, image=IMAGE_1),
        "guestbook/guestbook-ui-svc.yaml": SERVICE,
        "README.md": "guestbook example\n",
    })
    world.set_webhook_secret("github", WEBHOOK_SECRET)  # what an admin puts in Secrets Manager once
    term.gitferry("login", world.api, "--token-stdin", stdin=world.api_token + "\n",
                  shown=f"gitferry login {world.api} --token-stdin < token")
    term.gitferry("cluster", "add", "local", "--kubeconfig", world.kube.kubeconfig_path)
    term.gitferry("repo", "add", repo)
    manifest = home / "guestbook.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": app},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo, "targetRevision": "HEAD", "path": "guestbook"},
            "destination": {"name": "local", "namespace": ns},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]},
        },
    }, sort_keys=False))
    term.gitferry("app", "create", "-f", str(manifest), shown="gitferry app create -f guestbook.yaml")
    record("logged in; cluster, repository and the automated Argo CD Application registered with the CLI", t0,
           [f"repo {repo}", f"cluster local ({world.kube.url})"])

    # 2. the next poll renders, diffs and applies; wait until Synced + Healthy, then read the tree
    t0 = time.monotonic()
    term.gitferry("app", "wait", app, "--timeout", "120")
    _eventually("the tree with the rollout's pods",  # the look after the sync records them
                lambda: _tree_kinds(world, app) >= {"Deployment", "ReplicaSet", "Pod", "Service"})
    tree = term.gitferry("app", "get", app, "-o", "tree")
    for kind in ("Deployment", "ReplicaSet", "Pod", "Service"):
        if kind not in tree.output:
            raise StoryError(f"`gitferry app get -o tree` does not show a {kind}:\n{tree.output}")
    first = term.json("app", "get", app)["status"]["sync"]["revision"]
    record("poll -> render -> diff -> apply: Synced and Healthy; the tree shows Deployment/ReplicaSet/Pod/Service",
           t0, [f"revision {first[:8]}"])

    # 3. a new commit, announced by GitHub's signed push webhook
    t0 = time.monotonic()
    sha = world.git.commit("guestbook", {"guestbook/guestbook-ui-deployment.yaml":
                                         DEPLOYMENT.format(replicas=3, image=IMAGE_2)}, "guestbook 0.2, 3 replicas")
    code, answer = world.push_webhook(repo, sha)
    if code != 202:
        raise StoryError(f"the push webhook answered {code}: {answer}")
    term.gitferry("app", "wait", app, "--revision", sha[:12], "--health", "--timeout", "120")
    dep = world.deployment(ns, "guestbook-ui")
    if dep.spec.replicas != 3 or dep.spec.template.spec.containers[0].image != IMAGE_2:
        raise StoryError(f"deployment not updated: {dep.spec.replicas} replicas, "
                         f"image {dep.spec.template.spec.containers[0].image}")
    record("git push + signed GitHub webhook (202): Synced and Healthy at the new commit", t0,
           [f"revision {sha[:8]}", f"image {IMAGE_2}, 3 replicas"])

    # 4. drift behind gitferry's back: seen, metric, healed, recorded
    t0 = time.monotonic()
    before = len(term.json("app", "history", app))
    metrics_before = len(world.stack.metrics)
    term.kubectl("scale", "deployment", "guestbook-ui", "-n", ns, "--replicas=1")
    _eventually("drift healed", lambda: world.deployment(ns, "guestbook-ui").spec.replicas == 3)
    term.gitferry("app", "wait", app, "--timeout", "120")
    drift = [d for m in world.stack.metrics[metrics_before:] for d in m.datapoints
             if d.metric == "OutOfSync" and d.value == 1 and d.dimension_dict.get("app") == app]
    if not drift:
        raise StoryError("no OutOfSync metric emitted for the drift")
    _eventually("the healing sync in history", lambda: len(term.json("app", "history", app)) > before)
    term.gitferry("app", "history", app)
    record("kubectl scale --replicas=1: drift seen, OutOfSync metric, self-healed back to 3, recorded", t0,
           [f"OutOfSync datapoints {len(drift)}"])

    # 5. the Service deleted from Git: pruned; nothing left to diff
    t0 = time.monotonic()
    sha = world.git.commit("guestbook", {}, "drop the service", delete=["guestbook/guestbook-ui-svc.yaml"])
    code, answer = world.push_webhook(repo, sha)
    if code != 202:
        raise StoryError(f"the push webhook answered {code}: {answer}")
    term.gitferry("app", "wait", app, "--revision", sha[:12], "--timeout", "120")
    if world.service_exists(ns, "guestbook-ui"):
        raise StoryError("the Service is still in the cluster")
    term.gitferry("app", "get", app)
    op = term.json("app", "get", app)["status"].get("operationState") or {}
    if not any(r.get("status") == "Pruned" for r in (op.get("syncResult") or {}).get("resources", [])):
        raise StoryError(f"no Pruned result recorded: {op}")
    term.gitferry("app", "diff", app)  # exit 0: no differences
    record("Service deleted from Git: pruned; `gitferry app diff` finds no differences (exit 0)", t0,
           [f"revision {sha[:8]}"])
    return steps


def _tree_kinds(world: LocalWorld, app: str) -> set[str]:
    status, tree = world.call("GET", f"/api/v1/applications/{app}/resource-tree")
    return {n.get("kind") for n in (tree or {}).get("nodes", [])} if status == 200 else set()
