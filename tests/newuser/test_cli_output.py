"""Every subcommand's output survives a reader that stops early (`verirl equiv ... | head`): no traceback, no
"Exception ignored" at exit, the shell's broken-pipe status 141; and a pipe to another process that breaks is still
an error, not silenced."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from verirl.cli import BROKEN_PIPE_STATUS, SUBCOMMANDS

from .conftest import verirl_env

GOLDEN = "module top(input [3:0] a, b, output [4:0] s);\n  assign s = a + b;\nendmodule\n"


def _into_closed_pipe(args: list[str], cwd=None) -> subprocess.CompletedProcess:
    """Run `verirl ARGS` with stdout on a pipe whose reader has already gone (what `| head` leaves behind once head
    has exited): the first write fails, deterministically."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "verirl.cli", *args], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, env=verirl_env(), cwd=cwd, timeout=600, check=False)
    finally:
        os.close(write_end)


def _assert_quiet_broken_pipe(proc: subprocess.CompletedProcess, statuses=(BROKEN_PIPE_STATUS,)) -> None:
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert "Exception ignored" not in proc.stderr, proc.stderr
    assert proc.returncode in statuses, (proc.returncode, proc.stderr[-2000:])


@pytest.mark.parametrize("command", [None, *SUBCOMMANDS])
def test_help_of_every_subcommand_into_a_closed_pipe(command):
    # argparse itself ignores a failed write of its help text (exit 0); whatever reaches the buffer is flushed
    # inside the handler
    _assert_quiet_broken_pipe(_into_closed_pipe([command, "--help"] if command else ["--help"]),
                              statuses=(0, BROKEN_PIPE_STATUS))


def test_doctor_into_a_closed_pipe():
    _assert_quiet_broken_pipe(_into_closed_pipe(["doctor"]))


@pytest.mark.eda
def test_equiv_into_a_closed_pipe(eda, tmp_path):
    (tmp_path / "g.v").write_text(GOLDEN)
    (tmp_path / "c.v").write_text(GOLDEN.replace("a + b", "b + a"))
    _assert_quiet_broken_pipe(_into_closed_pipe(["equiv", "--golden", "g.v", "--candidate", "c.v"], cwd=tmp_path))


def test_output_to_a_reader_that_stays_is_unchanged():
    proc = subprocess.run([sys.executable, "-m", "verirl.cli", "--help"], capture_output=True, text=True,
                          env=verirl_env(), timeout=600, check=False)
    assert proc.returncode == 0 and "models" in proc.stdout and proc.stderr == ""


def test_a_broken_pipe_that_is_not_stdout_is_still_an_error(monkeypatch, capsys):
    """Only the reader of our own output leaving is quiet; a tool's pipe breaking must surface."""
    from verirl import cli

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe (a worker's stdin)")

    monkeypatch.setattr(cli, "_run", broken)
    with pytest.raises(BrokenPipeError):
        cli.main(["doctor"])
