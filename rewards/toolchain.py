"""Locate the EDA tools verirl drives and report their versions.

Every tool can be overridden with an environment variable (``VERIRL_IVERILOG``,
``VERIRL_VVP``, ``VERIRL_YOSYS``, ``VERIRL_VERILATOR``) holding an absolute path.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess

from .errors import ToolNotFoundError

TOOLS = ("iverilog", "vvp", "yosys", "verilator")

#: Debian package that provides each tool, used in the "how to install" hint.
_PACKAGE = {"iverilog": "iverilog", "vvp": "iverilog", "yosys": "yosys", "verilator": "verilator"}
_VERSION_ARGS = {"iverilog": ["-V"], "vvp": ["-V"], "yosys": ["-V"], "verilator": ["--version"]}


def find_tool(name: str) -> str:
    """Return the absolute path of EDA tool ``name`` or raise :class:`ToolNotFoundError`."""
    if name not in _PACKAGE:
        raise ValueError(f"unknown tool {name!r}; known tools: {', '.join(TOOLS)}")
    override = os.environ.get(f"VERIRL_{name.upper()}")
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override
        raise ToolNotFoundError(f"VERIRL_{name.upper()}={override!r} is not an executable file")
    path = which(name)
    if path is None:
        raise ToolNotFoundError(
            f"{name} is not installed or not on PATH; install it with "
            f"`apt-get install -y {_PACKAGE[name]}` (or run scripts/install.sh)"
        )
    return path


def which(name: str) -> str | None:
    """``shutil.which(name)``, remembered per ``PATH`` while the file found is still an executable file: every tool run
    asks for its wrapper and its tool, and a search of ``PATH`` costs more than checking one file again."""
    search = os.environ.get("PATH", os.defpath)
    found = _which(name, search)
    if found is not None and not (os.path.isfile(found) and os.access(found, os.X_OK)):
        _which.cache_clear()  # moved or removed since: search again
        found = _which(name, search)
    return found


@functools.lru_cache(maxsize=64)
def _which(name: str, search: str) -> str | None:
    return shutil.which(name, path=search)


def has_tool(name: str) -> bool:
    try:
        find_tool(name)
    except ToolNotFoundError:
        return False
    return True


@functools.cache
def tool_version(name: str) -> str | None:
    """The first version line a tool prints, or ``None`` when it is missing."""
    try:
        path = find_tool(name)
    except ToolNotFoundError:
        return None
    try:
        proc = subprocess.run(
            [path, *_VERSION_ARGS[name]], capture_output=True, text=True, timeout=20, errors="replace", check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (proc.stdout or proc.stderr).strip().splitlines()
    line = text[0] if text else ""
    match = re.search(r"\d+\.\d+(\.\d+)?", line)
    return line if match else (line or None)


def tool_versions() -> dict[str, str | None]:
    """Versions of every known tool (``None`` for missing ones)."""
    return {name: tool_version(name) for name in TOOLS}
