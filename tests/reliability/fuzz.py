"""Coverage-guided fuzzing (atheris / libFuzzer) of the properties in properties.py.

    python -m tests.reliability.fuzz --seconds 120            # every target, the budget shared
    python -m tests.reliability.fuzz --seconds 30 webhook     # one target

Each target runs in its own process for its share of the budget (libFuzzer's
``-max_total_time``); a property violation or an unexpected exception is a crash: libFuzzer
writes the input to ``.cache/fuzz/crash-*`` and the run fails. Without atheris (no wheel for
this platform) the same properties run under hypothesis for the same time budget.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("application", "yaml", "json", "webhook", "diff")


def _one_input(target: str):  # type: ignore[no-untyped-def]
    import atheris

    with atheris.instrument_imports():
        import yaml

        from tests.reliability import properties as p

    providers = sorted(p.PROVIDER_HEADERS)

    def application(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        path = p.APP_PATHS[fdp.ConsumeIntInRange(0, len(p.APP_PATHS) - 1)]
        text = fdp.ConsumeUnicodeNoSurrogates(len(data))
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        p.check_application([(path, value)])

    def yaml_target(data: bytes) -> None:
        p.check_manifest_text(data.decode("utf-8", "replace"))

    def json_target(data: bytes) -> None:
        p.check_manifest_text(data.decode("utf-8", "replace"), "objects.json")

    def webhook(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        provider = providers[fdp.ConsumeIntInRange(0, len(providers) - 1)]
        p.check_webhook(provider, fdp.ConsumeBytes(len(data)))

    def diff_target(data: bytes) -> None:
        try:
            obj = json.loads(data.decode("utf-8", "replace"))
        except ValueError:
            return
        if not isinstance(obj, dict):
            return
        obj.update({"apiVersion": "v1", "kind": str(obj.get("kind") or "ConfigMap"),
                    "metadata": {"name": "fuzzed", **(obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {})}})
        obj["metadata"]["name"] = "fuzzed"
        p.check_diff(obj)

    return {"application": application, "yaml": yaml_target, "json": json_target, "webhook": webhook,
            "diff": diff_target}[target]


def run_target(target: str, seconds: int) -> None:
    """In this process: fuzz ``target`` for ``seconds`` (libFuzzer exits when done)."""
    import atheris

    sys.path.insert(0, str(ROOT / "layers" / "core"))
    sys.path.insert(0, str(ROOT))
    out = ROOT / ".cache" / "fuzz"
    corpus = out / f"corpus-{target}"
    corpus.mkdir(parents=True, exist_ok=True)
    one_input = _one_input(target)  # imports gitferry instrumented: before anything else imports it
    from tests.reliability.properties import SEEDS

    (corpus / "seed").write_bytes(SEEDS[target])
    argv = [sys.argv[0], f"-max_total_time={seconds}", "-rss_limit_mb=2048", "-max_len=4096",
            f"-artifact_prefix={out}/crash-{target}-", str(out / f"corpus-{target}")]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


def _hypothesis_fallback(targets: list[str], seconds: int) -> int:
    print("atheris is not installed here: running the properties under hypothesis instead", flush=True)
    deadline = time.monotonic() + seconds
    names = {"application": "application_parser", "yaml": "manifest_loader_loads", "json": "json_manifest",
             "webhook": "webhook", "diff": "diff_normalise"}
    rc = 0
    while time.monotonic() < deadline and rc == 0:
        expr = " or ".join(names[t] for t in targets)
        rc = subprocess.call([sys.executable, "-m", "pytest", "-p", "no:xdist", "-q",
                              str(ROOT / "tests/reliability/test_properties.py"), "-k", expr],
                             env={**os.environ, "GITFERRY_HYPOTHESIS_EXAMPLES": "2000"})
    return rc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "100")))
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    parser.add_argument("targets", nargs="*", help=f"any of {', '.join(TARGETS)} (default: all)")
    args = parser.parse_args()
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown targets {unknown}: choose from {', '.join(TARGETS)}")
    if args.run_one:
        run_target(args.run_one, args.seconds)
        return 0
    targets = list(args.targets) or list(TARGETS)
    try:
        import atheris  # noqa: F401
    except ImportError:
        return _hypothesis_fallback(targets, args.seconds)
    share = max(5, args.seconds // len(targets))
    failed = []
    for target in targets:
        print(f"== fuzzing {target} for {share} s", flush=True)
        rc = subprocess.call([sys.executable, "-m", "tests.reliability.fuzz", "--run-one", target,
                              "--seconds", str(share)], cwd=ROOT)
        if rc != 0:
            failed.append(target)
    print(f"== fuzz: {len(targets) - len(failed)} of {len(targets)} targets clean"
          + (f"; crashes in {', '.join(failed)} (inputs in .cache/fuzz/)" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
