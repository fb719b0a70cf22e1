"""Formal equivalence with Yosys, within a time budget.

* **Combinational** designs: a miter of golden and candidate (``miter -equiv -ignore_gold_x``,
  so an X in the golden output accepts any value, as in simulation) proved with ``sat -prove
  trigger 0 -enable_undef``. The SAT solver decides exactly: ``equivalent``, or
  ``not_equivalent`` with the distinguishing input (replayed in simulation by the caller).
* **Sequential** designs (one clock, one edge): ``equiv_make`` pairs the two designs' outputs and
  same-named registers, then ``equiv_simple -seq N`` and ``equiv_induct -seq N`` try an induction
  proof (asynchronous resets are first turned into synchronous logic by ``async2sync``). A proof is
  ``equivalent``; a failed proof decides nothing (registers may be encoded differently), and the
  caller falls back to simulation. Designs with register initial values are left to simulation,
  because induction does not look at the initial state.

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
    """For ``not_equivalent``: a distinguishing value of every data input."""
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


def formal_check(gold_code: str, cand_code: str, iface: ModuleInterface, config) -> FormalOutcome:
    """Run the Yosys check that fits ``iface``; sources must already be sanitized."""
    top = iface.name
    if not is_identifier(top):
        raise ValueError(f"top module name {top!r} is not a plain Verilog identifier")
    if iface.sequential:
        if len(iface.clocks) != 1 or iface.clocks[0].edge == "both" or iface.internal_clocks:
            return FormalOutcome("undecided", "multi-clock, dual-edge or derived clocks: left to simulation")
        script = sequential_script(top, config.induction_depth)
    else:
        script = combinational_script(top)
    yosys = find_tool("yosys")
    files = {"gold.v": gold_code, "gate.v": cand_code, "check.ys": script}
    with Workspace(files, config.sandbox) as ws:
        run = ws.run([yosys, "-q", "-l", "yosys.log", "-s", "check.ys"], timeout=config.formal_timeout)
        log = (ws.read("yosys.log", limit=1 << 20) or b"").decode("utf-8", errors="replace")
    tail = log[-3000:]
    if run.timed_out:
        return FormalOutcome("undecided", f"yosys ran past its {config.formal_timeout:g} s budget", log=tail,
                             elapsed=run.elapsed)
    if run.signal is not None or run.output_flood or run.killed_by_limit:
        logger.warning("yosys stopped abnormally on %s (signal %s); falling back to simulation", top, run.signal)
        return FormalOutcome("undecided", "yosys stopped abnormally", log=tail, elapsed=run.elapsed)
    if iface.sequential:
        if run.ok and "Equivalence successfully proven!" in log:
            return FormalOutcome("equivalent", "induction proof (equiv_simple/equiv_induct)", log=tail,
                                 elapsed=run.elapsed)
        return FormalOutcome("undecided", _why(run.output or log, "induction did not prove every output"),
                             log=tail, elapsed=run.elapsed)
    if run.ok and "SAT proof finished - no model found: SUCCESS!" in log:
        return FormalOutcome("equivalent", "SAT miter proof", log=tail, elapsed=run.elapsed)
    if run.ok and "SAT proof finished - model found: FAIL!" in log:
        vector = _model_inputs(log, iface)
        if vector is None:
            return FormalOutcome("undecided", "SAT model could not be read", log=tail, elapsed=run.elapsed)
        return FormalOutcome("not_equivalent", "SAT miter model", vector=vector, log=tail, elapsed=run.elapsed)
    return FormalOutcome("undecided", _why(run.output or log, "yosys did not finish the proof"), log=tail,
                         elapsed=run.elapsed)


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
