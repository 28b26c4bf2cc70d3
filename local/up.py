"""``make up`` / ``python -m local.up``: the whole of gitferry on this machine until Ctrl-C.

Why: to click through the dashboard, curl the API and push to a repo without any AWS account.
It starts moto with the resources of template.yaml, the Kubernetes API emulator (kubesim), a
smart-HTTP git server, the runner's API Gateway on loopback and a delivery loop that fires the
schedule and drains the queues like Lambda's event source mappings.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from local.runner import REPO_ROOT, LocalStack


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run gitferry locally (moto + kubesim + git + runner).")
    parser.add_argument("--port", type=int, default=8080, help="API port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--schedule-interval", type=float, default=None,
                        help="seconds between poll ticks (default: the template's rate, 1 minute)")
    parser.add_argument("--template", type=Path, default=REPO_ROOT / "template.yaml")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--quiet", action="store_true", help="do not echo handler output")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gitferry-up-"))
    workdir.mkdir(parents=True, exist_ok=True)
    kube = _start_kubesim(workdir)
    git = _start_gitserver(workdir)
    from local.helmrepo import HelmRepoServer

    charts = HelmRepoServer(workdir / "charts").start()
    stack = LocalStack.start(
        args.template,
        extra_env={"GIT_CACHE_DIR": str(workdir / "git-cache")},
        echo=not args.quiet,
    )
    try:
        api = stack.start_api(port=args.port)
        # The API refuses every call until an admin puts a token into Secrets Manager: do it here.
        token = secrets.token_urlsafe(24)
        stack.resources.client("secretsmanager").create_secret(Name="gitferry/api-token", SecretString=token)
        registered = _register_cluster(api, token, Path(kube.kubeconfig_path), "local")
        stack.start_loop(schedule_interval=args.schedule_interval)
        res = stack.resources
        print(
            f"""
gitferry is up (workdir {workdir})

  API + dashboard  {api}/            (the deployed stack serves the same under .../Prod/)
  API token        {token}   (export TOKEN={token}; send it as Authorization: Bearer $TOKEN)
  moto (AWS)       {res.endpoint}    e.g. AWS_ENDPOINT_URL={res.endpoint} aws dynamodb scan --table-name {res.tables.get('StateTable')}
  kubesim          {kube.url}
  kubeconfig       {kube.kubeconfig_path}   cluster {registered}
  git server       {git.base_url}
  Helm chart repo  {charts.url}   (publish: HelmRepoServer("{workdir / 'charts'}").add_chart(...) or helm package + helm repo index)
  schedule         poll every {args.schedule_interval or 'template rate (60)'} s; queues drained continuously

Try:
  curl -s -H "Authorization: Bearer {token}" {api}/api/v1/applications
  curl -s -H "Authorization: Bearer {token}" {api}/api/v1/clusters
  KUBECONFIG={kube.kubeconfig_path} kubectl get ns
  python -c "from local.gitserver import GitServer"   # repos live under {workdir / 'git'}
  curl -s -X POST {api}/webhooks/github -H 'X-GitHub-Event: push' -H 'X-Hub-Signature-256: sha256=...' -d @payload.json

Ctrl-C stops everything.
""",
            flush=True,
        )
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        stop.wait()
    finally:
        for closer in (stack.close, charts.stop, git.stop, kube.stop):
            try:
                closer()
            except Exception:  # noqa: BLE001 - stop everything we can
                pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
