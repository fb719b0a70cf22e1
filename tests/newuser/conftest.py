"""Fixtures for the new-user tests: the `verirl` command run as a user runs it (a subprocess, a clean folder)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def verirl_env(**extra) -> dict[str, str]:
    """The environment of a `verirl` subprocess that runs this checkout's code."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


def run_verirl(args: list[str], *, cwd: str | os.PathLike | None = None, stdout=subprocess.PIPE,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """``verirl ARGS`` in a fresh interpreter, as typed in a shell."""
    return subprocess.run([sys.executable, "-m", "verirl.cli", *args], cwd=cwd, env=verirl_env(), stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def tiny_kit(tmp_path_factory) -> dict[str, str]:
    """The tiny kit as `verirl models tiny` builds it (model + tasks + DPO pairs), built once per session."""
    from verirl.models import build_tiny_kit

    return build_tiny_kit(tmp_path_factory.mktemp("kit") / "runs" / "tiny")
