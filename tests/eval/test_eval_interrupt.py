"""Interruptible evaluation: results are on disk as they are scored; Ctrl-C (SIGINT) or SIGTERM stops the run with
one line saying how many samples are saved and how to resume; the rerun says it resumes, scores only the rest, and
ends with the pass@k of an uninterrupted run. A progress bar with the pass rate so far shows on a terminal only.

The interruption is exact, not timed: ``VERIRL_EVAL_STOP_AFTER=N`` makes the process signal itself once N samples
are saved (a hook of verirl.eval.cli)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest

pytestmark = pytest.mark.eda

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AND_OK = "[BEGIN]\nmodule TopModule(input a, input b, output out);\n  assign out = a & b;\nendmodule\n[DONE]"
AND_BAD = "[BEGIN]\nmodule TopModule(input a, input b, output out);\n  assign out = a | b;\nendmodule\n[DONE]"
CNT_OK = ("```verilog\nmodule TopModule(input clk, input reset, output reg [3:0] q);\n"
          "  always @(posedge clk) q <= reset ? 4'd0 : q + 4'd1;\nendmodule\n```")


@pytest.fixture
def completions(tmp_path):
    rows = []
    for i in range(6):
        rows.append({"task_id": "Prob001_and2", "completion": AND_OK if i % 2 else AND_BAD})
        rows.append({"task_id": "Prob002_count4", "completion": CNT_OK if i % 3 else AND_BAD})
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _eval(ve_dir, completions, out, stop=None, stderr=subprocess.PIPE):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("VERIRL_EVAL_STOP_AFTER", None)
    if stop:
        env["VERIRL_EVAL_STOP_AFTER"] = stop
    argv = [sys.executable, "-m", "verirl.cli", "eval", "--benchmark", "verilog-eval-v2", "--bench-dir", ve_dir,
            "--completions", completions, "--k", "1,5", "--out", str(out), "--workers", "1", "--no-plots",
            "--problems", "Prob001_and2,Prob002_count4"]
    return subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=900, check=False)


def _rows(out):
    with open(out / "results.jsonl") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.mark.parametrize("signame, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_stop_saves_what_is_scored_and_the_rerun_resumes(eda, ve_dir, completions, tmp_path, signame, status):
    whole = _eval(ve_dir, completions, tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    expected = json.loads((tmp_path / "whole" / "summary.json").read_text())["pass_at_k"]

    out = tmp_path / "run"
    stopped = _eval(ve_dir, completions, out, stop=f"4:{signame}")
    assert stopped.returncode == status, stopped.stderr[-3000:]
    assert "Traceback" not in stopped.stderr and "KeyboardInterrupt" not in stopped.stderr
    lines = [line for line in stopped.stderr.splitlines() if line.startswith("verirl eval: stopped")]
    assert len(lines) == 1, stopped.stderr
    saved = len(_rows(out))
    assert 4 <= saved < 12                      # stopped after the first appends, before the end
    assert lines[0] == (f"verirl eval: stopped by {signame}; {saved} of 12 samples scored and saved in "
                        f"{out}/results.jsonl; run the same command again to resume (scored samples are not scored "
                        "again)")
    assert not (out / "summary.json").exists()

    resumed = _eval(ve_dir, completions, out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming: {saved} of 12 samples already scored in {out}/results.jsonl" in resumed.stderr
    assert json.loads((out / "summary.json").read_text())["pass_at_k"] == expected
    assert len(_rows(out)) == 12                # compacted: one row per sample


def test_quiet_when_not_a_terminal(eda, ve_dir, completions, tmp_path):
    proc = _eval(ve_dir, completions, tmp_path / "q")
    assert proc.returncode == 0
    assert "scoring" not in proc.stderr and "it/s" not in proc.stderr and "sample/s" not in proc.stderr


def test_progress_bar_with_pass_rate_on_a_terminal(eda, ve_dir, completions, tmp_path):
    import fcntl
    import struct
    import termios
    import threading

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a new pty is 0 columns wide
    chunks: list[bytes] = []
    end = b"<<end of the command's output>>"
    drained = threading.Event()

    def read():  # drain the terminal while the command runs (a pty drops what nobody read once it closes)
        while not b"".join(chunks).endswith(end):
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        drained.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc = _eval(ve_dir, completions, tmp_path / "t", stderr=slave)
        # the terminal is a FIFO: once this marker is read back, everything the command wrote has been read
        os.write(slave, end)
        assert drained.wait(timeout=120), "the terminal's output was never read back"
    finally:
        os.close(slave)
        reader.join(timeout=60)
        os.close(master)
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0
    assert "scoring" in shown and "12/12" in shown and "pass " in shown and "%" in shown


def test_a_stop_while_sampling_counts_the_samples_on_disk(tmp_path):
    import argparse

    from verirl.eval.cli import _Progress

    progress = _Progress(argparse.Namespace(out=str(tmp_path)))
    assert progress.saved_line() == "nothing was saved yet"
    progress.phase = "generation"
    (tmp_path / "samples.jsonl").write_text('{"a": 1}\n{"a": 2}\n\n{"a": 3}\n')
    assert progress.saved_line().startswith(f"3 samples generated and saved in {tmp_path}/samples.jsonl; run the "
                                            "same command again to resume")
