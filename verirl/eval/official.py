"""A straightforward mirror of each benchmark's own harness, one problem at a time, for validation only.

VerilogEval v2's Makefile compiles ``iverilog -Wall -Winfloop -Wno-timescale -g2012 -s tb -o X.vvp X.sv
X_test.sv X_ref.sv``, runs ``vvp -n X.vvp`` and classifies the log with ``sv-iv-analyze`` (pass = no error line and a
``Mismatches: 0 in N samples`` line). RTLLM's makefiles run the testbench with the design and look for
``Your Design Passed``. This module does the same, with no sanitizing and no hardening, so that verirl's verdicts
can be checked against the benchmark's own (``scripts/bench_eval.py``, tests). The tools still run inside
:class:`rewards.sandbox.Workspace` (temporary directory, argv only, resource limits): model text never runs
outside the sandbox, even here.
"""

from __future__ import annotations

import dataclasses
import re

from .benchmarks import Problem
from .failures import classify_log

VERILOG_EVAL_FLAGS = ("-Wall", "-Winfloop", "-Wno-timescale", "-g2012")
_MISMATCH = re.compile(r"^Mismatches: (\d+) in \d+ samples$", re.MULTILINE)
_RTLLM_FAIL = re.compile(r"=+\s*Error\s*=+|Test completed with\s+\d+\s*/\s*\d+\s+failures", re.IGNORECASE)


@dataclasses.dataclass
class OfficialVerdict:
    passed: bool
    failure: str | None
    log: str


def official_verdict(problem: Problem, code: str, timeout: float = 30.0) -> OfficialVerdict:
    """Compile and run ``code`` against ``problem``'s testbench the way the benchmark's own harness does."""
    from rewards.sandbox import Workspace
    from rewards.toolchain import find_tool

    iverilog, vvp = find_tool("iverilog"), find_tool("vvp")
    files = dict(problem.files)
    if problem.harness == "verilog-eval":
        files.update({"sample.sv": code, "test.sv": problem.testbench or "", "ref.sv": problem.reference or ""})
        argv = [iverilog, *VERILOG_EVAL_FLAGS, "-s", problem.tb_top or "tb", "-o", "sim.vvp",
                "sample.sv", "test.sv", "ref.sv"]
    else:
        files.update({"design.v": code, "testbench.v": problem.testbench or ""})
        argv = [iverilog, "-g2012", "-o", "sim.vvp", "design.v", "testbench.v"]
    with Workspace(files) as ws:
        comp = ws.run(argv, timeout=timeout)
        log = comp.output
        if comp.ok:
            run = ws.run([vvp, "-n", "sim.vvp"], timeout=timeout)
            log += "\n" + run.output
            if run.timed_out:
                log += "\nTIMEOUT"
    if problem.harness == "verilog-eval":
        failure = classify_log(log, code)
        if failure in ("runtime_mismatch", "reset_issue"):
            zero = any(int(m) == 0 for m in _MISMATCH.findall(log))
            return OfficialVerdict(zero, None if zero else failure, log)
        return OfficialVerdict(False, failure, log)
    passed = "Your Design Passed" in log and not _RTLLM_FAIL.search(log)
    return OfficialVerdict(passed, None if passed else classify_log(log, code), log)
