"""Formal equivalence with Yosys, within a time budget.

* **Combinational** designs: a miter of golden and candidate (``miter -equiv -ignore_gold_x``,
  so an X in the golden output accepts any value, as in simulation) proved with ``sat -prove
  trigger 0 -enable_undef``. The SAT solver decides exactly: ``equivalent``, or
  ``not_equivalent`` with the distinguishing input (replayed in simulation by the caller).
* **Sequential** designs (one clock, one edge): ``equiv_make`` pairs the two designs' outputs and
  same-named registers, then ``equiv_simple -seq N`` and ``equiv_induct -seq N`` try an induction
  proof (asynchronous resets are first turned into synchronous logic by ``async2sync``). A proof is
  ``equivalent``. A failed proof decides nothing by itself (registers may be encoded differently):
  a k-induction from reset on the miter follows (every register undefined, every reset active in the
  first cycle, ``sat -tempinduct -maxsteps K``). Its induction step needs no register names (a
  proof is ``equivalent``); a base-case model is ``not_equivalent`` with the input trace (replayed
  in simulation by the caller); reaching K steps is not a proof, and the caller simulates.
  Designs with register initial values are left to simulation, because neither check looks at them.

Model text never reaches a Yosys command line: the sources are written to fixed file names, the
script is built from fixed text plus the top module name, which the caller validated as a plain
identifier defined by both designs, and Yosys runs in :class:`rewards.sandbox.Workspace`.
"""

from __future__ import annotations

import dataclasses
import logging
import re

from .interface import ModuleInterface, is_identifier
from .sandbox import Workspace
from .toolchain import find_tool

logger = logging.getLogger(__name__)

_GOLD, _GATE, _MITER, _EQUIV = "verirl_gold", "verirl_gate", "verirl_miter", "verirl_equiv"
_LATCHES = "t:$dlatch t:$adlatch t:$dlatchsr t:$sr"


@dataclasses.dataclass
class FormalOutcome:
    verdict: str
    """``equivalent``, ``not_equivalent`` or ``undecided``."""
    reason: str = ""
    vector: dict[str, int] = dataclasses.field(default_factory=dict)
    """For a combinational ``not_equivalent``: a distinguishing value of every data input."""
    trace: list[dict[str, int]] = dataclasses.field(default_factory=list)
    """For a sequential ``not_equivalent``: input values (resets included) per clock cycle from reset."""
    log: str = ""
    elapsed: float = 0.0


def _read(path: str, top: str, name: str) -> list[str]:
    return [
        f"read_verilog -sv {path}",
        f"hierarchy -check -top {top}",
        "proc",
        "flatten",
        "memory",
        "opt_clean",
        "select -assert-none a:init",  # initial values: induction would ignore them
        f"rename {top} {name}",
    ]


def combinational_script(top: str) -> str:
    lines = [*_read("gold.v", top, _GOLD), "design -stash verirl_gold_design", *_read("gate.v", top, _GATE),
             f"design -copy-from verirl_gold_design -as {_GOLD} {_GOLD}",
             f"select -assert-none {_LATCHES} t:$dff t:$adff t:$dffe t:$adffe t:$sdff t:$sdffe t:$aldff",
             f"miter -equiv -flatten -make_outputs -ignore_gold_x {_GOLD} {_GATE} {_MITER}",
             f"hierarchy -top {_MITER}",
             "opt -fast",  # merges the logic the two designs share: a one-point mutant leaves little to solve
             f"sat -prove trigger 0 -enable_undef -set-def-inputs -show-inputs {_MITER}"]
    return "\n".join(lines) + "\n"


def sequential_script(top: str, depth: int) -> str:
    lines = [*_read("gold.v", top, _GOLD), "design -stash verirl_gold_design", *_read("gate.v", top, _GATE),
             f"design -copy-from verirl_gold_design -as {_GOLD} {_GOLD}",
             f"select -assert-none {_LATCHES}",
             "async2sync",
             f"equiv_make {_GOLD} {_GATE} {_EQUIV}",
             f"hierarchy -top {_EQUIV}",
             f"equiv_simple -seq {depth}",
             f"equiv_induct -seq {depth}",
             "equiv_status -assert"]
    return "\n".join(lines) + "\n"


