"""The ``gitferry`` console script (.venv/bin/gitferry, installed by ``make dev``) run as a user
runs it, in a subprocess, against the local stack's API (moto server, kubesim over HTTPS, git
over HTTP, the handlers delivered by the runner's background loop as Lambda would)."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from local.story import DEPLOYMENT, SERVICE, LocalWorld, application

GITFERRY = Path(sys.executable).parent / "gitferry"
OUTPUTS: list[str] = []  # everything every command printed, for the token check at the end


@dataclass
class Run:
    code: int
    out: str
    err: str


class Cli:
    def __init__(self, world: LocalWorld, config_home: Path) -> None:
        self.world = world
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GITFERRY_")}
        self.env["XDG_CONFIG_HOME"] = str(config_home)
        self.env.pop("KUBECONFIG", None)

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 180) -> Run:
        proc = subprocess.run([str(GITFERRY), *args], env=self.env, capture_output=True, text=True, input=stdin,
                              timeout=timeout)
        OUTPUTS.extend([proc.stdout, proc.stderr])
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        run = self(*args, stdin=stdin)
        assert run.code == 0, f"gitferry {' '.join(args)} exited {run.code}: {run.out}{run.err}"
        return run.out


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    # what the template grants for EKS is named at deploy time: DescribeCluster on cli-eks, and
    # AssumeRole on a role the cluster does not map (refused by the cluster, not by IAM)
    with LocalWorld(parameters={"EksClusterArns": "arn:aws:eks:us-east-1:123456789012:cluster/cli-eks",
                                "EksAssumeRoleArns": "arn:aws:iam::123456789012:role/nobody"}) as w:
        token = "tok-" + secrets.token_urlsafe(18)  # one no output could contain by chance
        w.put_secret("gitferry/api-token", token)
        w.api_token = token
        w.stack.start_loop(schedule_interval=2)  # the pipeline runs while the CLI waits
        yield w


@pytest.fixture(scope="module")
def cli(world: LocalWorld, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    c = Cli(world, tmp_path_factory.mktemp("xdg"))
    c.ok("login", world.api, "--token-stdin", stdin=world.api_token + "\n")
    c.ok("cluster", "add", "local", "--kubeconfig", world.kube.kubeconfig_path)
    return c


def _eventually(what: str, check: Callable[[], bool], timeout: float = 120) -> None:
    """The runner's loop delivers in the background: look until ``check`` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _repo(world: LocalWorld, name: str, replicas: int = 1, image: str = "nginx:1.25") -> str:
    return world.git.make_repo(name, {"app/deployment.yaml": DEPLOYMENT.format(replicas=replicas, image=image),
                                      "app/service.yaml": SERVICE})


def test_login_keeps_the_token_in_a_mode_600_file_under_xdg_config_home(world: LocalWorld, tmp_path: Path) -> None:
    c = Cli(world, tmp_path / "cfg")
    assert c("app", "list").code == 3  # not logged in yet
    wrong = c("login", world.api, "--token", "not-the-token")
    assert wrong.code == 4 and "401" in wrong.err
    assert not (tmp_path / "cfg" / "gitferry" / "config.json").exists()
    assert c("login", "http://127.0.0.1:9", "--token", world.api_token).code == 3  # nothing listens there
    c.ok("login", world.api, "--token-stdin", stdin=world.api_token + "\n")
    path = tmp_path / "cfg" / "gitferry" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"server": world.api, "token": world.api_token}
    assert c("app", "list").code == 0


