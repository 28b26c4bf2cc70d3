"""``make up`` / ``python -m local.up``: the whole of gitferry on this machine until Ctrl-C.

Why: to click through the web console, curl the API and push to a repo without any AWS account.
It starts moto with the resources of template.yaml, the Kubernetes API emulator (kubesim), a
smart-HTTP git server, the runner's API Gateway on loopback and a delivery loop that fires the
schedule and drains the queues like Lambda's event source mappings.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from local.aws import ACCOUNT_ID, REGION
from local.runner import REPO_ROOT, LocalStack

#: what `make up` printed, as JSON (API URL, token, kubeconfig, git URL ...) while it runs
INFO_FILE = REPO_ROOT / ".cache" / "up.json"


def _start_kubesim(workdir: Path) -> Any:
    try:
        from local.kubesim.server import KubeSim
    except ImportError as exc:  # kubesim is written in parallel; say so instead of a traceback
        raise SystemExit(f"local.kubesim.server.KubeSim is not available yet ({exc}); the rest of `make up` needs it") from exc
    return KubeSim(kubeconfig_path=str(workdir / "kubeconfig")).start()


def _start_gitserver(workdir: Path) -> Any:
    try:
        from local.gitserver import GitServer
    except ImportError as exc:
        raise SystemExit(f"local.gitserver.GitServer is not available yet ({exc})") from exc
    return GitServer(workdir / "git").start()


def _register_cluster(api: str, token: str, kubeconfig: Path, name: str) -> str:
    body = json.dumps({"name": name, "kubeconfig": kubeconfig.read_text()}).encode()
    req = urllib.request.Request(
        f"{api}/api/v1/clusters", data=body, method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return f"registered as '{name}' ({resp.status})"
    except urllib.error.HTTPError as err:
        return f"not registered: POST /api/v1/clusters answered {err.code} {err.read()[:200]!r}"
    except OSError as exc:
        return f"not registered: {exc}"


def _post(api: str, token: str, path: str, doc: dict[str, Any]) -> str:
    req = urllib.request.Request(f"{api}{path}", data=json.dumps(doc).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return f"registered ({resp.status})"
    except urllib.error.HTTPError as err:
        return f"not registered: POST {path} answered {err.code} {err.read()[:200]!r}"
    except OSError as exc:
        return f"not registered: {exc}"


def _port_free(port: int) -> bool:
    """Can the API bind 127.0.0.1:``port``? (0, any free port, always can.)"""
    if port == 0:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run gitferry locally (moto + kubesim + git + runner).")
    parser.add_argument("--port", type=int, default=8080, help="API port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--schedule-interval", type=float, default=None,
                        help="seconds between poll ticks (default: the template's rate, 1 minute)")
    parser.add_argument("--template", type=Path, default=REPO_ROOT / "template.yaml")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep state here (kept on exit); default: a temporary directory removed on exit")
    parser.add_argument("--info-file", type=Path, default=INFO_FILE,
                        help="where to write the JSON of what is printed (mode 600, removed on exit)")
    parser.add_argument("--quiet", action="store_true", help="do not echo handler output")
    args = parser.parse_args(argv)

    if not _port_free(args.port):
        print(f"gitferry up: port {args.port} on 127.0.0.1 is in use: is `make up` already running "
              f"(see {args.info_file})? Stop it, or start this one with --port N (0 = any free port).",
              file=sys.stderr)
        return 1
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="gitferry-up-")) if temporary else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    closers: list[Any] = []
    try:
        return _run(args, workdir, closers)
    finally:
        for closer in reversed(closers):
            try:
                closer()
            except Exception:  # noqa: BLE001 - stop everything we can
                pass
        args.info_file.unlink(missing_ok=True)
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(args: argparse.Namespace, workdir: Path, closers: list[Any]) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    kube = _start_kubesim(workdir)
    closers.append(kube.stop)
    git = _start_gitserver(workdir)
    closers.append(git.stop)
    from local.helmrepo import HelmRepoServer

    charts = HelmRepoServer(workdir / "charts").start()
    closers.append(charts.stop)
    from local.ociregistry import OciRegistry

    registry = OciRegistry(workdir / "oci-registry").start()  # installs Debian's docker-registry if missing
    closers.append(registry.stop)
    stack = LocalStack.start(
        args.template,
        # the local EKS cluster made below, as a deployer names it (IAM is enforced locally)
        parameters={"EksClusterArns": f"arn:aws:eks:{REGION}:{ACCOUNT_ID}:cluster/local-eks"},
        extra_env={"GIT_CACHE_DIR": str(workdir / "git-cache"), "DISCOVERY_CACHE_DIR": str(workdir / "discovery")},
        echo=not args.quiet,
    )
    closers.append(stack.close)
    try:
        api = stack.start_api(port=args.port)
    except OSError as exc:  # taken between our check and now
        print(f"gitferry up: cannot serve the API on 127.0.0.1:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    # The API refuses every call until an admin puts a token into Secrets Manager: do it here.
    token = secrets.token_urlsafe(24)
    token_file = workdir / "api-token"
    _write_private(token_file, token + "\n")
    stack.resources.client("secretsmanager").create_secret(Name="gitferry/api-token", SecretString=token)
    # The webhook secrets the banner's examples use (an admin puts these in Secrets Manager once).
    webhook_secret = secrets.token_urlsafe(18)
    for provider in ("github", "gitea", "gitlab", "bitbucket-server"):
        stack.resources.client("secretsmanager").create_secret(
            Name=f"gitferry/webhooks/{provider}", SecretString=webhook_secret)
    webhook_file = workdir / "webhook-secret"
    _write_private(webhook_file, webhook_secret + "\n")
    registered = _register_cluster(api, token, Path(kube.kubeconfig_path), "local")
    oci_registered = _post(api, token, "/api/v1/repositories",
                           {"url": f"oci://{registry.host}", "type": "oci", "plainHttp": True, "name": "local-oci"})
    # An EKS cluster in moto whose DescribeCluster answers kubesim (local/eks.py): register it
    # with `gitferry cluster add NAME --eks local-eks`, no credential stored.
    from local import eks as local_eks

    eks_arn = local_eks.create_cluster(stack.resources, kube, "local-eks")
    stack.start_loop(schedule_interval=args.schedule_interval)
    res = stack.resources
    info = {"api": api, "token": token, "tokenFile": str(token_file), "kubeconfig": kube.kubeconfig_path,
            "kubesim": kube.url, "git": git.base_url, "gitRoot": str(workdir / "git"), "helmRepo": charts.url,
            "ociRegistry": registry.host,
            "aws": res.endpoint, "cluster": "local", "clusterServer": kube.url, "workdir": str(workdir),
            "webhookSecretFile": str(webhook_file), "webhooks": f"{api}/webhooks/<provider>",
            "eksCluster": eks_arn}
    _write_private(args.info_file, json.dumps(info, indent=2) + "\n")
    print(
        f"""