def bmc_script(top: str, depth: int, resets: list[tuple[str, int]]) -> str:
    """k-induction from reset on the miter: every reset active in step 1, free inputs after; the base
    case is a bounded check of up to ``depth`` steps, the induction step needs no register names."""
    lines = [*_read("gold.v", top, _GOLD), "design -stash verirl_gold_design", *_read("gate.v", top, _GATE),
             f"design -copy-from verirl_gold_design -as {_GOLD} {_GOLD}",
             f"select -assert-none {_LATCHES}",
             "async2sync",
             f"miter -equiv -flatten -make_outputs -ignore_gold_x {_GOLD} {_GATE} {_MITER}",
             f"hierarchy -top {_MITER}"]
    sets = " ".join(f"-set-at 1 in_{name} {level}" for name, level in resets)
    lines.append(f"sat -tempinduct -seq 1 -maxsteps {depth} {sets} -prove trigger 0 -enable_undef -set-init-undef "
                 f"-set-def-inputs -show-inputs {_MITER}")
    return "\n".join(lines) + "\n"


def _run_yosys(gold_code: str, cand_code: str, script: str, config, timeout: float):
    yosys = find_tool("yosys")
    files = {"gold.v": gold_code, "gate.v": cand_code, "check.ys": script}
    with Workspace(files, config.sandbox) as ws:
        run = ws.run([yosys, "-q", "-l", "yosys.log", "-s", "check.ys"], timeout=timeout)
        log = (ws.read("yosys.log", limit=4 << 20) or b"").decode("utf-8", errors="replace")
    return run, log


def _abnormal(run, top: str) -> str | None:
    if run.timed_out:
        return "yosys ran past its time budget"
    if run.signal is not None or run.output_flood or run.killed_by_limit:
        logger.warning("yosys stopped abnormally on %s (signal %s); falling back to simulation", top, run.signal)
        return "yosys stopped abnormally"
    return None


def formal_check(gold_code: str, cand_code: str, iface: ModuleInterface, config, *,
                 bounded: bool = True) -> FormalOutcome:
    """Run the Yosys checks that fit ``iface``; sources must already be sanitized.

    For sequential designs ``bounded=False`` tries the induction proof only (the caller may run
    :func:`bounded_check` later, e.g. after simulation found no difference).
    """
    top = iface.name
    if not is_identifier(top):
        raise ValueError(f"top module name {top!r} is not a plain Verilog identifier")
    if iface.sequential:
        return _sequential(gold_code, cand_code, iface, config, bounded)
    run, log = _run_yosys(gold_code, cand_code, combinational_script(top), config, config.formal_timeout)
    tail = log[-3000:]
    problem = _abnormal(run, top)
    if problem:
        return FormalOutcome("undecided", problem, log=tail, elapsed=run.elapsed)
    if run.ok and "SAT proof finished - no model found: SUCCESS!" in log:
        return FormalOutcome("equivalent", "SAT miter proof", log=tail, elapsed=run.elapsed)
    if run.ok and "SAT proof finished - model found: FAIL!" in log:
        vector = _model_inputs(log, iface)
        if vector is None:
            return FormalOutcome("undecided", "SAT model could not be read", log=tail, elapsed=run.elapsed)
        return FormalOutcome("not_equivalent", "SAT miter model", vector=vector, log=tail, elapsed=run.elapsed)
    return FormalOutcome("undecided", _why(run.output or log, "yosys did not finish the proof"), log=tail,
                         elapsed=run.elapsed)


def _single_clock(iface: ModuleInterface) -> str | None:
    if len(iface.clocks) != 1 or iface.clocks[0].edge == "both" or iface.internal_clocks:
        return "multi-clock, dual-edge or derived clocks: left to simulation"
    if not all(is_identifier(p.name) for p in iface.ports):
        return "escaped port names: left to simulation"
    return None


def _sequential(gold_code: str, cand_code: str, iface: ModuleInterface, config, bounded: bool) -> FormalOutcome:
    top = iface.name
    unsupported = _single_clock(iface)
    if unsupported:
        return FormalOutcome("undecided", unsupported)
    budget = config.formal_timeout
    run, log = _run_yosys(gold_code, cand_code, sequential_script(top, config.induction_depth), config, budget)
    if run.ok and "Equivalence successfully proven!" in log:
        return FormalOutcome("equivalent", "induction proof (equiv_simple/equiv_induct)", log=log[-3000:],
                             elapsed=run.elapsed)
    why = _abnormal(run, top) or _why(run.output or log, "induction did not prove every output")
    outcome = FormalOutcome("undecided", why, log=log[-3000:], elapsed=run.elapsed)
    if not bounded or config.bmc_depth <= 0 or budget - run.elapsed < 0.5:
        return outcome
    found = bounded_check(gold_code, cand_code, iface, config, budget - run.elapsed)
    found.elapsed += run.elapsed
    if found.verdict == "undecided":
        found.reason = f"{why}; {found.reason}"
    return found