def test_cluster_add_list_and_rm(cli: Cli, world: LocalWorld, tmp_path: Path) -> None:
    kubeconfig = yaml.safe_load(Path(world.kube.kubeconfig_path).read_text())
    # a second, broken context first and current: --context picks the one to register
    kubeconfig["clusters"].append({"name": "dead", "cluster": {"server": "https://127.0.0.1:9"}})
    kubeconfig["contexts"].append({"name": "dead", "context": {"cluster": "dead", "user": "kubesim"}})
    good = kubeconfig["current-context"]
    kubeconfig["current-context"] = "dead"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    assert cli("cluster", "add", "second", "--kubeconfig", str(path)).code == 7  # dead cannot be reached
    assert cli("cluster", "add", "second", "--kubeconfig", str(path), "--context", "nope").code == 2
    out = cli.ok("cluster", "add", "second", "--kubeconfig", str(path), "--context", good, "--namespace", "apps")
    assert "cluster 'second' added" in out
    again = cli("cluster", "add", "second", "--kubeconfig", str(path), "--context", good)
    assert again.code == 6 and "already registered" in again.err
    cli.ok("cluster", "add", "second", "--kubeconfig", str(path), "--context", good, "--upsert")
    listed = json.loads(cli.ok("cluster", "list", "-o", "json"))
    assert {c["name"]: c["server"] for c in listed}["second"] == world.kube.url
    assert set(cli.ok("cluster", "list", "-o", "name").split()) >= {"local", "second"}
    table = cli.ok("cluster", "list")
    assert table.splitlines()[0].split() == ["SERVER", "NAME", "VERSION", "NAMESPACE", "AUTH", "IN-CLUSTER"]
    assert any(line.split()[:2] == [world.kube.url, "second"] for line in table.splitlines())
    assert "cluster 'second' removed" in cli.ok("cluster", "rm", "second")
    assert cli("cluster", "rm", "second").code == 5


def test_eks_cluster_add_get_and_update(cli: Cli, world: LocalWorld) -> None:
    from local import eks as local_eks

    arn = local_eks.create_cluster(world.stack.resources, world.kube, "cli-eks")
    assert cli("cluster", "add", "e", "--eks", "cli-eks", "--kubeconfig", world.kube.kubeconfig_path).code == 2
    assert cli("cluster", "add", "e", "--role-arn", "arn:aws:iam::123456789012:role/x").code == 2
    out = cli.ok("cluster", "add", "e", "--eks", arn, "--in-cluster")
    assert f"cluster 'e' added ({world.kube.url}, v1." in out
    got = json.loads(cli.ok("cluster", "get", "e", "-o", "json"))
    assert got["eks"]["cluster"] == "cli-eks" and got["inCluster"] is True and got["auth"] == "eks"
    assert got["info"]["connectionState"]["status"] == "Successful"
    assert yaml.safe_load(cli.ok("cluster", "get", "e", "-o", "yaml")) ["name"] == "e"
    table = cli.ok("cluster", "get", "e")
    assert "Connection:" in table and "Successful" in table and arn in table
    listed = cli.ok("cluster", "list")
    assert any(line.split()[1:2] == ["e"] and line.split()[-2:] == ["eks", "yes"] for line in listed.splitlines())
    # an unmapped role is refused when connecting again, and nothing changes
    refused = cli("cluster", "update", "e", "--role-arn", "arn:aws:iam::123456789012:role/nobody")
    assert refused.code != 0 and "Unauthorized" in refused.err
    assert "roleArn" not in json.loads(cli.ok("cluster", "get", "e", "-o", "json"))["eks"]
    assert "updated" in cli.ok("cluster", "update", "e", "--not-in-cluster", "--namespace", "apps")
    got = json.loads(cli.ok("cluster", "get", "e", "-o", "json"))
    assert got["inCluster"] is False and got["namespace"] == "apps"
    assert cli("cluster", "update", "e").code == 2
    cli.ok("cluster", "rm", "e")


def test_a_cluster_in_use_needs_force(cli: Cli, world: LocalWorld) -> None:
    cli.ok("cluster", "add", "named", "--kubeconfig", world.kube.kubeconfig_path)
    repo = _repo(world, "onnamed")
    cli.ok("app", "create", "--name", "onnamed", "--repo", repo, "--path", "app", "--dest-name", "named",
           "--dest-namespace", "onnamed")
    refused = cli("cluster", "rm", "named")
    assert refused.code == 6 and "onnamed" in refused.err
    cli.ok("cluster", "rm", "named", "--force")
    assert "named" not in cli.ok("cluster", "list", "-o", "name").split()
    cli.ok("app", "delete", "onnamed", "--no-cascade")


