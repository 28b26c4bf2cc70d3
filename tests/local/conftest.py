"""tests/local: the ``slow`` marker (full package build, > 60 s with wheel downloads).

Slow tests run only when asked for (``-m slow`` or GITFERRY_SLOW=1), so ``make test`` stays fast."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a minute (full package build); -m slow to run")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow" in (config.getoption("-m") or "") or os.environ.get("GITFERRY_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow or GITFERRY_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