def bounded_check(gold_code: str, cand_code: str, iface: ModuleInterface, config,
                  budget: float | None = None) -> FormalOutcome:
    """k-induction from reset, up to ``config.bmc_depth`` steps: ``equivalent`` (induction proof),
    ``not_equivalent`` with the input trace of a base-case model, or ``undecided``."""
    top = iface.name
    unsupported = _single_clock(iface)
    if unsupported:
        return FormalOutcome("undecided", unsupported)
    resets = [(r.name, r.active_level) for r in iface.resets]
    run, log = _run_yosys(gold_code, cand_code, bmc_script(top, config.bmc_depth, resets), config,
                          budget if budget is not None else config.formal_timeout)
    problem = _abnormal(run, top)
    tail = log[-3000:]
    if problem is None and run.ok and _BASE_FAIL in log:
        trace = _trace_inputs(log.split(_BASE_FAIL, 1)[1], iface)
        if trace:
            return FormalOutcome("not_equivalent", "bounded check from reset (k-induction base case)",
                                 trace=trace, log=tail, elapsed=run.elapsed)
        problem = "bounded-check model could not be read"
    if problem is None and run.ok and "Induction step proven: SUCCESS!" in log:
        return FormalOutcome("equivalent", "k-induction proof from reset on the miter", log=tail,
                             elapsed=run.elapsed)
    if problem is None and run.ok and "Reached maximum number of time steps" in log:
        return FormalOutcome("undecided", f"no difference within {config.bmc_depth} cycles from reset and "
                             "no k-induction proof (bounded, not a proof)", log=tail, elapsed=run.elapsed)
    return FormalOutcome("undecided", f"bounded check: {problem or _why(run.output or log, 'not finished')}",
                         log=tail, elapsed=run.elapsed)


def _why(text: str, default: str) -> str:
    for line in text.splitlines():
        if line.startswith("ERROR:"):
            return line[len("ERROR:"):].strip()[:300]
    return default


_ROW = re.compile(r"^\s*\\in_([A-Za-z_][A-Za-z0-9_]*)\s+\S+\s+\S+\s+([01xz-]+)\s*$")


def _model_inputs(log: str, iface: ModuleInterface) -> dict[str, int] | None:
    """Input values from the table ``sat -show-inputs`` prints (undefined bits read as 0)."""
    values: dict[str, int] = {}
    for line in log.splitlines():
        match = _ROW.match(line)
        if match:
            bits = match.group(2).replace("x", "0").replace("z", "0").replace("-", "0")
            values[match.group(1)] = int(bits, 2)
    wanted = {p.name for p in iface.data_inputs}
    if not wanted <= set(values):
        return None
    return {name: values[name] for name in wanted}


_BASE_FAIL = "model found for base case: FAIL!"
_STEP_ROW = re.compile(r"^\s*(\d+)\s+\\in_([A-Za-z_][A-Za-z0-9_]*)\s+\S+\s+\S+\s+([01xz-]+)\s*$")


def _trace_inputs(log: str, iface: ModuleInterface) -> list[dict[str, int]] | None:
    """Per-step input values from ``sat -seq -show-inputs`` (undefined bits read as 0)."""
    steps: dict[int, dict[str, int]] = {}
    for line in log.splitlines():
        match = _STEP_ROW.match(line)
        if match:
            bits = match.group(3).replace("x", "0").replace("z", "0").replace("-", "0")
            steps.setdefault(int(match.group(1)), {})[match.group(2)] = int(bits, 2)
    if not steps:
        return None
    wanted = {p.name for p in iface.inputs} - {c.name for c in iface.clocks}
    trace = [steps[k] for k in sorted(steps)]
    if any(not wanted <= set(step) for step in trace):
        return None
    return [{name: step[name] for name in wanted} for step in trace]