def test_repo_add_list_and_rm(cli: Cli, world: LocalWorld) -> None:
    url = _repo(world, "creds")
    cli.ok("repo", "add", url, "--name", "creds", "--username", "deploy", "--password-stdin", stdin="s3cr3t-pw\n")
    rows = json.loads(cli.ok("repo", "list", "-o", "json"))
    row = next(r for r in rows if r["url"] == url)
    assert row["hasCredentials"] is True and row["username"] == "deploy" and row["name"] == "creds"
    assert url in cli.ok("repo", "list", "-o", "name").split()
    assert cli("repo", "add", url).code == 6
    assert "s3cr3t-pw" not in cli.ok("repo", "list", "-o", "yaml")
    cli.ok("repo", "rm", "creds")
    assert url not in cli.ok("repo", "list", "-o", "name").split()
    other = _repo(world, "byurl")
    cli.ok("repo", "add", other)
    cli.ok("repo", "rm", other)
    assert cli("repo", "rm", other).code == 5


def test_repo_add_an_oci_registry(cli: Cli, world: LocalWorld, tmp_path: Path) -> None:
    from local.ociregistry import OciRegistry

    # Registration logs in as `helm registry login` does: real registries, wrong password refused.
    with OciRegistry(tmp_path / "basic", auth=("ci", "oci-pw")) as basic, \
            OciRegistry(tmp_path / "ecr", auth=("AWS", "123456789012-auth-token")) as ecr_like:
        wrong = cli("repo", "add", f"oci://{basic.host}/charts", "--type", "oci", "--plain-http", "--username", "ci",
                    "--password-stdin", stdin="nope\n")
        assert wrong.code != 0 and "422" in wrong.err and basic.host in wrong.err, wrong.err
        cli.ok("repo", "add", f"oci://{basic.host}/charts", "--type", "oci", "--plain-http", "--username", "ci",
               "--password-stdin", stdin="oci-pw\n")
        cli.ok("repo", "add", f"oci://{ecr_like.host}", "--type", "oci", "--plain-http",
               "--ecr-registry-id", "123456789012")  # moto's ECR token for the function's role
        rows = {r["url"]: r for r in json.loads(cli.ok("repo", "list", "-o", "json"))}
        plain = rows[f"oci://{basic.host}/charts"]
        assert plain["type"] == "oci" and plain["plainHttp"] is True and plain["hasCredentials"] is True
        assert rows[f"oci://{ecr_like.host}"]["ecrRegistryId"] == "123456789012"
        table = cli.ok("repo", "list")
        assert "oci-pw" not in table and "TYPE" in table and " ecr" in table
    refused = cli("repo", "add", "https://charts.example.com", "--plain-http")  # plainHttp is for OCI registries
    assert refused.code != 0 and "plainHttp" in refused.err
    for url in rows:
        if url.startswith("oci://"):
            cli.ok("repo", "rm", url)


def test_app_create_from_a_manifest_file_is_sent_unchanged(cli: Cli, world: LocalWorld, tmp_path: Path) -> None:
    repo = _repo(world, "fromfile")
    manifest = yaml.safe_load(application("fromfile", repo, world.kube.url, automated=False, path="app",
                                          namespace="fromfile"))
    manifest["spec"]["ignoreDifferences"] = [{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]
    path = tmp_path / "app.json"
    path.write_text(json.dumps(manifest))
    assert "application 'fromfile' created" in cli.ok("app", "create", "-f", str(path))
    got = json.loads(cli.ok("app", "get", "fromfile", "-o", "json"))
    rule = got["spec"]["ignoreDifferences"][0]  # the API answers with its defaults filled in
    assert (rule["group"], rule["kind"], rule["jsonPointers"]) == ("apps", "Deployment", ["/spec/replicas"])
    assert got["spec"]["source"] == manifest["spec"]["source"]
    assert cli("app", "create", "-f", str(path)).code == 6  # exists: conflict
    manifest["spec"]["source"]["targetRevision"] = "main"
    path.write_text(yaml.safe_dump(manifest))
    cli.ok("app", "create", "-f", str(path), "--upsert")
    assert yaml.safe_load(cli.ok("app", "get", "fromfile", "-o", "yaml"))["spec"]["source"]["targetRevision"] == "main"
    cli.ok("app", "delete", "fromfile", "--no-cascade")


def test_app_create_from_flags_and_list(cli: Cli, world: LocalWorld) -> None:
    repo = _repo(world, "flags")
    cli.ok("app", "create", "--name", "flags", "--repo", repo, "--path", "app", "--revision", "main",
           "--dest-server", world.kube.url, "--dest-namespace", "flags", "--sync-policy", "automated",
           "--auto-prune", "--self-heal", "--sync-option", "CreateNamespace=true")
    spec = json.loads(cli.ok("app", "get", "flags", "-o", "json"))["spec"]
    assert spec["source"] == {"repoURL": repo, "targetRevision": "main", "path": "app"}
    assert spec["destination"] == {"server": world.kube.url, "namespace": "flags"}
    assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True, "allowEmpty": False}
    assert spec["syncPolicy"]["syncOptions"] == ["CreateNamespace=true"]
    assert cli("app", "create", "--name", "x", "--repo", repo).code == 2  # no destination: usage
    assert "flags" in cli.ok("app", "list", "-o", "name").split()
    assert cli.ok("app", "get", "flags", "-o", "name").strip() == "flags"
    cli.ok("app", "wait", "flags", "--health", "--sync", "--timeout", "120")
    table = cli.ok("app", "list").splitlines()
    assert table[0].split() == ["NAME", "CLUSTER", "NAMESPACE", "STATUS", "HEALTH", "SYNCPOLICY", "REVISION"]
    row = next(line.split() for line in table if line.startswith("flags "))
    assert row[:6] == ["flags", world.kube.url, "flags", "Synced", "Healthy", "Auto-Prune"]
    wide = next(line.split() for line in cli.ok("app", "list", "-o", "wide").splitlines() if line.startswith("flags "))
    assert wide[-3:] == [repo, "app", "main"]
    assert any(i["metadata"]["name"] == "flags" for i in yaml.safe_load(cli.ok("app", "list", "-o", "yaml")))
    cli.ok("app", "delete", "flags")  # cascade: its objects go too, asynchronously
    _eventually("flags deleted", lambda: cli("app", "get", "flags").code == 5)
    assert world.object_count("flags") == 0


