"""Shared test configuration.

EDA tools: tests that need iverilog/yosys use the ``eda`` fixture. On a developer machine
without the tools they are skipped with the tool's name; in CI (``VERIRL_REQUIRE_EDA=1`` or
``CI=true``) a missing tool fails the whole run instead, so a broken install cannot pass.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

# The reward engine remembers per-task facts on disk (rewards.task_facts); tests, and the CLIs they start, use a
# private folder so that no run depends on what an earlier one (or the user's own work) left there.
os.environ["VERIRL_CACHE_DIR"] = tempfile.mkdtemp(prefix="verirl-test-cache-")

REQUIRED_TOOLS = ("iverilog", "vvp", "yosys")


def _require_eda() -> bool:
    return os.environ.get("VERIRL_REQUIRE_EDA") == "1" or os.environ.get("CI", "").lower() == "true"


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(os.environ["VERIRL_CACHE_DIR"], ignore_errors=True)


def pytest_sessionstart(session):
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing and _require_eda():
        pytest.exit(f"EDA tools missing in CI: {', '.join(missing)} (install with scripts/install.sh)", returncode=3)


@pytest.fixture
def eda():
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install -y iverilog yosys)")
