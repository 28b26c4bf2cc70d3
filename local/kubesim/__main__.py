"""``python -m local.kubesim serve --port PORT --kubeconfig PATH``: a standalone kubesim.

The kubeconfig appears (atomically) only once the server accepts requests, so scripts can
wait for the file instead of polling the port. Runs until SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from local.kubesim.server import KubeSim


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.kubesim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the emulated Kubernetes API over HTTPS")
    serve.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free port)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    serve.add_argument("--read-only-token", metavar="PATH", default=None,
                       help="also write a kubeconfig with a read-only token (writes get 403) to PATH")
    serve.add_argument("--no-controllers", action="store_true", help="do not run the simulated controllers")
    serve.add_argument("--latency-ms", type=float, default=0.0,
                       help="wait this long before answering each request (a network round trip; default 0)")
    args = parser.parse_args(argv)
    if args.latency_ms < 0:
        parser.error("--latency-ms must be >= 0")

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sim = KubeSim(host=args.host, port=args.port, kubeconfig_path=args.kubeconfig,
                  read_only_token=bool(args.read_only_token), run_controllers=not args.no_controllers,
                  latency_ms=args.latency_ms)
    sim.start()
    try:
        if args.read_only_token:
            sim.write_kubeconfig(args.read_only_token, read_only=True)
        print(f"kubesim serving {sim.url} (kubeconfig {sim.kubeconfig_path})", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