def test_diff_sync_get_history_rollback_refresh_and_delete(cli: Cli, world: LocalWorld) -> None:
    repo = _repo(world, "manual")
    cli.ok("app", "create", "--name", "manual", "--repo", repo, "--path", "app", "--dest-server", world.kube.url,
           "--dest-namespace", "manual", "--sync-option", "CreateNamespace=true")
    cli.ok("app", "wait", "manual", "--operation", "--timeout", "60")
    diff = cli("app", "diff", "manual")
    while "=====" not in diff.out:  # the first comparison may still be on its way
        cli.ok("app", "wait", "manual", "--operation", "--timeout", "60")
        diff = cli("app", "diff", "manual")
    assert diff.code == 1 and "===== apps/Deployment manual/guestbook-ui ======" in diff.out
    assert "+  replicas: 1" in diff.out
    timed_out = cli("app", "wait", "manual", "--sync", "--timeout", "2")  # manual: OutOfSync until synced
    assert timed_out.code == 1 and "timed out" in timed_out.err and "last seen: sync OutOfSync" in timed_out.err

    dry = cli("app", "sync", "manual", "--dry-run", "--timeout", "120")
    assert dry.code == 0 and "(dry run)" in dry.out and "Phase: Succeeded" in dry.out
    assert world.object_count("manual") == 0  # a dry run changed nothing

    out = cli.ok("app", "sync", "manual", "--timeout", "120")
    assert "Phase: Succeeded" in out and "guestbook-ui" in out
    cli.ok("app", "wait", "manual", "--health", "--timeout", "120")
    assert cli("app", "diff", "manual").code == 0
    first = world.deployment("manual", "guestbook-ui")
    assert first.spec.template.spec.containers[0].image == "nginx:1.25"

    text = cli.ok("app", "get", "manual")
    assert "Sync Status:   Synced to HEAD" in text and "Health Status: Healthy" in text
    assert any(line.split()[:6] == ["apps", "Deployment", "manual", "guestbook-ui", "Synced", "Healthy"]
               for line in text.splitlines())

    world.git.commit("manual", {"app/deployment.yaml": DEPLOYMENT.format(replicas=2, image="nginx:1.26")}, "v2")
    assert "refresh of 'manual'" in cli.ok("app", "refresh", "manual")
    cli.ok("app", "wait", "manual", "--operation", "--timeout", "60")
    diff = cli("app", "diff", "manual")
    while "nginx:1.26" not in diff.out:
        cli.ok("app", "refresh", "manual")
        cli.ok("app", "wait", "manual", "--operation", "--timeout", "60")
        diff = cli("app", "diff", "manual")
    assert diff.code == 1 and "-      - image: nginx:1.25" in diff.out and "+      - image: nginx:1.26" in diff.out

    # selective sync of the Service only: the Deployment stays at v1
    out = cli.ok("app", "sync", "manual", "--resource", ":Service:manual/guestbook-ui", "--timeout", "120")
    assert "Phase: Succeeded" in out
    assert world.deployment("manual", "guestbook-ui").spec.template.spec.containers[0].image == "nginx:1.25"
    assert cli("app", "sync", "manual", "--resource", "apps:Deployment:nope").code == 7

    assert "queued" in cli.ok("app", "sync", "manual", "--async", "--prune")
    cli.ok("app", "wait", "manual", "--operation", "--timeout", "120")
    cli.ok("app", "wait", "manual", "--health", "--sync", "--timeout", "120")
    assert world.deployment("manual", "guestbook-ui").spec.template.spec.containers[0].image == "nginx:1.26"

    history = json.loads(cli.ok("app", "history", "manual", "-o", "json"))
    assert len(history) >= 2
    table = cli.ok("app", "history", "manual").splitlines()
    assert table[0].split() == ["ID", "DATE", "REVISION"] and len(table) == len(history) + 1
    first_id = str(history[0]["id"])
    assert "rollback of 'manual'" in cli.ok("app", "rollback", "manual", first_id)
    cli.ok("app", "wait", "manual", "--operation", "--timeout", "120")
    _eventually("rolled back", lambda: world.deployment("manual", "guestbook-ui")
                .spec.template.spec.containers[0].image == "nginx:1.25")

    assert "being deleted" in cli.ok("app", "delete", "manual", "--cascade")
    _eventually("manual deleted", lambda: cli("app", "get", "manual").code == 5)
    assert world.object_count("manual") == 0


