"""Kill the tool processes of a build and remove its scratch folder (standard library only).

Every sandboxed tool of a build runs with its working directory inside ``<output_dir>/.tmp`` and in
its own process group (:mod:`rewards.sandbox`). :func:`kill_tool_groups` finds such processes
through ``/proc/<pid>/cwd`` and kills their whole groups (Yosys' ABC helper included).

Run as a script (``python watchdog.py <scratch folder>``), this module is the build's watchdog: it
is started in its own session with a pipe from the build on its standard input, waits until that
pipe closes — the build finished, stopped, or was killed with ``SIGKILL`` — then kills what is left
under the scratch folder and removes it. So even ``kill -9`` of the build (or of its process
group) leaves no orphaned Yosys and no temporary folder behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def tool_processes(root: str) -> list[int]:
    """PIDs (not our own) whose working directory lies under ``root``."""
    root = os.path.realpath(root)
    me = os.getpid()
    found = []
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        if pid == me:
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue  # gone, or not ours to inspect
        cwd = cwd.removesuffix(" (deleted)")
        if _under(cwd, root):
            found.append(pid)
    return found


def kill_tool_groups(root: str) -> int:
    """SIGKILL the process group of every process working under ``root``; returns how many groups."""
    groups = set()
    for pid in tool_processes(root):
        try:
            groups.add(os.getpgid(pid))
        except OSError:
            continue
    own = os.getpgid(0)
    for pgid in groups:
        if pgid in (own, 0, 1):
            continue
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    return len(groups)


def clean(root: str) -> None:
    """Kill the tools working under ``root``, remove it, and its parent when that is left empty."""
    kill_tool_groups(root)
    shutil.rmtree(root, ignore_errors=True)
    try:
        os.rmdir(os.path.dirname(root))  # fails, harmlessly, while another run's folder is in it
    except OSError:
        pass


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: watchdog.py <scratch folder>", file=sys.stderr)
        return 2
    root = argv[1]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the build; it closes the pipe
    try:
        while sys.stdin.buffer.read(65536):
            pass
    except OSError:
        pass
    clean(root)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
