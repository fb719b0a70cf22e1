"""Is a candidate design equivalent to a golden design?

:func:`check_equivalence` is the one entry point, shared by the ``equivalence`` reward (tasks with
a ``reference`` and no ``testbench``), the data pipeline's round-trip filter and ``verirl equiv``:

1. both designs are elaborated (:mod:`rewards.interface`); a source that does not compile is an
   ``error`` naming the side at fault;
2. the port lists are compared by name, direction and width: any difference is
   ``interface_mismatch``, with the differences listed;
3. both sources go through :func:`rewards.sanitize.sanitize_candidate` (no file access, no
   ``$finish``, no printing) before any tool sees them;
4. **formal** (:mod:`rewards.formal`, Yosys): combinational designs are decided exactly by a SAT
   miter, sequential ones proved equivalent by induction when it succeeds within the budget;
5. **simulation** (:mod:`rewards.equiv_tb` through :func:`rewards.simulate.simulate`): the fallback
   whenever formal does not decide, and the only method with ``method="simulation"``.

The result says which method decided. A counterexample found by SAT is replayed in simulation, so
every ``not_equivalent`` verdict carries a simulated counterexample (time, inputs, expected vs got).
Infrastructure faults (missing tool, crashed tool) are raised as
:class:`rewards.errors.InfrastructureError`, never reported as a verdict on the candidate.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from .errors import ConfigError
from .interface import InterfaceError, ModuleInterface, extract_interface, is_identifier
from .sandbox import SandboxConfig

logger = logging.getLogger(__name__)

VERDICTS = ("equivalent", "not_equivalent", "interface_mismatch", "error")
METHODS = ("auto", "formal", "simulation")


@dataclasses.dataclass(frozen=True)
class EquivConfig:
    """How equivalence is checked. Every field is read by :func:`check_equivalence`."""

    method: str = dataclasses.field(default="auto", metadata={"help": (
        "auto: formal first, simulation when formal does not decide; formal: formal only (undecided "
        "designs are an error); simulation: simulation only")})
    seed: int = dataclasses.field(default=1, metadata={"help": "seed of the random stimulus ($random)"})
    sequences: int = dataclasses.field(default=8, metadata={"help": "sequential: reset-started sequences"})
    cycles: int = dataclasses.field(default=150, metadata={"help": "sequential: clock cycles per sequence"})
    long_cycles: int = dataclasses.field(default=1200, metadata={"help": (
        "sequential: cycles of a final sequence without mid-sequence resets, to reach deep states (0: none)")})
    reset_pulses: int = dataclasses.field(default=2, metadata={"help": (
        "sequential: extra reset pulses (short and long, at random) inside each sequence")})
    vectors: int = dataclasses.field(default=2000, metadata={"help": "combinational: random vectors"})
    exhaustive_bits: int = dataclasses.field(default=16, metadata={"help": (
        "combinational: enumerate every input value when the inputs total at most this many bits")})
    stop_on_mismatch: bool = dataclasses.field(default=True, metadata={"help": (
        "end the simulation at the first mismatch (faster; the pass fraction then counts checks up to it)")})
    formal_timeout: float = dataclasses.field(default=5.0, metadata={"help": (
        "seconds for each Yosys run (the proof, and the bounded check)")})
    induction_depth: int = dataclasses.field(default=4, metadata={"help": (
        "sequential formal: equiv_simple/equiv_induct unrolling depth")})
    bmc_depth: int = dataclasses.field(default=20, metadata={"help": (
        "sequential formal: most steps of the k-induction from reset on the miter (its base case is a "
        "bounded check) after a failed equiv_induct proof (0: skip it)")})
    bmc_max_port_bits: int = dataclasses.field(default=256, metadata={"help": (
        "auto: run the bounded check after a clean simulation only for designs with at most this many port "
        "bits (wider ones rarely finish within the budget)")})
    sim_timeout: float = dataclasses.field(default=20.0, metadata={"help": "seconds for one simulation run"})
    sandbox: SandboxConfig | None = dataclasses.field(default=None, metadata={"help": (
        "containment of the tools (default: rewards.sandbox.SandboxConfig())")})

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"EquivConfig.method must be one of {', '.join(METHODS)}, got {self.method!r}")
        for name in ("sequences", "cycles", "vectors", "induction_depth"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"EquivConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("long_cycles", "reset_pulses", "exhaustive_bits", "bmc_depth", "bmc_max_port_bits"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigError(f"EquivConfig.{name} must be a non-negative integer, got {getattr(self, name)!r}")
        if self.exhaustive_bits > 24:
            raise ConfigError("EquivConfig.exhaustive_bits above 24 would simulate over 16M vectors; use <= 24")
        for name in ("formal_timeout", "sim_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"EquivConfig.{name} must be positive seconds, got {getattr(self, name)!r}")

    def stimulus(self):
        from .equiv_tb import Stimulus

        return Stimulus(seed=self.seed, sequences=self.sequences, cycles=self.cycles, long_cycles=self.long_cycles,
                        vectors=self.vectors, exhaustive_bits=self.exhaustive_bits, reset_pulses=self.reset_pulses,
                        stop_on_mismatch=self.stop_on_mismatch)


@dataclasses.dataclass
class EquivResult:
    verdict: str
    """``equivalent``, ``not_equivalent``, ``interface_mismatch`` or ``error``."""
    method: str | None = None
    """``formal`` or ``simulation``: what decided (``None`` when nothing ran)."""
    counterexample: dict[str, Any] | None = None
    reason: str = ""
    fault: str | None = None
    """For ``error``: ``golden`` or ``candidate`` (which input is unusable); for a simulated
    ``not_equivalent`` caused by a candidate fault: the failure class (``timeout``, ``compile``...)."""
    passed: int | None = None
    total: int | None = None
    interface: dict[str, Any] | None = None
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    log: str = ""

    @property
    def equivalent(self) -> bool:
        return self.verdict == "equivalent"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_equivalence(golden: str, candidate: str, top: str | None = None, *,
                      config: EquivConfig | None = None) -> EquivResult:
    """Compare ``candidate`` with ``golden``; both define module ``top`` (default: golden's only top)."""
    config = config or EquivConfig()
    start = time.monotonic()
    timings: dict[str, float] = {}
    if top is not None and not is_identifier(top):
        raise ValueError(f"top module name {top!r} is not a plain Verilog identifier")
    try:
        gold_if = extract_interface(golden, top)
    except InterfaceError as exc:
        return EquivResult("error", reason=f"golden design: {exc}", fault="golden")
    top = gold_if.name
    try:
        cand_if = extract_interface(candidate, top)
    except InterfaceError as exc:
        return EquivResult("error", reason=f"candidate design: {exc}", fault="candidate")
    timings["interface"] = time.monotonic() - start
    problems = interface_differences(gold_if, cand_if)
    if problems:
        return EquivResult("interface_mismatch", reason="; ".join(problems), interface=gold_if.to_dict(),
                           timings=timings)
    unsupported = [p.name for p in gold_if.ports
                   if p.direction not in ("input", "output") or not p.packed or not is_identifier(p.name)]
    if unsupported:
        return EquivResult("error", reason=f"ports {', '.join(unsupported)} are inout, unpacked arrays or escaped "
                           "identifiers, which the equivalence checker does not drive", fault="golden",
                           interface=gold_if.to_dict())
    iface = merge_clocking(gold_if, cand_if)

    from .sanitize import Forbidden, sanitize_candidate

    try:
        gold_code = sanitize_candidate(golden, top, prefix="verirl_g_").code
    except Forbidden as exc:
        return EquivResult("error", reason=f"golden design: {exc}", fault="golden", interface=iface.to_dict())
    try:
        cand_code = sanitize_candidate(candidate, top).code
    except Forbidden as exc:
        return EquivResult("error", reason=f"candidate design: {exc}", fault="candidate", interface=iface.to_dict())

    result: EquivResult | None = None
    outcome = None
    use_formal = config.method == "formal" or (config.method == "auto" and _yosys_available())
    if use_formal:
        from .formal import formal_check

        t0 = time.monotonic()
        # auto, sequential: the induction proof first, simulation next, the bounded check last
        outcome = formal_check(gold_code, cand_code, iface, config, bounded=config.method == "formal")
        timings["formal"] = time.monotonic() - t0
        result = _decided(outcome, gold_code, cand_code, iface, config, timings)
        if result is None and config.method == "formal":
            result = EquivResult("error", "formal", reason=f"formal check undecided: {outcome.reason}",
                                 log=outcome.log)
    if result is None:
        t0 = time.monotonic()
        result = simulate_equivalence(gold_code, cand_code, iface, config)
        timings["simulation"] = time.monotonic() - t0
        if (result.verdict == "equivalent" and config.method == "auto" and iface.sequential
                and config.bmc_depth > 0 and outcome is not None
                and sum(p.width for p in iface.ports) <= config.bmc_max_port_bits
                and "Assertion failed" not in outcome.reason):  # initial values or latches: no model
            from .formal import bounded_check

            t0 = time.monotonic()
            bmc = bounded_check(gold_code, cand_code, iface, config)
            timings["bounded"] = time.monotonic() - t0
            found = _decided(bmc, gold_code, cand_code, iface, config, timings)
            if found is not None:
                if found.verdict == "not_equivalent":
                    logger.info("bounded check found a difference in %s that random simulation missed", top)
                found.passed, found.total = (result.passed, result.total) if found.equivalent else \
                    (found.passed, found.total)
                result = found
            elif bmc.reason:
                result.reason = f"simulation found no difference; {bmc.reason}"
    result.interface = iface.to_dict()
    timings["total"] = time.monotonic() - start
    result.timings = {**timings, **result.timings}
    return result


def _yosys_available() -> bool:
    from .toolchain import has_tool

    if has_tool("yosys"):
        return True
    logger.warning("yosys is not installed: equivalence falls back to simulation only "
                   "(`apt-get install -y yosys` enables the formal checks)")
    return False


def _decided(outcome, gold_code: str, cand_code: str, iface: ModuleInterface, config: EquivConfig,
             timings: dict[str, float]) -> EquivResult | None:
    """The result a formal outcome decides (a counterexample is replayed in simulation), or ``None``."""
    if outcome.verdict == "equivalent":
        return EquivResult("equivalent", "formal", reason=outcome.reason, log=outcome.log)
    if outcome.verdict != "not_equivalent":
        return None
    t0 = time.monotonic()
    if outcome.trace:
        replay = simulate_equivalence(gold_code, cand_code, iface, config, trace=outcome.trace)
    else:
        replay = simulate_equivalence(gold_code, cand_code, iface, config, vectors=[outcome.vector])
    timings["replay"] = time.monotonic() - t0
    if replay.verdict != "not_equivalent":
        logger.info("formal counterexample for %s did not replay in simulation (%s); simulating", iface.name,
                    replay.reason or replay.verdict)
        return None
    replay.method = "formal"
    replay.reason = f"{outcome.reason}: a distinguishing input found by SAT, replayed in simulation"
    if replay.counterexample is not None and outcome.trace:
        replay.counterexample["trace"] = outcome.trace[: replay.counterexample["cycle"] + 1]
    return replay


def interface_differences(golden: ModuleInterface, candidate: ModuleInterface) -> list[str]:
    """Human-readable port differences (missing, extra, direction, width); empty when compatible."""
    problems: list[str] = []
    gold = {p.name: p for p in golden.ports}
    cand = {p.name: p for p in candidate.ports}
    missing = [n for n in gold if n not in cand]
    extra = [n for n in cand if n not in gold]
    if missing:
        problems.append(f"candidate lacks port(s) {', '.join(missing)}")
    if extra:
        problems.append(f"candidate has extra port(s) {', '.join(extra)}")
    for name, g in gold.items():
        c = cand.get(name)
        if c is None:
            continue
        if c.direction != g.direction:
            problems.append(f"port {name} is {c.direction} in the candidate, {g.direction} in the golden design")
        elif c.width != g.width:
            problems.append(f"port {name} is {c.width} bit(s) wide in the candidate, {g.width} in the golden design")
        elif c.packed != g.packed:
            problems.append(f"port {name} is {'not ' if not c.packed else ''}a packed vector in the candidate only")
    return problems


def merge_clocking(golden: ModuleInterface, candidate: ModuleInterface) -> ModuleInterface:
    """Golden's interface, with clocks and resets only the candidate uses added (both must be exercised)."""
    clocks = list(golden.clocks)
    names = {c.name for c in clocks} | {r.name for r in golden.resets}
    clocks += [c for c in candidate.clocks if c.name not in names]
    names |= {c.name for c in clocks}
    resets = list(golden.resets) + [r for r in candidate.resets if r.name not in names]
    return dataclasses.replace(golden, clocks=tuple(clocks), resets=tuple(resets),
                               sequential=golden.sequential or candidate.sequential)


def simulate_equivalence(gold_code: str, cand_code: str, iface: ModuleInterface, config: EquivConfig,
                         vectors: list[dict[str, int]] | None = None,
                         trace: list[dict[str, int]] | None = None) -> EquivResult:
    """Run the generated testbench; ``vectors`` (combinational) or ``trace`` (one clock) replays a
    formal model instead."""
    from .equiv_tb import (
        TB_TOP,
        directed_testbench,
        generate_testbench,
        parse_counterexample,
        trace_testbench,
    )
    from .simulate import simulate
    from .task import Task

    if trace is not None:
        tb = trace_testbench(iface, trace)
    elif vectors is not None:
        tb = directed_testbench(iface, vectors)
    else:
        tb = generate_testbench(iface, config.stimulus())
    task = Task(id=f"equiv:{iface.name}", prompt="", top=iface.name, reference=gold_code, testbench=tb,
                harness="verirl", tb_top=TB_TOP)
    sim = simulate(task, cand_code, config=config.sandbox, run_timeout=config.sim_timeout)
    timings = {"compile": sim.compile_seconds, "run": sim.sim_seconds}
    passed = total = None
    if sim.failure in (None, "mismatch"):
        passed, total = _counts(sim.stdout)
    if sim.passed:
        return EquivResult("equivalent", "simulation", passed=passed, total=total, timings=timings)
    if sim.failure == "mismatch":
        cex = parse_counterexample(sim.stdout)
        if cex is not None:
            cex["seed"] = config.seed
        return EquivResult("not_equivalent", "simulation", counterexample=cex, passed=passed, total=total,
                           reason="outputs differ", timings=timings, log=sim.log)
    if sim.failure in ("timeout", "resource"):
        # both designs share the simulation: charge the candidate only when the golden design runs the
        # same testbench against itself within the limits
        alone = simulate(dataclasses.replace(task, id=f"{task.id}:golden"), gold_code, config=config.sandbox,
                         run_timeout=config.sim_timeout)
        timings["golden_alone"] = alone.compile_seconds + alone.sim_seconds
        if alone.passed:
            return EquivResult("not_equivalent", "simulation", reason=f"the candidate makes the simulation "
                               f"{'time out' if sim.failure == 'timeout' else 'exceed its resource limits'} "
                               "(the golden design alone does not)", fault=sim.failure, timings=timings, log=sim.log)
        return EquivResult("error", "simulation", reason=f"the golden design alone fails the equivalence "
                           f"testbench ({alone.failure})", fault="golden", timings=timings, log=alone.log)
    # the golden design failing too means the tools cannot handle it (Icarus lacks some SystemVerilog)
    golden_failed = any(line.startswith("verirl_ref.v:") and ("error" in line or "sorry" in line)
                        for line in sim.log.splitlines())
    at_fault = "golden" if golden_failed else "candidate"
    return EquivResult("error", "simulation", reason=f"simulation failed ({sim.failure})", fault=at_fault,
                       timings=timings, log=sim.log)


def _counts(stdout: str) -> tuple[int | None, int | None]:
    import re

    found = re.findall(r"^VERIRL-RESULT-[0-9a-f]+ (\d+) (\d+)$", stdout, re.MULTILINE)
    if len(found) != 1:
        return None, None
    return int(found[0][0]), int(found[0][1])
