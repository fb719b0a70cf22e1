"""Keep only modules a tool chain accepts: structural limits, then compile, then synthesize.

The checks run cheapest first and stop at the first failure, whose reason is recorded
(``parse_error``, ``unresolved_dependency``, ``too_short``, ``too_long``, ``too_many_ports``, ...,
``compile``, ``synth``, ``too_many_cells``, ``infrastructure``). Tools run through
:mod:`rewards` only: compilation is :func:`rewards.syntax.check_syntax` (Icarus in the sandbox),
synthesis is :func:`rewards.synth.synthesize` (Yosys in the sandbox with a fixed script whose only
variable part, the top module name, is validated as a plain identifier first), or with
``synth_figures: false`` a quicker fixed script without technology mapping.

An infrastructure fault (a crashed tool, a sandbox failure) is recorded as ``infrastructure``,
never as a fault of the design, and never stops the run; a missing tool stops the run before it
starts (:func:`require_tools`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re

from rewards import synth as rewards_synth
from rewards.errors import InfrastructureError
from rewards.interface import is_identifier
from rewards.sandbox import SandboxConfig, Workspace
from rewards.syntax import check_syntax, tail
from rewards.toolchain import find_tool

from .config import FilterConfig
from .sources import ModuleRecord

logger = logging.getLogger(__name__)

_FORBIDDEN_RE = re.compile(r"`include\b")


@dataclasses.dataclass
class FilterResult:
    ok: bool
    reason: str | None = None
    detail: str = ""
    cells: int | None = None
    lines: int = 0
    figures: dict | None = None
    """Synthesis figures (cells, area, depth) when the design was synthesized."""


def require_tools(cfg: FilterConfig) -> dict[str, str]:
    """Paths of the tools the filters need; raises ToolNotFoundError (with the install hint) early."""
    tools = {}
    if cfg.compile:
        tools["iverilog"] = find_tool("iverilog")
    if cfg.synthesize:
        tools["yosys"] = find_tool("yosys")
    return tools


def code_lines(code: str) -> int:
    return sum(1 for line in code.splitlines() if line.strip())


def structural_check(rec: ModuleRecord, cfg: FilterConfig) -> FilterResult:
    """Limits that need no tool: parse errors, unresolved dependencies, size, ports."""
    lines = code_lines(rec.code)
    if not is_identifier(rec.top):
        return FilterResult(False, "bad_module_name", f"module name {rec.top!r} is not a plain identifier", lines=lines)
    if rec.parse_error:
        return FilterResult(False, "parse_error", rec.parse_error, lines=lines)
    if rec.missing:
        return FilterResult(False, "unresolved_dependency", "instantiates undefined " + ", ".join(rec.missing),
                            lines=lines)
    if len(rec.dependencies) > cfg.max_dependencies:
        return FilterResult(False, "too_many_dependencies", f"{len(rec.dependencies)} > {cfg.max_dependencies}",
                            lines=lines)
    if _FORBIDDEN_RE.search(rec.code):
        return FilterResult(False, "include_directive", "`include needs files outside the module", lines=lines)
    own_lines = rec.own_lines or lines
    if own_lines < cfg.min_lines:
        return FilterResult(False, "too_short", f"{own_lines} < {cfg.min_lines} lines", lines=lines)
    if lines > cfg.max_lines:
        return FilterResult(False, "too_long", f"{lines} > {cfg.max_lines} lines", lines=lines)
    if len(rec.code) > cfg.max_chars:
        return FilterResult(False, "too_long", f"{len(rec.code)} > {cfg.max_chars} characters", lines=lines)
    if rec.ports < cfg.min_ports:
        return FilterResult(False, "too_few_ports", f"{rec.ports} < {cfg.min_ports} ports", lines=lines)
    if rec.ports > cfg.max_ports:
        return FilterResult(False, "too_many_ports", f"{rec.ports} > {cfg.max_ports} ports", lines=lines)
    return FilterResult(True, lines=lines)


#: the quick synthesis check: generic synthesis without technology mapping; only {top} is substituted
_QUICK_SYNTH = """\
read_verilog -sv design.v
hierarchy -check -top {top}
synth -flatten -noabc -top {top}
tee -q -o stat.json stat -json
"""


def synthesize(code: str, top: str, *, timeout: float, sandbox: SandboxConfig | None = None,
               figures: bool = True) -> FilterResult:
    """Does Yosys synthesize ``code``? ``figures``: through :func:`rewards.synth.synthesize` (cells, area,
    depth); otherwise the quick check above (cell count only). Both sandboxed, with fixed scripts."""
    if not is_identifier(top):
        return FilterResult(False, "bad_module_name", f"module name {top!r} is not a plain identifier")
    if figures:
        res = rewards_synth.synthesize(code, top, config=sandbox, timeout=timeout)
        if not res.ok:
            return FilterResult(False, "synth", tail(res.log, 1000))
        return FilterResult(True, cells=res.cells, figures=res.figures())
    yosys = find_tool("yosys")
    with Workspace({"design.v": code, "synth.ys": _QUICK_SYNTH.format(top=top)}, sandbox) as ws:
        run = ws.run([yosys, "-q", "-s", "synth.ys"], timeout=timeout)
        stat = ws.read("stat.json")
    if run.signal is not None and not run.timed_out and not run.killed_by_limit:
        raise InfrastructureError(f"yosys was killed by signal {run.signal}: {tail(run.output, 500)}")
    if run.timed_out:
        return FilterResult(False, "synth_timeout", f"yosys ran past {timeout:.0f} s")
    if not run.ok or stat is None:
        return FilterResult(False, "synth", tail(run.output, 1000))
    try:
        cells = int(json.loads(stat.decode("utf-8", errors="replace"))["design"]["num_cells"])
    except (ValueError, KeyError, TypeError):
        cells = None
    return FilterResult(True, cells=cells, figures={"cells": cells})


def tool_check(rec: ModuleRecord, cfg: FilterConfig, sandbox: SandboxConfig | None = None) -> FilterResult:
    """Compile (Icarus) and synthesize (Yosys) as configured."""
    try:
        if cfg.compile:
            syn = check_syntax(rec.code, rec.top, config=sandbox, timeout=cfg.tool_timeout_s)
            if not syn.ok:
                reason = "compile_timeout" if syn.failure == "timeout" else "compile"
                return FilterResult(False, reason, f"{syn.failure}: {tail(syn.log, 1000)}")
        if not cfg.synthesize:
            return FilterResult(True)
        res = synthesize(rec.code, rec.top, timeout=cfg.tool_timeout_s, sandbox=sandbox, figures=cfg.synth_figures)
        if res.ok and cfg.max_cells and res.cells is not None and res.cells > cfg.max_cells:
            return FilterResult(False, "too_many_cells", f"{res.cells} > {cfg.max_cells} cells", cells=res.cells)
        return res
    except InfrastructureError as exc:
        logger.warning("infrastructure fault while checking %s: %s", rec.key, exc)
        return FilterResult(False, "infrastructure", str(exc))


def check_module(rec: ModuleRecord, cfg: FilterConfig, sandbox: SandboxConfig | None = None) -> FilterResult:
    """Structural limits, then the tools."""
    res = structural_check(rec, cfg)
    if not res.ok:
        return res
    tools = tool_check(rec, cfg, sandbox)
    tools.lines = res.lines
    return tools
