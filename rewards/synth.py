"""PPA level: synthesize with a fixed Yosys script and compare with the task's reference.

The Yosys script is a constant template. Nothing from the model reaches it: the design is
read from a fixed file name, and the only substituted value is the top module name, which
must be a plain identifier (``[A-Za-z_][A-Za-z0-9_]*``) and one of the modules the design
defines. A user's Liberty file is copied into the job directory under a fixed name.

Figures:

* ``cells``: number of cells after ``synth -flatten`` and ABC mapping to simple gates;
* ``area``: with a Liberty file, the chip area in µm² reported by ``stat -liberty``
  (flip-flops mapped with ``dfflibmap``, logic with ``abc -liberty``). Without one, a
  technology-independent estimate: the transistor count Yosys derives for a static CMOS
  implementation of the generic gates (``stat -tech cmos``);
* ``depth``: the longest topological path in gates between registers/ports (``ltp -noff``),
  a delay proxy that does not need a timing library.

The PPA score compares candidate and reference: ``0.5·min(1, area_ref/area) +
0.5·min(1, depth_ref/depth)`` (1.0 when the candidate matches or beats the reference).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re

from . import lexer
from .errors import InfrastructureError
from .sandbox import SandboxConfig, Workspace
from .syntax import SHELL_FAILURE, tail
from .toolchain import find_tool

logger = logging.getLogger(__name__)

_GENERIC_SCRIPT = """\
read_verilog -sv design.v
hierarchy -check -top {top}
synth -flatten -top {top}
abc -g AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX
opt_clean
tee -q -o stat.json stat -json
tee -q -o cmos.txt stat -tech cmos
tee -q -o ltp.txt ltp -noff
"""

_LIBERTY_SCRIPT = """\
read_verilog -sv design.v
hierarchy -check -top {top}
synth -flatten -top {top}
dfflibmap -liberty cells.lib
abc -liberty cells.lib
opt_clean
tee -q -o stat.json stat -json
tee -q -o area.txt stat -liberty cells.lib
tee -q -o ltp.txt ltp -noff
"""


#: Yosys' message when the ABC pass could not run its subprocess. Yosys starts ABC through ``popen`` (a shell that
#: runs berkeley-abc); -1 is the return code when ``popen`` itself failed (no fork: the process limit counts every
#: process of the tools' user), 126/127 are the shell's "cannot execute" and "not found".
_ABC_EXECUTION_FAILED = re.compile(r'ERROR: ABC: execution of command ".*" failed: return code (-?\d+)\.?')
#: In the full log: the shell Yosys started for ABC could not fork or find it (its message, which ABC's output carries
#: under the ``ABC: `` prefix).
_ABC_SHELL_FAILURE = re.compile(rf"^ABC: {SHELL_FAILURE}", re.MULTILINE)


def abc_did_not_run(output: str, log: str) -> str | None:
    """Why a failed Yosys run is the machine's fault rather than the design's: ABC could not be started. ``None``
    when the failure may be the design's.

    Only the run's *first* error counts (a design that fails earlier never reaches ABC, and Yosys' own text starts
    every error line, so a string of the design cannot stand first), and its ABC section must show the shell's
    own failure unless ``popen`` failed outright (-1) or the shell could not execute ABC (126, 127)."""
    first = re.search(r"^ERROR: .*$", output, re.MULTILINE)
    if first is None:
        return None
    failed = _ABC_EXECUTION_FAILED.fullmatch(first.group(0))
    if failed is None:
        return None
    code = int(failed.group(1))
    if code in (-1, 126, 127):
        return f"return code {code}"
    section = log[log.rfind("Executing ABC."):] if "Executing ABC." in log else ""
    shell = _ABC_SHELL_FAILURE.search(section)
    return shell.group(0)[len("ABC: "):] if shell else None


@dataclasses.dataclass
class SynthResult:
    ok: bool
    cells: int | None = None
    area: float | None = None
    area_unit: str = "transistors"
    depth: int | None = None
    log: str = ""
    elapsed: float = 0.0
    timed_out: bool = False
    """Yosys used up its CPU budget (``timeout``) before it finished: not a synthesis failure of the design."""
    cpu_seconds: float = 0.0

    def figures(self) -> dict:
        return {"cells": self.cells, "area": self.area, "area_unit": self.area_unit, "depth": self.depth}


def synthesize(
    code: str,
    top: str,
    *,
    liberty: str | None = None,
    config: SandboxConfig | None = None,
    timeout: float = 60.0,
) -> SynthResult:
    """Synthesize ``code`` (already sanitized when it is model output) and measure it.

    ``timeout`` is Yosys' CPU budget in seconds (see :meth:`rewards.sandbox.Workspace.run`); a run that uses it
    up comes back with ``ok=False, timed_out=True``."""
    if not lexer.is_plain_identifier(top):
        raise ValueError(f"refusing to synthesize: top module name {top!r} is not a plain identifier")
    if top not in lexer.module_names(code):
        return SynthResult(False, log=f"the design does not define module `{top}`")
    files: dict[str, str | bytes] = {"design.v": code}
    if liberty:
        try:
            with open(liberty, "rb") as fh:
                files["cells.lib"] = fh.read()
        except OSError as exc:
            raise InfrastructureError(f"cannot read the Liberty file {liberty!r}: {exc}") from exc
        script = _LIBERTY_SCRIPT.format(top=top)
    else:
        script = _GENERIC_SCRIPT.format(top=top)
    files["synth.ys"] = script
    yosys = find_tool("yosys")
    with Workspace(files, config) as ws:
        run = ws.run([yosys, "-q", "-l", "yosys.log", "-s", "synth.ys"], timeout=timeout)
        full_log = ws.read("yosys.log", limit=64 << 20) if not run.ok else None
        stat_json = ws.read("stat.json")
        area_txt = ws.read("area.txt" if liberty else "cmos.txt")
        ltp_txt = ws.read("ltp.txt")
    if run.signal is not None and not run.timed_out and not run.killed_by_limit:
        raise InfrastructureError(f"yosys was killed by signal {run.signal}: {tail(run.output, 500)}")
    if not run.ok and not run.timed_out:
        reason = abc_did_not_run(run.output, (full_log or b"").decode("utf-8", errors="replace"))
        if reason is not None:
            raise InfrastructureError(f"yosys could not start ABC ({reason}): the machine's process limit or a broken "
                                      f"installation, not a verdict on the design: {tail(run.output, 500)}")
    if not run.ok or stat_json is None:
        return SynthResult(False, log=tail(run.output), elapsed=run.elapsed, timed_out=run.timed_out,
                           cpu_seconds=run.cpu_seconds)
    result = SynthResult(True, log=tail(run.output), elapsed=run.elapsed, cpu_seconds=run.cpu_seconds)
    try:
        stats = json.loads(stat_json.decode("utf-8", errors="replace"))
        result.cells = int(stats["design"]["num_cells"])
    except (ValueError, KeyError, TypeError):
        result.cells = None
    text = (area_txt or b"").decode("utf-8", errors="replace")
    if liberty:
        match = re.search(r"Chip area for (?:module|top module) '?\\?\S*?'?:\s*([0-9.]+)", text)
        result.area_unit = "um2"
    else:
        match = re.search(r"Estimated number of transistors:\s*([0-9]+)", text)
    result.area = float(match.group(1)) if match else 0.0 if result.cells == 0 else None
    depth = re.search(r"length=(\d+)", (ltp_txt or b"").decode("utf-8", errors="replace"))
    result.depth = int(depth.group(1)) if depth else 0
    return result


def ppa_score(candidate: SynthResult, reference: SynthResult) -> float:
    """Score in [0, 1]: 1.0 when the candidate matches or beats the reference on area and depth."""

    def ratio(ref: float | None, cand: float | None) -> float:
        if ref is None or cand is None:
            return 0.0
        if cand <= 0:
            return 1.0
        return min(1.0, max(ref, 0.0) / cand) if ref > 0 else (1.0 if cand <= 0 else 0.0)

    return 0.5 * ratio(reference.area, candidate.area) + 0.5 * ratio(reference.depth, candidate.depth)


def liberty_path(path: str | None) -> str | None:
    """Validate a configured Liberty path early (at config parse time)."""
    if path is None:
        return None
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Liberty file {path!r} does not exist; give the path of a .lib file or omit it")
    return os.path.abspath(path)
