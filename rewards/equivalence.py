"""Is a candidate design equivalent to a golden design, and how sure are we?

:func:`check_equivalence` is the one entry point, shared by the ``equivalence`` reward (tasks with
a ``reference`` and no ``testbench``), the data pipeline's round-trip filter and ``verirl equiv``:

1. both sources go through :func:`rewards.sanitize.sanitize_candidate` (no file access, no
   ``$finish``, no printing) before any tool sees them;
2. both are elaborated (:mod:`rewards.interface`); a source that does not compile is an ``error``
   naming the side at fault, and the port lists are compared by name, direction and width: any
   difference is ``interface_mismatch``;
3. **formal** (:mod:`rewards.formal`): a k-induction from reset on a clock-accurate, X-accurate
   miter, unless :mod:`rewards.equiv_hazards` finds a construct whose simulation the model would
   not describe (then the simulator decides);
4. **simulation** (:mod:`rewards.equiv_tb`, :mod:`rewards.equiv_sim`): whenever formal did not
   prove or refute, and the only method with ``method="simulation"``.

Every ``equivalent`` verdict carries a **strength**, what it guarantees:

``proven``
    formal proof: no input sequence starting with the resets asserted makes the simulated outputs
    differ (within the modelled semantics; see docs/equivalence.md);
``bounded``
    formal: no input sequence of at most ``bound`` steps from reset does (each step changes one
    clock, one reset, or the data inputs), and the simulation found no difference;
``simulated``
    the generated stimulus found no difference.

Every ``not_equivalent`` verdict carries a counterexample replayed in simulation (a formal trace
that the simulator does not reproduce is not a counterexample). A weaker result never overrides a
counterexample. Infrastructure faults (missing tool, crashed tool) are raised as
:class:`rewards.errors.InfrastructureError`, never reported as a verdict on the candidate.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from typing import Any

from .errors import ConfigError
from .interface import InterfaceError, ModuleInterface, is_identifier
from .sandbox import SandboxConfig

logger = logging.getLogger(__name__)

VERDICTS = ("equivalent", "not_equivalent", "interface_mismatch", "error")
METHODS = ("auto", "formal", "simulation")
#: Strengths of an ``equivalent`` verdict, weakest first.
STRENGTHS = ("simulated", "bounded", "proven")


@dataclasses.dataclass(frozen=True)
class EquivConfig:
    """How equivalence is checked. Every field is read by :func:`check_equivalence` or by the
    reward (:mod:`rewards.hierarchy`)."""

    method: str = dataclasses.field(default="auto", metadata={"help": (
        "auto: formal first, simulation when formal neither proves nor refutes; formal: formal only "
        "(a design it cannot model is an error); simulation: simulation only")})
    min_strength: str = dataclasses.field(default="simulated", metadata={"help": (
        "weakest 'equivalent' the reward and `verirl equiv` accept: simulated, bounded or proven; a weaker "
        "one scores as not passed (failure 'unproven')")})
    partial_credit: bool = dataclasses.field(default=False, metadata={"help": (
        "reward of a non-equivalent candidate: the fraction of stimulus sequences without a mismatch "
        "(the simulation then runs every sequence) instead of 0")})
    seed: int = dataclasses.field(default=1, metadata={"help": "seed of the random stimulus ($random)"})
    sequences: int = dataclasses.field(default=8, metadata={"help": (
        "sequential: reset-started sequences (combinational: blocks of vectors, for partial credit)")})
    cycles: int = dataclasses.field(default=150, metadata={"help": "sequential: clock cycles per sequence"})
    long_cycles: int = dataclasses.field(default=1200, metadata={"help": (
        "sequential: cycles of a final sequence without mid-sequence resets, to reach deep states (0: none)")})
    reset_pulses: int = dataclasses.field(default=4, metadata={"help": (
        "sequential: extra reset pulses (short and long, at random) inside each sequence")})
    vectors: int = dataclasses.field(default=2000, metadata={"help": "combinational: random vectors"})
    exhaustive_bits: int = dataclasses.field(default=16, metadata={"help": (
        "combinational: enumerate every input value when the inputs total at most this many bits")})
    stop_on_mismatch: bool = dataclasses.field(default=True, metadata={"help": (
        "end the simulation at the first mismatch (faster; ignored with partial_credit)")})
    formal_timeout: float = dataclasses.field(default=5.0, metadata={"help": (
        "seconds for the Yosys run (proof and bounded check together)")})
    formal_depth: int = dataclasses.field(default=24, metadata={"help": (
        "most steps of the k-induction from reset; its base case is the bounded check (a clock cycle "
        "takes at least two steps)")})
    sim_timeout: float = dataclasses.field(default=20.0, metadata={"help": "seconds for one simulation run"})
    sandbox: SandboxConfig | None = dataclasses.field(default=None, metadata={"help": (
        "containment of the tools (default: rewards.sandbox.SandboxConfig())")})

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"EquivConfig.method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.min_strength not in STRENGTHS:
            raise ConfigError(f"EquivConfig.min_strength must be one of {', '.join(STRENGTHS)}, "
                              f"got {self.min_strength!r}")
        if self.method == "simulation" and self.min_strength != "simulated":
            raise ConfigError(f"EquivConfig.min_strength={self.min_strength!r} cannot be met by "
                              "method='simulation'; use method 'auto' or 'formal'")
        for name in ("sequences", "cycles", "vectors", "formal_depth"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"EquivConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("long_cycles", "reset_pulses", "exhaustive_bits"):
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
                        stop_on_mismatch=self.stop_on_mismatch and not self.partial_credit)


@dataclasses.dataclass
class EquivResult:
    verdict: str
    """``equivalent``, ``not_equivalent``, ``interface_mismatch`` or ``error``."""
    method: str | None = None
    """``formal`` or ``simulation``: what decided (``None`` when nothing ran)."""
    strength: str | None = None
    """For ``equivalent``: ``proven``, ``bounded`` or ``simulated`` (see the module documentation)."""
    bound: int | None = None
    """Steps from reset the formal bounded check covered without a difference (``None``: not run)."""
    counterexample: dict[str, Any] | None = None
    reason: str = ""
    fault: str | None = None
    """For ``error``: ``golden`` or ``candidate`` (which input is unusable); for a simulated
    ``not_equivalent`` caused by a candidate fault: the failure class (``timeout``, ``resource``)."""
    passed: int | None = None
    total: int | None = None
    """Simulation checks passed and run (up to the first mismatch unless every sequence runs)."""
    sequences_passed: int | None = None
    sequences: int | None = None
    hazards: list[str] = dataclasses.field(default_factory=list)
    """Why the formal model was not trusted (constructs whose simulation it does not describe)."""
    interface: dict[str, Any] | None = None
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    log: str = ""

    @property
    def equivalent(self) -> bool:
        return self.verdict == "equivalent"

    def meets(self, min_strength: str) -> bool:
        """Equivalent, at least as strongly as ``min_strength``."""
        return self.equivalent and STRENGTHS.index(self.strength or "simulated") >= STRENGTHS.index(min_strength)

    @property
    def sequence_fraction(self) -> float | None:
        """Fraction of stimulus sequences without a mismatch (partial credit), when known."""
        if self.sequences_passed is None or not self.sequences:
            return None
        return max(0.0, min(1.0, self.sequences_passed / self.sequences))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class _Design:
    code: str
    iface: ModuleInterface
    hazards: tuple[str, ...]
    unit_names: tuple[str, ...] = ()
    """Names the source declares outside modules (``$unit``): renamed apart in the golden file."""


def check_equivalence(golden: str, candidate: str, top: str | None = None, *,
                      config: EquivConfig | None = None) -> EquivResult:
    """Compare ``candidate`` with ``golden``; both define module ``top`` (default: golden's only top)."""
    config = config or EquivConfig()
    start = time.monotonic()
    sides = _prepare_both(golden, candidate, top)
    if isinstance(sides, EquivResult):
        return sides
    gold, cand = sides
    timings: dict[str, float] = {"interface": time.monotonic() - start}
    problems = interface_differences(gold.iface, cand.iface)
    if problems:
        return EquivResult("interface_mismatch", reason="; ".join(problems), interface=gold.iface.to_dict(),
                           timings=timings)
    iface = merge_clocking(gold.iface, cand.iface)
    hazards = [f"golden: {h}" for h in gold.hazards] + [f"candidate: {h}" for h in cand.hazards]
    result = _decide(gold, cand, iface, hazards, config, timings)
    result.hazards = hazards
    result.interface = iface.to_dict()
    timings["total"] = time.monotonic() - start
    result.timings = {**timings, **result.timings}
    return result


def _prepare_both(golden: str, candidate: str, top: str | None) -> tuple[_Design, _Design] | EquivResult:
    """Both sides prepared (:func:`_prepare`) under ``top`` (default: golden's only top), or the error of the first
    side that cannot be (a fresh result: the prepared sides are cached)."""
    if top is not None and not is_identifier(top):
        raise ValueError(f"top module name {top!r} is not a plain Verilog identifier")
    if top is None:
        from .interface import extract_interface

        try:
            top = extract_interface(golden).name
        except InterfaceError as exc:
            return EquivResult("error", reason=f"golden design: {exc}", fault="golden")
    gold = _prepare(golden, top, "golden", candidate=False)
    if isinstance(gold, EquivResult):
        return dataclasses.replace(gold)
    cand = _prepare(candidate, top, "candidate", candidate=True)
    if isinstance(cand, EquivResult):
        return dataclasses.replace(cand)
    return gold, cand


def _decide(gold: _Design, cand: _Design, iface: ModuleInterface, hazards: list[str], config: EquivConfig,
            timings: dict[str, float]) -> EquivResult:
    """The check of two designs with matching interfaces: simulation when asked for, or (``auto``) when a hazard
    keeps the formal model from describing the simulation or Yosys is missing; an error when ``formal`` was asked
    for on such a design; else formal first, then simulation."""
    if config.method == "simulation" or (config.method == "auto" and (hazards or not _yosys_available())):
        t0 = time.monotonic()
        result = simulate_equivalence(gold.code, cand.code, iface, config, unit_names=gold.unit_names)
        timings["simulation"] = time.monotonic() - t0
        if result.equivalent and hazards:
            result.reason = "simulation found no difference; formal not attempted"
        return result
    if hazards:
        return EquivResult("error", "formal", reason="the formal model would not describe the simulation: "
                           f"{'; '.join(hazards)}", fault="golden" if gold.hazards else "candidate")
    return _formal_then_simulation(gold, cand, iface, config, timings)


@functools.lru_cache(maxsize=64)
def _prepare(source: str, top: str, role: str, *, candidate: bool) -> _Design | EquivResult:
    """Sanitize, elaborate, extract the interface and the hazards of one side (cached: a reward
    run checks many candidates against the same golden design)."""
    from .equiv_hazards import find_hazards
    from .interface import elaborate, interface_of_instance
    from .sanitize import Forbidden, sanitize_candidate

    try:
        code = sanitize_candidate(source, top, prefix=None if candidate else "verirl_g_").code
    except Forbidden as exc:
        return EquivResult("error", reason=f"{role} design: {exc}", fault=role)
    except ValueError as exc:
        return EquivResult("error", reason=f"{role} design: {exc}", fault=role)
    try:
        owners, inst = elaborate(code, top)
        iface = interface_of_instance(inst)
        hazards = [str(h) for h in find_hazards(inst, {c.name for c in iface.clocks}, candidate=candidate)]
        if iface.internal_clocks:
            hazards.append(f"internal_clock: edges on {', '.join(iface.internal_clocks[:4])}, which are not "
                           "input bits")
        unit_names = tuple(sorted({m.name for unit in owners[0].getRoot().compilationUnits for m in unit
                                   if m.name}))
        del owners
    except InterfaceError as exc:
        return EquivResult("error", reason=f"{role} design: {exc}", fault=role)
    unsupported = [p.name for p in iface.ports if p.direction == "ref" or len(p.unpacked) > 1]
    if unsupported:
        return EquivResult("error", reason=f"{role} design: ports {', '.join(unsupported)} are ref ports or "
                           "multi-dimensional arrays, which the equivalence testbench does not drive", fault=role)
    try:
        from .equiv_tb import vname

        for port in iface.ports:
            vname(port.name)
    except ValueError as exc:
        return EquivResult("error", reason=f"{role} design: {exc}", fault=role)
    return _Design(code, iface, tuple(hazards), unit_names)


def _formal_then_simulation(gold: _Design, cand: _Design, iface: ModuleInterface, config: EquivConfig,
                            timings: dict[str, float]) -> EquivResult:
    """``auto`` and ``formal`` on a design the formal model describes.

    Combinational: the SAT miter decides (simulation only when it cannot). Sequential: the fast
    register-correspondence proof; then (``auto``) the simulation, which refutes most wrong
    candidates cheaply; then, when it found nothing, the k-induction from reset, which proves,
    finds what random stimulus missed, or bounds.
    """
    from .formal import FormalSession

    t0 = time.monotonic()
    budget = config.formal_timeout
    sim: EquivResult | None = None
    with FormalSession(gold.code, cand.code, iface, config) as session:
        if iface.sequential:
            first = session.correspondence(budget / 2)
            budget -= first.elapsed
            if first.verdict == "equivalent":
                timings["formal"] = time.monotonic() - t0
                return _formal_result(first, gold, cand.code, iface, config, timings)
            if config.method == "auto":
                t1 = time.monotonic()
                sim = simulate_equivalence(gold.code, cand.code, iface, config, unit_names=gold.unit_names)
                timings["simulation"] = time.monotonic() - t1
                if not sim.equivalent:
                    timings["formal"] = t1 - t0
                    return sim
        t2 = time.monotonic()
        outcome = session.induction(max(budget, 0.5))
        timings["formal"] = timings.get("formal", 0.0) + time.monotonic() - t2
    decided = _formal_result(outcome, gold, cand.code, iface, config, timings)
    if decided is not None:
        if decided.equivalent and sim is not None:
            decided.passed, decided.total = sim.passed, sim.total
            decided.sequences_passed, decided.sequences = sim.sequences_passed, sim.sequences
        return decided
    if sim is None:
        t1 = time.monotonic()
        sim = simulate_equivalence(gold.code, cand.code, iface, config, unit_names=gold.unit_names)
        timings["simulation"] = time.monotonic() - t1
    if sim.equivalent:
        if outcome.verdict == "bounded" and outcome.bound > 0:
            sim.strength, sim.bound = "bounded", outcome.bound
        sim.reason = f"simulation found no difference; formal: {outcome.reason}"
    return sim


def _yosys_available() -> bool:
    from .toolchain import has_tool

    if has_tool("yosys"):
        return True
    logger.warning("yosys is not installed: equivalence falls back to simulation only "
                   "(`apt-get install -y yosys` enables the formal checks)")
    return False


def _formal_result(outcome, gold: _Design, cand_code: str, iface: ModuleInterface, config: EquivConfig,
                   timings: dict[str, float]) -> EquivResult | None:
    """The result a formal outcome decides, or ``None`` when the simulation must decide."""
    if outcome.verdict == "equivalent":
        # a proof about the simulation holds only if the simulator compiles both designs
        from .equiv_sim import compile_only
        from .equiv_tb import generate_testbench

        t0 = time.monotonic()
        comp = compile_only(gold.code, cand_code, generate_testbench(iface, config.stimulus(), "verirl_ref_"),
                            sandbox=config.sandbox, unit_names=gold.unit_names, keep=_port_names(iface))
        timings["compile"] = time.monotonic() - t0
        if not comp.ok:
            return EquivResult("error", "simulation", reason=f"the simulator does not compile the "
                               f"{comp.at_fault} design ({comp.failure})", fault=comp.at_fault, log=comp.log)
        return EquivResult("equivalent", "formal", strength="proven", bound=outcome.bound, reason=outcome.reason,
                           log=outcome.log)
    if outcome.verdict == "not_equivalent":
        t0 = time.monotonic()
        replay = simulate_equivalence(gold.code, cand_code, iface, config, trace=outcome.trace,
                                      unit_names=gold.unit_names)
        timings["replay"] = time.monotonic() - t0
        if replay.verdict == "not_equivalent":
            replay.method = "formal"
            replay.reason = f"{outcome.reason}, replayed in simulation"
            if replay.counterexample is not None:
                replay.counterexample["trace"] = outcome.trace
            return replay
        if replay.verdict == "error":
            return replay
        logger.info("formal counterexample for %s did not replay in simulation (%s); simulating", iface.name,
                    replay.reason or replay.verdict)
        outcome.verdict, outcome.bound = "undecided", 0
        outcome.reason = "a formal trace the simulator does not reproduce (formal result not used)"
        return None
    if config.method == "formal":
        if outcome.verdict == "bounded":
            return EquivResult("equivalent", "formal", strength="bounded", bound=outcome.bound, reason=outcome.reason,
                               log=outcome.log)
        return EquivResult("error", "formal", reason=f"formal check undecided: {outcome.reason}", log=outcome.log)
    return None


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
        elif c.unpacked != g.unpacked:
            problems.append(f"port {name} has unpacked dimensions {list(c.unpacked)} in the candidate, "
                            f"{list(g.unpacked)} in the golden design")
    return problems


def merge_clocking(golden: ModuleInterface, candidate: ModuleInterface) -> ModuleInterface:
    """Golden's interface, with clock bits, resets and strobes only the candidate uses added (both
    must be exercised: a candidate that clocks on a golden data input gets that input toggled as a
    clock, one that gates state on it gets it pulsed)."""
    clocks = list(golden.clocks)
    reset_names = {r.name for r in golden.resets}
    keys = {(c.name, c.bit or 0) for c in clocks}
    clocks += [c for c in candidate.clocks if (c.name, c.bit or 0) not in keys and c.name not in reset_names]
    clock_names = {c.name for c in clocks}
    resets = list(golden.resets) + [r for r in candidate.resets if r.name not in reset_names | clock_names]
    special = clock_names | {r.name for r in resets}
    strobes = [s for s in golden.strobes if s.name not in special]
    strobes += [s for s in candidate.strobes if s.name not in special | {g.name for g in strobes}]
    return dataclasses.replace(golden, clocks=tuple(clocks), resets=tuple(resets), strobes=tuple(strobes),
                               sequential=golden.sequential or candidate.sequential,
                               internal_clocks=tuple(sorted(set(golden.internal_clocks) | set(candidate.internal_clocks))))


def _port_names(iface: ModuleInterface) -> tuple[str, ...]:
    return tuple(p.name for p in iface.ports)


def simulate_equivalence(gold_code: str, cand_code: str, iface: ModuleInterface, config: EquivConfig,
                         trace: list[dict[str, int]] | None = None, unit_names: tuple[str, ...] = ()) -> EquivResult:
    """Run the generated testbench, or replay a formal ``trace`` step by step (``unit_names``: what
    the golden source declares outside modules, renamed apart from the candidate)."""
    from .equiv_sim import REF_PREFIX, run_testbench
    from .equiv_tb import generate_testbench, parse_counterexample, trace_testbench

    if trace is not None:
        tb = trace_testbench(iface, trace, REF_PREFIX)
    else:
        tb = generate_testbench(iface, config.stimulus(), REF_PREFIX)
    names = {"unit_names": unit_names, "keep": _port_names(iface)}
    run = run_testbench(tb, gold_code, cand_code, sandbox=config.sandbox, timeout=config.sim_timeout, **names)
    timings = {"compile": run.compile_seconds, "run": run.run_seconds}
    counts = {}
    if run.failure in (None, "mismatch"):
        counts = {"passed": run.passed, "total": run.total, "sequences_passed": run.seq_passed,
                  "sequences": run.seq_total}
    if run.ok:
        return EquivResult("equivalent", "simulation", strength="simulated", timings=timings, **counts)
    if run.failure == "mismatch":
        cex = parse_counterexample(run.stdout)
        if cex is not None:
            cex["seed"] = config.seed
        return EquivResult("not_equivalent", "simulation", counterexample=cex, reason="outputs differ",
                           timings=timings, log=run.log, **counts)
    if run.failure in ("timeout", "resource"):
        # both designs share the simulation: charge the candidate only when the golden design runs the
        # same testbench against itself within the limits
        alone = run_testbench(tb, gold_code, _as_candidate(gold_code, iface.name), sandbox=config.sandbox,
                              timeout=config.sim_timeout, **names)
        timings["golden_alone"] = alone.compile_seconds + alone.run_seconds
        if alone.ok:
            return EquivResult("not_equivalent", "simulation", reason=f"the candidate makes the simulation "
                               f"{'time out' if run.failure == 'timeout' else 'exceed its resource limits'} "
                               "(the golden design alone does not)", fault=run.failure, timings=timings,
                               log=run.log, sequences_passed=0, sequences=max(config.sequences, 1))
        return EquivResult("error", "simulation", reason=f"the golden design alone fails the equivalence "
                           f"testbench ({alone.failure})", fault="golden", timings=timings, log=alone.log)
    at_fault = run.at_fault or "candidate"
    return EquivResult("error", "simulation", reason=f"simulation failed ({run.failure})", fault=at_fault,
                       timings=timings, log=run.log)


def _as_candidate(gold_code: str, top: str) -> str:
    """The golden design as a second, independent candidate (its sub-modules renamed apart)."""
    from .sanitize import sanitize_candidate

    return sanitize_candidate(gold_code, top, prefix="verirl_galone_").code
