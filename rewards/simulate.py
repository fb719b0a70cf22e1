"""Function level by simulation: run the candidate against the task's self-checking testbench.

Files are compiled in the order testbench, reference, candidate. Macros are global in
Icarus and apply only to text after their definition, so the candidate can neither
redefine the testbench's macros nor use ours: the ``verirl`` harness defines
``VERIRL_REPORT`` at the top of the testbench and undefines it at the bottom. The report
line carries a per-run secret (a fresh random nonce written only into the testbench file,
which the candidate cannot read: ``include`` and file tasks are refused by
:mod:`rewards.sanitize`). A simulation that ends without a valid verdict is
``missing_result``, never a pass.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets

from .errors import InfrastructureError, TaskError
from .sandbox import SandboxConfig, ToolResult, Workspace
from .sanitize import rename_modules
from .syntax import IVERILOG_FLAGS, classify_compile_failure, tail
from .task import Task
from .toolchain import find_tool

logger = logging.getLogger(__name__)

REF_PREFIX = "ref_"
_VE_RESULT = re.compile(r"^Mismatches:\s*(\d+)\s+in\s+(\d+)\s+samples", re.MULTILINE)
_RTLLM_PASS = re.compile(r"Your Design Passed", re.IGNORECASE)
_RTLLM_FAIL = re.compile(r"=+\s*Error\s*=+|Test completed with\s+\d+\s*/\s*\d+\s+failures|\bfailed\b", re.IGNORECASE)


@dataclasses.dataclass
class SimResult:
    passed: bool
    failure: str | None
    pass_fraction: float
    log: str
    stdout: str = ""
    compile_seconds: float = 0.0
    sim_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class SimLimits:
    """Timeouts for one simulation; the run timeout adapts to the reference's own run time."""

    compile_timeout: float = 20.0
    min_timeout: float = 0.3
    timeout_factor: float = 10.0
    max_timeout: float = 20.0

    def run_timeout(self, reference_seconds: float | None) -> float:
        if reference_seconds is None:
            return self.max_timeout
        return min(self.max_timeout, max(self.min_timeout, self.timeout_factor * reference_seconds + 0.2))


def reference_as_candidate(task: Task) -> str:
    """The task's golden design, named as the candidate must be named."""
    if task.reference is None:
        raise TaskError(f"task {task.id!r} has no reference design")
    if task.harness == "verilog-eval":
        return rename_modules(task.reference, {"RefModule": task.top})
    return task.reference


def _testbench_file(task: Task, nonce: str) -> str:
    assert task.testbench is not None
    if task.harness != "verirl":
        return task.testbench
    header = (
        f"`define VERIRL_REPORT(p, t) begin $display(\"VERIRL-RESULT-{nonce} %0d %0d\", (p), (t)); "
        "$finish; end\n"
    )
    return header + task.testbench + "\n`undef VERIRL_REPORT\n"


def _reference_file(task: Task) -> str | None:
    if task.reference is None or task.harness == "rtllm":
        return None  # RTLLM testbenches instantiate only the design under test
    if task.harness == "verirl":
        from . import lexer

        names = lexer.module_names(task.reference)
        return rename_modules(task.reference, {n: REF_PREFIX + n for n in names})
    return task.reference


