"""Each benchmark's own harness, one sample at a time, and the names its logs carry.

VerilogEval v2's Makefile compiles ``iverilog -Wall -Winfloop -Wno-timescale -g2012 -s tb -o X X.sv
<dataset>/P_test.sv <dataset>/P_ref.sv`` (``X`` = ``P/P_sampleNN``), runs ``timeout 30 ./X`` into the same log
(``TIMEOUT`` appended when the timeout fires) and reads the log with ``sv-iv-analyze``
(:func:`verirl.eval.failures.sv_iv_analyze`). RTLLM's makefiles run the testbench with the design (on Synopsys VCS)
and look for "pass". :func:`official_verdict` does the same on Icarus, with no sanitizing and no hardening, so that
verirl's verdicts can be checked against the benchmark's own (``scripts/bench_eval.py``, tests).

:func:`official_log` renames the files in a reward-engine log to the names the official flow gives them, so that
the official analysis reads what it would read there (the sample's path, the dataset's path, the candidate's own
module names without the sanitizer's prefix). :func:`compile_log` recompiles a (sanitized) candidate the official way
when the engine's log was cut at its head. Tools always run inside :class:`rewards.sandbox.Workspace` (temporary
directory, argv only, resource limits): model text never runs outside the sandbox, even here.
"""

from __future__ import annotations

import dataclasses
import os
import re

from .benchmarks import Problem
from .failures import LETTER_CLASSES, classify_log, sv_iv_analyze

VERILOG_EVAL_FLAGS = ("-Wall", "-Winfloop", "-Wno-timescale", "-g2012")
OFFICIAL_TIMEOUT = 30.0
_RTLLM_FAIL = re.compile(r"=+\s*Error\s*=+|Test completed with\s+\d+\s*/\s*\d+\s+failures", re.IGNORECASE)
#: the reward engine's file names (rewards.simulate) → the part of the official flow they play
_ENGINE_FILES = {"verirl_cand.v": "sample", "verirl_tb.v": "test", "verirl_ref.v": "ref"}
#: the prefix rewards.sanitize gives the candidate's own non-top modules
_SANITIZER_PREFIX = re.compile(r"\bverirl_c[0-9a-f]{8}_")
#: the candidate's file when rewards.syntax elaborates it alone (the log of a failure found there)
_STANDALONE_FILE = re.compile(r"(?<![\w/.])cand\.v\b")
_DATASET = "dataset"


@dataclasses.dataclass
class OfficialVerdict:
    passed: bool
    failure: str | None
    log: str


def official_names(problem: Problem, sample_index: int = 0) -> dict[str, str]:
    """The paths the official make flow compiles: the sample in the build folder, the testbench and the reference
    in the dataset folder."""
    folder = problem.folder or _DATASET
    return {"sample": f"{problem.task_id}/{problem.task_id}_sample{sample_index + 1:02d}.sv",
            "test": os.path.join(folder, f"{problem.task_id}_test.sv"),
            "ref": os.path.join(folder, f"{problem.task_id}_ref.sv")}


def official_log(log: str, problem: Problem, sample_index: int = 0) -> str:
    """``log`` with the reward engine's file names replaced by the official flow's (see the module docstring)."""
    names = official_names(problem, sample_index)
    for engine_name, role in _ENGINE_FILES.items():
        log = log.replace(engine_name, names[role])
    log = _STANDALONE_FILE.sub(names["sample"], log)
    return _SANITIZER_PREFIX.sub("", log)


def _workspace_files(problem: Problem, code: str, sample_index: int) -> tuple[dict[str, str], list[str]]:
    """Files for a sandbox run, at the official relative names (the dataset folder as ``dataset/``)."""
    rel = {"sample": f"{problem.task_id}/{problem.task_id}_sample{sample_index + 1:02d}.sv",
           "test": f"{_DATASET}/{problem.task_id}_test.sv", "ref": f"{_DATASET}/{problem.task_id}_ref.sv"}
    files = {rel["sample"]: code, rel["test"]: problem.testbench or "", rel["ref"]: problem.reference or ""}
    return files, [rel["sample"], rel["test"], rel["ref"]]


def _to_dataset_paths(log: str, problem: Problem) -> str:
    folder = problem.folder
    return log.replace(f"{_DATASET}/", folder.rstrip("/") + "/") if folder else log


def compile_log(problem: Problem, code: str, sample_index: int = 0, timeout: float = 60.0) -> tuple[bool, str]:
    """(compiled, compiler output) of ``code`` with the problem's testbench and reference, compiled exactly as the
    official Makefile compiles them (flags, file order, paths)."""
    from rewards.sandbox import Workspace
    from rewards.toolchain import find_tool

    files, order = _workspace_files(problem, code, sample_index)
    argv = [find_tool("iverilog"), *VERILOG_EVAL_FLAGS, "-s", problem.tb_top or "tb", "-o", "sim.vvp", *order]
    with Workspace(files) as ws:
        comp = ws.run(argv, timeout=timeout)
    return comp.ok, _SANITIZER_PREFIX.sub("", _to_dataset_paths(comp.output, problem))


def official_verdict(problem: Problem, code: str, timeout: float = OFFICIAL_TIMEOUT,
                     sample_index: int = 0) -> OfficialVerdict:
    """Compile and run ``code`` (the sample file) against ``problem``'s testbench as the benchmark's harness does."""
    from rewards.sandbox import Workspace
    from rewards.toolchain import find_tool

    iverilog, vvp = find_tool("iverilog"), find_tool("vvp")
    files = dict(problem.files)
    if problem.harness == "verilog-eval":
        extra, order = _workspace_files(problem, code, sample_index)
        files.update(extra)
        argv = [iverilog, *VERILOG_EVAL_FLAGS, "-s", problem.tb_top or "tb", "-o", "sim.vvp", *order]
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
        letter = sv_iv_analyze(_to_dataset_paths(log, problem), code)
        return OfficialVerdict(letter == ".", None if letter == "." else LETTER_CLASSES[letter], log)
    passed = "Your Design Passed" in log and not _RTLLM_FAIL.search(log)
    return OfficialVerdict(passed, None if passed else classify_log(log, code) or "runtime_mismatch", log)
