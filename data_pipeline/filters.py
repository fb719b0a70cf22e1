"""Keep only modules that make scorable tasks: structure, interface, compile, reward engine, synthesis.

The checks run cheapest first and stop at the first failure, whose reason is recorded:

* ``structure`` (no tool): ``bad_module_name``, ``parse_error`` (``file:line:col: error: message``),
  ``conflicting_dependencies``, ``unresolved_dependency``, ``too_many_dependencies``,
  ``include_directive``, ``testbench``, ``formal_harness``, ``too_short``, ``too_long``,
  ``too_few_ports``, ``too_many_ports``;
* ``interface`` (the reward engine's front end, :mod:`rewards.interface`): ``interface_error``,
  ``no_outputs``, ``unsupported_ports`` (inout, unpacked-array or escaped-name ports, which the
  equivalence checker cannot drive), ``too_much_memory`` (memory arrays larger than
  ``max_memory_bits``: synthesis to gates would spend its whole budget on flip-flops);
* ``compile`` (Icarus, :func:`rewards.syntax.check_syntax`): ``compile``, ``unresolved_dependency``
  (a module of an optional generate branch that is used after all), ``timeout``;
* ``scorable`` (:func:`scorable_check`): the reward engine scores the reference as a candidate of its
  own task (:func:`rewards.hierarchy.validate_reference`: the same canonical text, sanitizer,
  standalone elaboration and equivalence code path that scores model completions in training) and it
  must pass: ``golden_refused`` (the engine refuses
  the reference: ``$finish``/``$readmemh``/``$value$plusargs``, ports it cannot drive, ...),
  ``golden_not_standalone``, ``golden_self_check`` (the reference does not match itself),
  ``timeout``;
* ``synth`` (Yosys, :func:`rewards.synth.synthesize`, with its own bounded budget
  ``synth_timeout_s``): ``synth``, ``timeout`` (never reported as ``synth``), ``zero_cells`` (nothing
  left to implement), ``too_many_cells``.

An infrastructure fault (a crashed tool, a sandbox failure) is recorded as ``infrastructure``,
never as a fault of the design, and never stops the run; a missing tool stops the run before it
starts (:func:`require_tools`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time

from rewards import synth as rewards_synth
from rewards.errors import InfrastructureError
from rewards.interface import is_identifier
from rewards.sandbox import SandboxConfig, Workspace
from rewards.syntax import check_syntax, tail
from rewards.toolchain import find_tool

from .config import FilterConfig
from .sources import ModuleRecord
from .text import significant_lines

logger = logging.getLogger(__name__)

_FORBIDDEN_RE = re.compile(r"`include\b")
#: the tool stages, in the order a module goes through them
TOOL_STAGES = ("compile", "scorable", "synth")


@dataclasses.dataclass
class FilterResult:
    ok: bool
    reason: str | None = None
    detail: str = ""
    cells: int | None = None
    lines: int = 0
    figures: dict | None = None
    """Synthesis figures (cells, area, depth) when the design was synthesized."""
    stage: str = ""
    """The stage that decided (the failing one, or the last one run)."""
    interface: dict | None = None
    timings: dict = dataclasses.field(default_factory=dict)
    """Seconds spent per tool stage on this module."""


def require_tools(cfg: FilterConfig) -> dict[str, str]:
    """Paths of the tools the filters need; raises ToolNotFoundError (with the install hint) early."""
    tools = {}
    if cfg.compile or cfg.scorable:
        tools["iverilog"] = find_tool("iverilog")
    if cfg.scorable:
        tools["vvp"] = find_tool("vvp")
    if cfg.synthesize:
        tools["yosys"] = find_tool("yosys")
    return tools


def code_lines(code: str) -> int:
    """Lines of code (comment-only and blank lines excluded)."""
    return significant_lines(code)


def structural_check(rec: ModuleRecord, cfg: FilterConfig) -> FilterResult:
    """Limits that need no tool: parse errors, dependencies, kind of module, size, ports."""
    # counting lines of code tokenizes the text: only for texts short enough to be kept
    lines = code_lines(rec.code) if len(rec.code) <= cfg.max_chars else 0

    def fail(reason: str, detail: str) -> FilterResult:
        return FilterResult(False, reason, detail, lines=lines, stage="structure")

    if not is_identifier(rec.top):
        return fail("bad_module_name", f"module name {rec.top!r} is not a plain identifier")
    if rec.parse_error:
        return fail("parse_error", rec.parse_error)
    if rec.conflicts:
        return fail("conflicting_dependencies", "two definitions of one name are needed: " + "; ".join(rec.conflicts))
    if rec.missing:
        return fail("unresolved_dependency", "instantiates undefined " + ", ".join(rec.missing))
    if len(rec.dependencies) > cfg.max_dependencies:
        return fail("too_many_dependencies", f"{len(rec.dependencies)} > {cfg.max_dependencies}")
    if _FORBIDDEN_RE.search(rec.code):
        return fail("include_directive", "`include needs files outside the module")
    if rec.testbench:
        return fail("testbench", "no ports, and drives itself (initial blocks, $finish): a testbench, not a design")
    if rec.formal:
        return fail("formal_harness", "uses formal-verification constructs ((* anyseq *), $anyconst, assume): "
                    "a proof harness, not a design")
    own_lines = rec.own_lines or lines
    if own_lines < cfg.min_lines:
        return fail("too_short", f"{own_lines} < {cfg.min_lines} lines of code")
    if len(rec.code) > cfg.max_chars:
        return fail("too_long", f"{len(rec.code)} > {cfg.max_chars} characters")
    if lines > cfg.max_lines:
        return fail("too_long", f"{lines} > {cfg.max_lines} lines of code")
    if rec.ports < cfg.min_ports:
        return fail("too_few_ports", f"{rec.ports} < {cfg.min_ports} ports")
    if rec.ports > cfg.max_ports:
        return fail("too_many_ports", f"{rec.ports} > {cfg.max_ports} ports")
    return FilterResult(True, lines=lines, stage="structure")


def interface_check(rec: ModuleRecord, cfg: FilterConfig | None = None) -> FilterResult:
    """The reward engine's front end reads the module's ports: some output, all drivable; and, before
    any synthesis is paid for, how many bits its memory arrays hold (``filters.max_memory_bits``)."""
    from rewards.interface import elaborate, interface_of_instance

    try:
        owners, inst = elaborate(rec.code, rec.top)  # `owners` keeps the compilation alive
        iface = interface_of_instance(inst).to_dict()
        memory = memory_bits(inst)
        del owners
    except Exception as exc:  # noqa: BLE001 - InterfaceError, or a front-end failure on odd code
        return FilterResult(False, "interface_error", f"{type(exc).__name__}: {exc}", stage="interface")
    ports = iface.get("ports", [])
    if not any(p.get("direction") == "output" for p in ports):
        return FilterResult(False, "no_outputs", "the module has no output port: nothing to check",
                            stage="interface", interface=iface)
    bad = [p["name"] for p in ports if p.get("direction") not in ("input", "output") or not p.get("packed", True)
           or not is_identifier(p["name"])]
    if bad:
        return FilterResult(False, "unsupported_ports", f"inout, unpacked-array or escaped-name ports: "
                            f"{', '.join(bad)} (the equivalence checker cannot drive them)",
                            stage="interface", interface=iface)
    if cfg is not None and cfg.synthesize and cfg.max_memory_bits and memory > cfg.max_memory_bits:
        return FilterResult(False, "too_much_memory", f"its memory arrays hold {memory} bits > {cfg.max_memory_bits} "
                            "(filters.max_memory_bits): synthesized to gates, every bit is a flip-flop",
                            stage="interface", interface=iface)
    return FilterResult(True, stage="interface", interface=iface)


def memory_bits(inst) -> int:
    """Bits held by unpacked-array variables (memories) in the elaborated hierarchy below ``inst``."""
    from pyslang import ast

    total = 0
    stack = [(inst.body, 0)]
    while stack:
        scope, depth = stack.pop()
        if depth > 64:
            continue
        for member in scope:
            kind = member.kind
            if kind == ast.SymbolKind.Variable and member.type.isUnpackedArray:
                total += int(member.type.bitstreamWidth)
            elif kind == ast.SymbolKind.Instance and member.isModule:
                stack.append((member.body, depth + 1))
            elif kind == ast.SymbolKind.InstanceArray:
                stack += [(e.body, depth + 1) for e in member.elements if e.kind == ast.SymbolKind.Instance]
            elif kind == ast.SymbolKind.GenerateBlock and not member.isUninstantiated:
                stack.append((member, depth + 1))
            elif kind == ast.SymbolKind.GenerateBlockArray:
                stack += [(e, depth + 1) for e in member.entries]
    return total


#: the quick synthesis check: generic synthesis without technology mapping; only {top} is substituted
_QUICK_SYNTH = """\
read_verilog -sv design.v
hierarchy -check -top {top}
synth -flatten -noabc -top {top}
tee -q -o stat.json stat -json
"""


def synthesize(code: str, top: str, *, timeout: float, sandbox: SandboxConfig | None = None,
               figures: bool = True) -> FilterResult:
    """Does Yosys synthesize ``code`` within ``timeout`` seconds? ``figures``: through
    :func:`rewards.synth.synthesize` (cells, area, depth); otherwise the quick check above (cell count
    only). Both sandboxed, with fixed scripts. Running out of time is ``timeout``, not ``synth``."""
    if not is_identifier(top):
        return FilterResult(False, "bad_module_name", f"module name {top!r} is not a plain identifier", stage="synth")
    budget = f"yosys used up its {timeout:g} s CPU budget (filters.synth_timeout_s)"
    if figures:
        res = rewards_synth.synthesize(code, top, config=sandbox, timeout=timeout)
        if not res.ok:
            if res.timed_out:
                return FilterResult(False, "timeout", budget, stage="synth")
            return FilterResult(False, "synth", tail(res.log, 1000), stage="synth")
        return FilterResult(True, cells=res.cells, figures=res.figures(), stage="synth")
    yosys = find_tool("yosys")
    with Workspace({"design.v": code, "synth.ys": _QUICK_SYNTH.format(top=top)}, sandbox) as ws:
        run = ws.run([yosys, "-q", "-s", "synth.ys"], timeout=timeout)
        stat = ws.read("stat.json")
    if run.signal is not None and not run.timed_out and not run.killed_by_limit:
        raise InfrastructureError(f"yosys was killed by signal {run.signal}: {tail(run.output, 500)}")
    if run.timed_out:
        return FilterResult(False, "timeout", budget, stage="synth")
    if not run.ok or stat is None:
        return FilterResult(False, "synth", tail(run.output, 1000), stage="synth")
    try:
        cells = int(json.loads(stat.decode("utf-8", errors="replace"))["design"]["num_cells"])
    except (ValueError, KeyError, TypeError):
        cells = None
    return FilterResult(True, cells=cells, figures={"cells": cells}, stage="synth")


def compile_check(rec: ModuleRecord, cfg: FilterConfig, sandbox: SandboxConfig | None = None) -> FilterResult:
    syn = check_syntax(rec.code, rec.top, config=sandbox, timeout=cfg.tool_timeout_s)
    if syn.ok:
        return FilterResult(True, stage="compile")
    if syn.failure == "timeout":
        return FilterResult(False, "timeout", f"iverilog ran past {cfg.tool_timeout_s:g} s (filters.tool_timeout_s)",
                            stage="compile")
    used = [name for name in rec.optional_missing if re.search(rf"\b{re.escape(name)}\b", syn.log)]
    if used:  # an instance of a generate branch thought unused is elaborated after all
        return FilterResult(False, "unresolved_dependency", f"instantiates undefined {', '.join(used)} in a generate "
                            f"branch the default parameters select: {tail(syn.log, 800)}", stage="compile")
    return FilterResult(False, "compile", f"{syn.failure}: {tail(syn.log, 1000)}", stage="compile")


def scorable_check(rec: ModuleRecord, cfg: FilterConfig, sandbox: SandboxConfig | None = None) -> FilterResult:
    """Would the reward engine score this task? It scores the reference as a candidate.

    Calls :func:`rewards.hierarchy.validate_reference` on the task this module becomes (``reference`` = the
    code, no testbench): the code path that scores model completions in training (canonical text,
    sanitizer, standalone elaboration, interface, equivalence) runs on the reference, without growing any
    of the engine's caches (these tasks are one-off). A reference the engine refuses, that does not
    elaborate alone, or that does not pass against itself can never be solved by a model: it is dropped
    here, before any LLM call. An infrastructure fault propagates (:func:`tool_check` records it).
    """
    from rewards.errors import ReferenceRejected, TaskError
    from rewards.hierarchy import RewardConfig, validate_reference
    from rewards.simulate import SimLimits
    from rewards.task import Task

    config = RewardConfig(weights={"format": 0.0, "syntax": 1.0, "function": 1.0, "ppa": 0.0},
                          partial_credit=False, equivalence={**cfg.scorable_equivalence},
                          sandbox=sandbox or SandboxConfig(), sim=SimLimits(compile_timeout=cfg.tool_timeout_s))
    task = Task(id=f"scorable:{rec.key}", prompt="", top=rec.top, reference=rec.code, testbench=None,
                harness="verirl")
    try:
        validate_reference(task, config)
    except ReferenceRejected as exc:
        return _rejected(exc.failure, exc.detail)
    except TaskError as exc:
        return FilterResult(False, "golden_refused", f"task_error: {exc}"[:1000], stage="scorable")
    return FilterResult(True, stage="scorable")


def _rejected(failure: str | None, detail: dict) -> FilterResult:
    text = str(detail.get("reason") or detail.get("log") or "")
    if failure in ("forbidden", "format"):
        return FilterResult(False, "golden_refused", f"{failure}: {text}"[:1000], stage="scorable")
    if failure in ("timeout", "resource"):
        return FilterResult(False, "timeout", f"the reward engine's check ran out of {failure}: {tail(text, 800)}",
                            stage="scorable")
    if detail.get("failure_stage") == "standalone":
        return FilterResult(False, "golden_not_standalone", f"{failure}: {tail(text, 900)}", stage="scorable")
    if failure in ("syntax", "compile", "elaboration"):
        return FilterResult(False, "golden_refused", f"{failure}: {tail(text, 900)}", stage="scorable")
    cex = detail.get("counterexample")
    return FilterResult(False, "golden_self_check", f"{failure}: the reference does not match itself "
                        f"({'counterexample ' + json.dumps(cex)[:400] if cex else tail(text, 600)})", stage="scorable")


def tool_check(rec: ModuleRecord, cfg: FilterConfig, sandbox: SandboxConfig | None = None,
               stop=None) -> FilterResult:
    """Compile (Icarus), the reward engine's check, synthesize (Yosys), as configured; first failure wins.

    ``stop`` (a ``threading.Event``): when set, no further tool is started (the build is stopping).
    """
    timings: dict[str, float] = {}
    res = FilterResult(True, stage="compile")
    try:
        for stage in TOOL_STAGES:
            if stop is not None and stop.is_set():
                return FilterResult(False, "stopped", "the build was stopped", stage=stage, timings=timings)
            enabled = {"compile": cfg.compile, "scorable": cfg.scorable, "synth": cfg.synthesize}[stage]
            if not enabled:
                continue
            t0 = time.monotonic()
            if stage == "compile":
                step = compile_check(rec, cfg, sandbox)
            elif stage == "scorable":
                step = scorable_check(rec, cfg, sandbox)
            else:
                step = synthesize(rec.code, rec.top, timeout=cfg.synth_timeout_s, sandbox=sandbox,
                                  figures=cfg.synth_figures)
                if step.ok and step.cells == 0:
                    step = FilterResult(False, "zero_cells", "synthesizes to no cell: the outputs are constants "
                                        "or wires from the inputs", cells=0, stage="synth")
                elif step.ok and cfg.max_cells and step.cells is not None and step.cells > cfg.max_cells:
                    step = FilterResult(False, "too_many_cells", f"{step.cells} > {cfg.max_cells} cells",
                                        cells=step.cells, stage="synth")
            timings[stage] = time.monotonic() - t0
            step.timings = timings
            if not step.ok:
                return step
            if step.figures is not None:
                res.figures, res.cells = step.figures, step.cells
            res.stage = stage
    except InfrastructureError as exc:
        if stop is not None and stop.is_set():  # the build killed its own tools: not a fault
            return FilterResult(False, "stopped", "the build was stopped", stage=res.stage, timings=timings)
        logger.warning("infrastructure fault while checking %s: %s", rec.key, exc)
        return FilterResult(False, "infrastructure", str(exc), stage=res.stage, timings=timings)
    res.timings = timings
    return res


def check_module(rec: ModuleRecord, cfg: FilterConfig, sandbox: SandboxConfig | None = None) -> FilterResult:
    """Every filter in order: structure, interface, then the tools."""
    res = structural_check(rec, cfg)
    if not res.ok:
        return res
    iface = interface_check(rec, cfg)
    if not iface.ok:
        iface.lines = res.lines
        return iface
    tools = tool_check(rec, cfg, sandbox)
    tools.lines = res.lines
    tools.interface = iface.interface
    return tools
