"""Process control of a build: no orphaned tools or temp folders after SIGKILL, leftovers cleaned on
resume, one build per folder, resume that notices edited sources, normal file permissions."""

from __future__ import annotations

import os
import select
import signal
import stat
import subprocess
import sys
import textwrap

import pytest
import yaml
from data_fixtures import jsonl, make_repo

from data_pipeline.build import Builder
from data_pipeline.config import load_build_config
from data_pipeline.runctl import RunControl, scratch_root
from rewards.sandbox import Workspace

pytestmark = pytest.mark.eda


def wait_exit(pid: int, timeout: float = 60) -> bool:
    """Block until process ``pid`` (not necessarily our child) has exited: a pidfd turns readable."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_tool_jobs_run_in_the_scratch_folder(tmp_path):
    rc = RunControl(str(tmp_path / "out"))
    rc.start()
    try:
        with Workspace({"a.v": ""}, rc.sandbox()) as ws:
            assert ws.path.startswith(rc.scratch + os.sep)
    finally:
        rc.close()
    assert not os.path.exists(rc.scratch)


CHILD = textwrap.dedent("""
    import os, subprocess, sys
    from data_pipeline.runctl import RunControl
    rc = RunControl(sys.argv[1])
    rc.start()
    job = os.path.join(rc.scratch, "verirl-job")
    os.makedirs(job)
    # a tool as the sandbox runs it: its own session, working in a job folder of the scratch space
    tool = subprocess.Popen(["sleep", "300"], cwd=job, start_new_session=True)
    print(tool.pid, rc._watchdog.pid, rc.scratch, flush=True)
    sys.stdin.read()
""")


def test_sigkill_of_the_build_leaves_no_orphaned_tool_or_temp_folder(tmp_path):
    out = str(tmp_path / "out")
    child = subprocess.Popen([sys.executable, "-c", CHILD, out], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, start_new_session=True)
    tool_pid, watchdog_pid, scratch = child.stdout.readline().split()  # the tool is running now
    tool_pid, watchdog_pid = int(tool_pid), int(watchdog_pid)
    assert alive(tool_pid) and os.path.isdir(scratch)
    os.killpg(child.pid, signal.SIGKILL)  # the build and its process group, as `kill -9 -PGID` would
    child.wait()
    assert wait_exit(watchdog_pid), "the watchdog did not finish"
    assert wait_exit(tool_pid, 10) and not alive(tool_pid)
    assert not os.path.exists(scratch) and not os.path.exists(os.path.dirname(scratch))


def test_leftovers_of_a_killed_run_are_cleaned_when_the_build_restarts(tmp_path):
    out = str(tmp_path / "out")
    root = scratch_root(out)
    job = os.path.join(root, "run-1-dead", "verirl-job")
    os.makedirs(job)
    orphan = subprocess.Popen(["sleep", "300"], cwd=job, start_new_session=True)
    os.makedirs(os.path.join(out, "shards"), exist_ok=True)
    half = os.path.join(out, "shards", ".tmp-abcshard-00003.tasks.jsonl")
    open(half, "w").close()
    rc = RunControl(out)
    rc.start()
    try:
        assert orphan.wait(timeout=30) == -signal.SIGKILL
        assert not os.path.exists(os.path.join(root, "run-1-dead")) and not os.path.exists(half)
        assert os.listdir(root) == [os.path.basename(rc.scratch)]
    finally:
        rc.close()


def test_one_build_per_output_folder(tmp_path):
    first = RunControl(str(tmp_path / "out"))
    first.start()
    (tmp_path / "out" / "run.json").write_text("{}")
    try:
        with pytest.raises(ValueError, match=f"in use by another .*pid {os.getpid()}"):
            RunControl(str(tmp_path / "out")).start()
        repo = make_repo(tmp_path / "repo", {"m.v": _module("m", "+")})
        with pytest.raises(ValueError, match="--restart would delete its files"):  # --restart spares a live run
            Builder(load_build_config(_recipe(tmp_path, repo)), restart=True)
        assert (tmp_path / "out" / "run.json").exists()
    finally:
        first.close()
    again = RunControl(str(tmp_path / "out"))
    again.start()
    again.close()


def _recipe(tmp_path, repo, **extra) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "out"), "sources": [{"kind": "folder", "path": repo}],
                                    "decontaminate": {"enabled": False}, "shard_size": 2,
                                    "filters": {"synthesize": False}, "dedupe": {"near": False}, **extra}))
    return str(path)


def _module(name: str, op: str) -> str:
    return f"module {name}(input [3:0] a, input [3:0] b, output [3:0] y);\n  assign y = a {op} b;\nendmodule\n"


def test_resume_rebuilds_what_an_edited_source_changed(tmp_path):
    files = {f"m{i}.v": _module(f"m{i}", "+") for i in range(6)}
    repo = make_repo(tmp_path / "repo", files)
    lines: list[str] = []
    first = Builder(load_build_config(_recipe(tmp_path, repo)), progress=False, report=lines.append).run()
    assert first["counts"]["tasks"] == 6 and lines == []
    before = {r["top"]: r["reference"] for r in jsonl(first["dataset"]["files"]["jsonl"])}
    with open(os.path.join(repo, "m3.v"), "w") as fh:  # same module name, same count: only its content changes
        fh.write(_module("m3", "^"))
    again = Builder(load_build_config(_recipe(tmp_path, repo)), progress=False, report=lines.append).run()
    assert lines == ["resuming: 3 shards already done",
                     ("rebuilding from shard 1 on: its modules changed since it was committed (an edited source or a "
                      "grown corpus)")]
    after = {r["top"]: r["reference"] for r in jsonl(again["dataset"]["files"]["jsonl"])}
    assert "a ^ b" in after["m3"] and "a + b" in before["m3"]
    assert {k: v for k, v in after.items() if k != "m3"} == {k: v for k, v in before.items() if k != "m3"}
    # the shard before the edit was reused, the edited one and those after it rebuilt
    fresh = Builder(load_build_config(_recipe(tmp_path, repo, output_dir=str(tmp_path / "fresh"))),
                    progress=False).run()
    assert jsonl(fresh["dataset"]["files"]["jsonl"]) == \
        jsonl(again["dataset"]["files"]["jsonl"])


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_output_files_have_normal_permissions(tmp_path, umask):
    repo = make_repo(tmp_path / "repo", {"m.v": _module("m", "+")})
    old = os.umask(umask)
    try:
        manifest = Builder(load_build_config(_recipe(tmp_path, repo)), progress=False).run()
    finally:
        os.umask(old)
    out = tmp_path / "out"
    paths = [manifest["dataset"]["files"]["jsonl"], manifest["dataset"]["files"]["parquet"], out / "manifest.json",
             out / "drops.jsonl", out / "run.json", out / "shards" / "shard-00000.json",
             out / "shards" / "shard-00000.state.npz"]
    for path in paths:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask, path