def test_exit_codes_for_api_errors_and_usage(cli: Cli) -> None:
    missing = cli("app", "get", "no-such-app")
    assert missing.code == 5 and "404" in missing.err and "no-such-app" in missing.err
    assert cli("app", "diff", "no-such-app").code == 5
    assert cli("app", "sync").code == 2  # missing argument
    assert cli("app", "list", "-o", "xml").code == 2
    assert cli("app", "sync", "x", "--resource", "nonsense").code == 2
    helped = cli("app", "sync", "--help")
    assert helped.code == 0 and "Examples:" in helped.out and "--dry-run" in helped.out
    assert "Exit codes:" in cli.ok("--help")


def test_the_token_never_appears_in_any_output(cli: Cli, world: LocalWorld) -> None:
    cli.ok("app", "list", "-o", "json")
    cli("login", world.api, "--token", world.api_token + "x")  # a refused token is not echoed either
    assert len(OUTPUTS) > 40  # the commands of the whole module ran and were recorded
    leaked = [o for o in OUTPUTS if world.api_token in o]
    assert not leaked, leaked[:1]


def test_refresh_hard_renders_again_a_normal_refresh_uses_the_cache(cli: Cli, world: LocalWorld) -> None:
    from gitferry import render

    repo = world.git.make_repo("hardref", {
        "chart/Chart.yaml": "apiVersion: v2\nname: hr\nversion: 0.1.0\n",
        "chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hr}\ndata: {a: b}\n"})
    cli.ok("app", "create", "--name", "hardref", "--repo", repo, "--path", "chart", "--dest-server", world.kube.url,
           "--dest-namespace", "hardref", "--sync-option", "CreateNamespace=true")
    world.settle()

    def refreshed(*flags: str) -> tuple[str, int]:
        runs = render.tool_runs()
        before = world.status("hardref").get("reconciledAt")
        out = cli.ok("app", "refresh", "hardref", *flags)
        _eventually("compared again", lambda: world.status("hardref").get("reconciledAt") != before
                    and not world.stack.queue_depth("RenderQueue"))
        return out, render.tool_runs() - runs

    out, runs = refreshed()
    assert out.startswith("refresh of 'hardref'") and runs == 0  # the render cache had these inputs
    runs_before = render.tool_runs()
    out = cli.ok("app", "refresh", "hardref", "--hard")
    assert out.startswith("hard refresh of 'hardref'")
    _eventually("helm template ran again", lambda: render.tool_runs() > runs_before)
