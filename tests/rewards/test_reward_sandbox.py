"""The sandbox: scrubbed environment, limits, group kill, bounded output."""

from __future__ import annotations

import os
import select
import signal

import pytest

from rewards import sandbox
from rewards.errors import InfrastructureError
from rewards.sandbox import Limits, SandboxConfig, Workspace, capabilities


def test_argv_string_is_refused():
    with Workspace({}) as ws, pytest.raises(TypeError):
        ws.run("echo hi", timeout=5)


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    monkeypatch.setenv("WANDB_API_KEY", "secret2")
    with Workspace({}) as ws:
        result = ws.run(["env"], timeout=10)
    assert result.ok
    assert "secret" not in result.stdout
    names = {line.split("=", 1)[0] for line in result.stdout.splitlines()}
    assert names <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PWD", "SHLVL", "_"}


def _gone(pid: int) -> bool:
    """The process exits (a SIGKILL is delivered asynchronously: wait for the exit itself, at most 10 s)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], 10)[0])
    finally:
        os.close(fd)


BUSY = "while :; do :; done"


def test_cpu_budget_kills_a_busy_loop_and_its_group():
    with Workspace({}) as ws:
        result = ws.run(["sh", "-c", f"sleep 30 & echo $!; {BUSY}"], timeout=0.3)
    assert result.timed_out and not result.ok
    assert result.cpu_seconds >= 0.3
    assert _gone(int(result.stdout.split()[0]))  # the sleeping helper died with the group


def test_cpu_budget_counts_child_processes():
    """iverilog runs its preprocessor and compiler as children: their CPU time counts against the budget."""
    with Workspace({}) as ws:
        result = ws.run(["sh", "-c", f"sh -c '{BUSY}'"], timeout=0.3)
    assert result.timed_out


def _blind_sampler(monkeypatch) -> None:
    """The CPU sampler sees nothing (as when a loaded machine starves the thread that reads ``/proc``): only
    the kernel's RLIMIT_CPU can end the tool."""
    monkeypatch.setattr(sandbox, "_tree_cpu", lambda pid: 0.0)


def test_the_kernel_backstop_ends_a_busy_tool_with_sigxcpu_a_timeout(monkeypatch):
    """The kernel counts CPU time ahead of what ``wait4`` reports (a fifth less, measured on a loaded machine), so
    a tool killed by the hard limit could report less CPU than its budget and read as a crash: a hanging design
    scored ``runtime_mismatch`` instead of ``timeout``. The soft limit comes first and says what happened."""
    _blind_sampler(monkeypatch)
    with Workspace({}) as ws:
        result = ws.run(["sh", "-c", BUSY], timeout=0.5)
    assert result.signal == signal.SIGXCPU and result.timed_out and not result.ok


def test_a_tool_that_ignores_sigxcpu_still_ends_as_a_timeout(monkeypatch):
    _blind_sampler(monkeypatch)
    with Workspace({}) as ws:
        result = ws.run(["sh", "-c", f"trap '' XCPU; {BUSY}"], timeout=0.5)
    assert result.signal == signal.SIGKILL and result.timed_out


def test_the_cpu_limits_put_the_soft_limit_first():
    for budget, soft in ((0.05, 2), (5.0, 6), (100.0, 60)):
        (cpu,) = [a for a in sandbox._prefix(SandboxConfig(), budget)[0] if a.startswith("--cpu=")]
        low, high = map(int, cpu.removeprefix("--cpu=").split(":"))
        assert (low, high > low) == (soft, True)


def test_sleeping_past_the_cpu_budget_is_not_a_timeout():
    """A tool that waits (a starved process, a loaded machine) without using its CPU budget is not timed out."""
    config = SandboxConfig(wall_factor=1.0, wall_grace=20.0)
    with Workspace({}, config) as ws:
        result = ws.run(["sh", "-c", "sleep 0.6; echo done"], timeout=0.1)
    assert result.ok and not result.timed_out and result.stdout.strip() == "done"
    assert result.cpu_seconds < 0.1


def test_wall_clock_backstop_is_an_infrastructure_fault_and_kills_the_group():
    config = SandboxConfig(wall_factor=1.0, wall_grace=2.0)  # the helper is started long before
    with Workspace({}, config) as ws:
        with pytest.raises(InfrastructureError, match="not the fault of its input"):
            ws.run(["sh", "-c", "sleep 30 & echo $! > helper.pid; sleep 30"], timeout=0.1)
        with open(os.path.join(ws.path, "helper.pid")) as fh:
            helper = int(fh.read())
    assert _gone(helper)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_call_kills_the_tool_group(monkeypatch, exc):
    """A cancelled Ray task raises in the thread that runs the tool: the tool and its helpers die with it."""
    started = {}

    def interrupted(proc, *args):
        started["tool"] = proc.pid
        started["helper"] = int(proc.stdout.readline())  # the tool says it is running: no timing window
        raise exc("cancelled")

    monkeypatch.setattr(sandbox, "_communicate", interrupted)
    with Workspace({}) as ws, pytest.raises(exc):
        ws.run(["sh", "-c", "sleep 30 & echo $!; sleep 30"], timeout=60)
    assert _gone(started["tool"]) and _gone(started["helper"])
    with pytest.raises(ChildProcessError):  # reaped: no zombie left to the caller
        os.waitpid(started["tool"], os.WNOHANG)


def test_tool_runs_are_booked_by_stage():
    with sandbox.accounting() as outer, Workspace({}) as ws:
        with sandbox.stage("first"):
            ws.run(["true"], timeout=5)
            ws.run(["true"], timeout=5)
        with sandbox.accounting() as inner, sandbox.stage("second"):
            ws.run(["true"], timeout=5)
            with sandbox.stage("nested"):
                ws.run(["true"], timeout=5)
    assert outer["first"]["runs"] == 2 and outer["second"]["runs"] == 1 and outer["second/nested"]["runs"] == 1
    assert set(inner) == {"second", "second/nested"} and inner["second"]["wall_s"] > 0