def simulate(
    task: Task,
    candidate: str,
    *,
    config: SandboxConfig | None = None,
    limits: SimLimits = SimLimits(),
    run_timeout: float | None = None,
) -> SimResult:
    """Compile sanitized ``candidate`` with the task's testbench and run it."""
    if not task.testbench:
        raise TaskError(f"task {task.id!r} has no testbench to simulate against")
    nonce = secrets.token_hex(16)
    files: dict[str, str] = dict(task.files)
    files["verirl_tb.v"] = _testbench_file(task, nonce)
    order = ["verirl_tb.v"]
    ref = _reference_file(task)
    if ref is not None:
        files["verirl_ref.v"] = ref
        order.append("verirl_ref.v")
    files["verirl_cand.v"] = candidate
    order.append("verirl_cand.v")

    iverilog, vvp = find_tool("iverilog"), find_tool("vvp")
    argv = [iverilog, *IVERILOG_FLAGS, "-o", "verirl_sim.vvp"]
    if task.harness == "verilog-eval":  # the official harness's warning flags, so logs read the same
        argv += ["-Wall", "-Winfloop", "-Wno-timescale"]
    if task.tb_top:
        argv += ["-s", task.tb_top]
    with Workspace(files, config) as ws:
        comp = ws.run([*argv, *order], timeout=limits.compile_timeout)
        if not comp.ok:
            failure = classify_compile_failure(comp)
            return SimResult(False, failure, 0.0, tail(comp.output), compile_seconds=comp.elapsed)
        timeout = run_timeout if run_timeout is not None else limits.max_timeout
        # -n: $stop acts as $finish (never an interactive prompt); -none: no waveform dump is written
        run = ws.run([vvp, "-n", "verirl_sim.vvp", "-none"], timeout=timeout)
    result = _verdict(task, run, nonce)
    if comp.output.strip():  # compiler warnings (e.g. missing sensitivities) explain many mismatches
        result.log = tail(comp.output.strip() + "\n" + result.log)
    result.compile_seconds = comp.elapsed
    result.sim_seconds = run.elapsed
    return result


def _verdict(task: Task, run: ToolResult, nonce: str) -> SimResult:
    out = run.stdout
    log = tail(run.output)
    if run.timed_out:
        return SimResult(False, "timeout", 0.0, log, out)
    if run.output_flood or run.killed_by_limit:
        return SimResult(False, "resource", 0.0, log, out)
    if run.signal is not None:
        raise InfrastructureError(f"vvp was killed by signal {run.signal}: {tail(run.output, 500)}")
    if task.harness == "verirl":
        return _verdict_verirl(out, log, nonce)
    if task.harness == "verilog-eval":
        return _verdict_verilog_eval(out, log)
    return _verdict_rtllm(out, log)


def _verdict_verirl(out: str, log: str, nonce: str) -> SimResult:
    marker = f"VERIRL-RESULT-{nonce} "
    lines = [line for line in out.splitlines() if line.startswith(marker)]
    if len(lines) != 1:
        reason = "no verdict" if not lines else "more than one verdict"
        return SimResult(False, "missing_result", 0.0, f"{reason}: the simulation ended before the testbench "
                         f"reported\n{log}", out)
    try:
        passed, total = (int(x) for x in lines[0][len(marker):].split())
    except ValueError:
        return SimResult(False, "missing_result", 0.0, f"unreadable verdict line\n{log}", out)
    if total <= 0:
        return SimResult(False, "missing_result", 0.0, f"the testbench ran no checks\n{log}", out)
    fraction = max(0.0, min(1.0, passed / total))
    ok = passed == total
    return SimResult(ok, None if ok else "mismatch", fraction, log, out)


def _verdict_verilog_eval(out: str, log: str) -> SimResult:
    if re.search(r"^TIMEOUT", out, re.MULTILINE):
        return SimResult(False, "timeout", 0.0, log, out)
    matches = _VE_RESULT.findall(out)
    if len(matches) != 1:
        return SimResult(False, "missing_result", 0.0, f"no single 'Mismatches: M in N samples' line\n{log}", out)
    mismatches, samples = int(matches[0][0]), int(matches[0][1])
    if samples <= 0:
        return SimResult(False, "missing_result", 0.0, f"zero samples checked (simulation ended early)\n{log}", out)
    fraction = max(0.0, 1.0 - mismatches / samples)
    ok = mismatches == 0
    return SimResult(ok, None if ok else "mismatch", fraction, log, out)


def _verdict_rtllm(out: str, log: str) -> SimResult:
    passed = _RTLLM_PASS.search(out) is not None
    failed = _RTLLM_FAIL.search(out.replace("Your Design Passed", "")) is not None
    if passed and not failed:
        return SimResult(True, None, 1.0, log, out)
    if failed:
        return SimResult(False, "mismatch", 0.0, log, out)
    return SimResult(False, "missing_result", 0.0, f"the testbench printed no verdict\n{log}", out)