gitferry is up (workdir {workdir})

  API + console    {api}/applications   (web console: sign in with the token below, or open
                   {api}/applications#token=<token>; the deployed stack serves it under .../Prod/)
  API token        {token}   (in {token_file}; send it as Authorization: Bearer $TOKEN)
  moto (AWS)       {res.endpoint}    e.g. AWS_ENDPOINT_URL={res.endpoint} aws dynamodb scan --table-name {res.tables.get('StateTable')}
  kubesim          {kube.url}
  kubeconfig       {kube.kubeconfig_path}   cluster {registered}
  EKS cluster      {eks_arn}   (moto; its endpoint is kubesim, tokens checked through moto STS)
  git server       {git.base_url}/<name>.git   (bare repos in {workdir / 'git'}; push over HTTP works)
  webhooks         {api}/webhooks/github (gitea, gitlab, bitbucket-server): secret in {webhook_file}
  Helm chart repo  {charts.url}   (publish: HelmRepoServer("{workdir / 'charts'}").add_chart(...) or helm package + helm repo index)
  OCI registry     oci://{registry.host}   plain HTTP, {oci_registered}
                   (helm push chart.tgz oci://{registry.host}/charts --plain-http; apps: repoURL {registry.host}/charts + chart)
  schedule         poll every {args.schedule_interval or 'template rate (60)'} s; queues drained continuously
  all of the above {args.info_file} (JSON)

Try:
  gitferry login {api} --token-stdin < {token_file}
  gitferry cluster list && gitferry app list
  gitferry cluster add eks --eks local-eks && gitferry cluster get eks
  curl -s -H "Authorization: Bearer $(cat {token_file})" {api}/api/v1/applications
  KUBECONFIG={kube.kubeconfig_path} kubectl get ns
  # a repository of your own on the local git server, and an app from it:
  git init --bare --initial-branch=main {workdir / 'git'}/myapp.git
  git -C my-manifests push {git.base_url}/myapp.git HEAD:main
  gitferry repo add {git.base_url}/myapp.git
  gitferry app create --name myapp --repo {git.base_url}/myapp.git --path . --dest-name local \\
      --dest-namespace myapp --sync-option CreateNamespace=true --sync-policy automated

Ctrl-C stops everything.
ready""",
        flush=True,
    )
    stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