def test_output_flood_is_cut_and_killed():
    """Killed for its output, not left to use its CPU budget (without the cut, `yes` would run until timed out)."""
    config = SandboxConfig(limits=Limits(output_bytes=4096))
    with Workspace({}, config) as ws:
        result = ws.run(["sh", "-c", "sleep 30 & echo $! >&2; exec yes"], timeout=10)
    assert result.output_flood and len(result.stdout) <= 4096 and not result.ok
    assert not result.timed_out and result.signal == signal.SIGKILL
    assert _gone(int(result.stderr.split()[0]))  # the group went with it


def test_memory_cap():
    config = SandboxConfig(limits=Limits(memory_mb=64))
    with Workspace({}, config) as ws:
        result = ws.run(["python3", "-c", "x = bytearray(512 * 1024 * 1024)"], timeout=20)
    assert result.returncode != 0
    assert "MemoryError" in result.stderr


def test_file_size_cap():
    config = SandboxConfig(limits=Limits(file_size_mb=1))
    with Workspace({}, config) as ws:
        result = ws.run(["sh", "-c", "head -c 5000000 /dev/zero > big.bin"], timeout=20)
        size = os.path.getsize(os.path.join(ws.path, "big.bin"))
    assert size <= 1024 * 1024 and result.returncode != 0


def test_workspace_is_removed():
    with Workspace({"a.txt": "hello"}) as ws:
        path = ws.path
        with open(os.path.join(path, "a.txt")) as fh:
            assert fh.read() == "hello"
    assert not os.path.exists(path)


def test_file_names_must_stay_inside():
    with Workspace({}) as ws:
        for bad in ["/etc/x", "../x", "a/../../x", ""]:
            with pytest.raises(ValueError):
                ws.write(bad, "x")


@pytest.mark.skipif(not capabilities()["drop_privileges"], reason="needs root and setpriv to drop privileges")
def test_tools_run_as_nobody_and_cannot_write_outside():
    with Workspace({}) as ws:
        result = ws.run(["sh", "-c", "id -u; touch /root/verirl_x 2>&1; touch ./inside && echo wrote"], timeout=10)
    assert result.stdout.splitlines()[0] == "65534"
    assert "wrote" in result.stdout
    assert not os.path.exists("/root/verirl_x")


@pytest.mark.skipif(not capabilities()["isolate_network"], reason="needs unshare --net (root or user namespaces)")
def test_no_network():
    with Workspace({}) as ws:
        result = ws.run(["python3", "-c", ("import socket; s = socket.socket(); s.settimeout(2); "
                                           "print(s.connect_ex(('127.0.0.1', 22)))")], timeout=10)
    # in an empty network namespace even loopback is down: connect fails at once
    assert result.stdout.strip() not in ("0", "")


COUNTER = ("module counter(input clk, input rst, output reg [7:0] q);\n"
           "  always @(posedge clk) if (rst) q <= 8'd0; else q <= q + 8'd1;\nendmodule\n")


def test_synthesis_that_runs_out_of_cpu_says_so(eda):
    from rewards.synth import synthesize

    # Yosys needs far more than 10 ms of CPU time to start: the budget is used up whatever the machine's load
    starved = synthesize(COUNTER, "counter", timeout=0.01)
    assert not starved.ok and starved.timed_out and starved.cells is None
    done = synthesize(COUNTER, "counter", timeout=60)
    assert done.ok and not done.timed_out and done.cells and done.cpu_seconds > 0.01
    # a design Yosys refuses is a synthesis failure, not a timeout
    broken = synthesize(COUNTER.replace("q + 8'd1", "missing_wire_fn(q)"), "counter", timeout=60)
    assert not broken.ok and not broken.timed_out and broken.log


# ------------------------------------------------------------------ a tool the sandbox could not start

@pytest.mark.skipif(not capabilities()["drop_privileges"], reason="needs root to run tools as nobody")
@pytest.mark.parametrize("tool", [["true"], ["sh", "-c", "echo started"]])
def test_a_tool_whose_exec_the_process_limit_refuses_is_an_infrastructure_fault(tool):
    """RLIMIT_NPROC counts every process of the tools' user: at the limit the exec of the tool itself fails (the
    wrapper says so and exits 126), which is the machine's state, never the tool's verdict on its input."""
    with Workspace({}, SandboxConfig(limits=Limits(processes=1))) as ws, \
            pytest.raises(InfrastructureError, match="could not start|cannot start"):
        ws.run(tool, timeout=10)


@pytest.mark.parametrize(("returncode", "stderr", "refused"), [
    (126, b"unshare: failed to execute /usr/bin/vvp: Resource temporarily unavailable\n", True),
    (127, b"prlimit: failed to execute nosuch: No such file or directory\n", True),
    (1, b"unshare: unshare failed: Operation not permitted\n", True),
    (1, b"ERROR: Module `\\unshare: ' not found\n", False),  # the tool's own message
    (0, b"unshare: failed to execute x\n", False),  # a tool that ran and succeeded
    (2, b"unshare: failed to execute x\n", False),  # not a wrapper's exit status
    (126, b"candidate.v:1: syntax error\nunshare: failed to execute x\n", False),  # not the first line
])
def test_only_the_wrappers_own_failure_reads_as_a_tool_that_never_started(returncode, stderr, refused):
    assert (sandbox._wrapper_failure(returncode, stderr) is not None) is refused
