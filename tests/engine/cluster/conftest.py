"""Fixtures for the cluster side of the engine (kube, tracking, diff, health, sync).

``gitferry`` lives in ``layers/core`` (a Lambda layer), which is not a package directory of the
repo root, so make it importable when the venv's editable install does not already do it.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
for path in (os.path.join(ROOT, "layers", "core"), ROOT):
    if path not in sys.path:
        sys.path.insert(0, path)
