"""Tool lookup: ``find_tool`` follows ``PATH`` and the ``VERIRL_<TOOL>`` overrides; the remembered search result is
dropped as soon as the file found is no longer an executable file."""

from __future__ import annotations

import os
import stat

import pytest

from rewards.errors import ToolNotFoundError
from rewards.toolchain import find_tool, which


def _tool(folder, name="vvp"):
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_moved_tool_is_searched_again(tmp_path, monkeypatch):
    first, second = _tool(tmp_path / "a"), _tool(tmp_path / "b")
    monkeypatch.setenv("PATH", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    monkeypatch.delenv("VERIRL_VVP", raising=False)
    assert find_tool("vvp") == first and which("vvp") == first
    os.unlink(first)  # removed after it was remembered
    assert find_tool("vvp") == second
    os.chmod(second, 0o644)  # no longer executable
    assert which("vvp") is None
    with pytest.raises(ToolNotFoundError, match="not installed or not on PATH"):
        find_tool("vvp")


def test_another_path_is_another_search(tmp_path, monkeypatch):
    first, second = _tool(tmp_path / "a"), _tool(tmp_path / "b")
    monkeypatch.delenv("VERIRL_VVP", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "a"))
    assert find_tool("vvp") == first
    monkeypatch.setenv("PATH", str(tmp_path / "b"))
    assert find_tool("vvp") == second


def test_the_override_wins_and_is_checked(tmp_path, monkeypatch):
    mine = _tool(tmp_path / "own")
    monkeypatch.setenv("VERIRL_VVP", mine)
    assert find_tool("vvp") == mine
    monkeypatch.setenv("VERIRL_VVP", str(tmp_path / "missing"))
    with pytest.raises(ToolNotFoundError, match="VERIRL_VVP"):
        find_tool("vvp")
