"""The hierarchical reward: format → syntax → function → PPA.

Each level is scored only when every enabled level before it passed: no syntax credit
without extractable code, no function credit without a design that passes the elaboration
gate, and PPA credit only for functionally correct designs (a PPA term computed before
correctness would reward tiny wrong netlists). Every component is reported separately; the
total is ``sum(weight[level] * component[level])`` over enabled levels.

The completion's code becomes one canonical text (:mod:`rewards.sanitize`), computed once and
passed down: the gate, the simulator, Yosys and the equivalence checker all read that string.
The gate (:func:`rewards.syntax.check_syntax`) runs first, on every candidate; failing it, or
its in-context half inside :func:`rewards.simulate.simulate`, leaves no syntax, function or PPA
credit whatever the simulation said.

Component values:

* ``format`` — the extractor's format score (1.0 wrapped code, 0.5 bare module, 0 none);
* ``syntax`` — 1.0 when the canonical text passes the gate (it elaborates alone), else 0;
* ``function`` — fraction of testbench checks passed (``partial_credit=True``) or 1/0;
  with no testbench, equivalence against the reference: 1/0 (an equivalence weaker than the
  equivalence config's ``min_strength`` is 0), or the fraction of stimulus sequences without a
  mismatch with the equivalence config's ``partial_credit``; only behind the gate;
* ``ppa`` — :func:`rewards.synth.ppa_score` against the reference's synthesis figures.

A component is ``None`` when its level is disabled, and 0.0 when it was not reached.

Verdicts and values: :func:`judge` asks the tools (the verdict: stage reached, pass/fail, failure class, the
function level's fraction, PPA figures), and :meth:`RewardConfig.value` turns a verdict into one configuration's
score (weights, ``partial_credit``). Every field of :class:`RewardConfig` is marked as one or the other, so
configurations that differ only in how a verdict becomes a number share verdicts (one pool, one cache entry).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError, Forbidden, InfrastructureError, ReferenceRejected, TaskError
from .extract import REASONING_MODES, extract_verilog
from .sandbox import Limits, SandboxConfig, accounting, stage
from .sanitize import Sanitized, sanitize_candidate
from .score import LEVELS, Score
from .simulate import SimLimits, SimResult, compile_candidate, reference_as_candidate
from .syntax import check_syntax
from .synth import liberty_path, ppa_score, synthesize
from .task import Task
from .task_checks import TaskState, known_simulation, simulation_facts, synthesis_facts, task_state

logger = logging.getLogger(__name__)

DEFAULT_WEIGHTS = {"format": 0.1, "syntax": 0.1, "function": 1.0, "ppa": 0.0}
TESTBENCH_METHOD = "simulation"
"""``detail["method"]`` of a function verdict by the task's testbench (its fraction is graded by ``partial_credit``)."""


@dataclasses.dataclass(frozen=True)
class RewardConfig:
    """How completions are scored. Invalid values raise :class:`ConfigError` on construction."""

    weights: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_WEIGHTS),
                                                     metadata={"part": "value"})
    """Weight per level (``format``, ``syntax``, ``function``, ``ppa``); weight 0 disables a level. Which levels are
    on is part of the verdict (:attr:`verdict_levels`: it decides which tools run); the weights' values are not."""
    partial_credit: bool = dataclasses.field(default=True, metadata={"part": "value"})
    """Function component = fraction of testbench checks passed, instead of all-or-nothing."""
    reasoning: str = dataclasses.field(default="optional", metadata={"part": "verdict"})
    """``none``, ``optional`` or ``required``: whether a ``<think>...</think>`` block is expected."""
    liberty: str | None = dataclasses.field(default=None, metadata={"part": "verdict"})
    """Liberty file for µm² area; without it, a technology-independent transistor estimate."""
    sim: SimLimits = dataclasses.field(default_factory=SimLimits, metadata={"part": "verdict"})
    """Compile/simulation timeouts; the simulation timeout adapts to the reference's run time."""
    equivalence: Mapping[str, Any] = dataclasses.field(default_factory=dict, metadata={"part": "verdict"})
    """Settings for :class:`rewards.equivalence.EquivConfig`, used for tasks without a testbench (all of them verdict
    settings, its ``partial_credit`` included: it makes the simulation run every stimulus sequence)."""
    sandbox: SandboxConfig = dataclasses.field(default_factory=SandboxConfig, metadata={"part": "verdict"})
    """Resource limits and isolation of every tool run."""
    validate_reference: bool = dataclasses.field(default=True, metadata={"part": "verdict"})
    """Simulate the reference once per task: a reference that fails its own testbench makes the task
    ``task_error`` (never the model's fault), and the candidate's timeout adapts to the reference's run
    time. When False, the reference is not run and the timeout is ``sim.max_timeout``."""

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(LEVELS)
        if unknown:
            raise ConfigError(f"unknown reward level(s) {sorted(unknown)} in weights; levels are {list(LEVELS)}")
        for level, weight in self.weights.items():
            if not isinstance(weight, (int, float)) or weight < 0:
                raise ConfigError(f"weight of level {level!r} must be a number >= 0, got {weight!r}")
        if self.reasoning not in REASONING_MODES:
            raise ConfigError(f"reasoning must be one of {REASONING_MODES}, got {self.reasoning!r}")
        if self.liberty is not None:
            try:
                object.__setattr__(self, "liberty", liberty_path(self.liberty))
            except FileNotFoundError as exc:
                raise ConfigError(str(exc)) from None
        if self.equivalence:
            from .equivalence import EquivConfig

            try:
                EquivConfig(**dict(self.equivalence))
            except TypeError as exc:
                raise ConfigError(f"bad equivalence settings {dict(self.equivalence)}: {exc}") from None

    def weight(self, level: str) -> float:
        return float(self.weights.get(level, 0.0))

    def enabled(self, level: str) -> bool:
        return self.weight(level) > 0

    @property
    def verdict_levels(self) -> tuple[str, ...]:
        """The levels a verdict under this configuration holds: what the tools are asked to decide. ``format`` always
        (extraction runs anyway), ``syntax`` when any tool level is on (the gate runs before any of them), and
        ``function`` and ``ppa`` as enabled."""
        tools = any(self.enabled(lvl) for lvl in ("syntax", "function", "ppa"))
        return tuple(lvl for lvl in LEVELS
                     if lvl == "format" or (lvl == "syntax" and tools) or (lvl != "syntax" and self.enabled(lvl)))

    @property
    def verdict_fingerprint(self) -> str:
        """Hash of what changes a verdict (the ``verdict`` fields and :attr:`verdict_levels`): the key of the pool's
        cache. Configurations that differ only in ``value`` fields share verdicts."""
        from .equivalence import EquivConfig

        settings = {f.name: _plain(getattr(self, f.name)) for f in _part("verdict")}
        # the checker's settings in full: written-out defaults are the same checker (its sandbox is ``sandbox``)
        settings["equivalence"] = _plain(dataclasses.replace(EquivConfig(**dict(self.equivalence)), sandbox=None))
        return _digest([self.verdict_levels, settings])

    @property
    def fingerprint(self) -> str:
        """Hash of everything a score depends on: the verdict and how a value is computed from it."""
        return _digest([self.verdict_fingerprint, *(_plain(getattr(self, f.name)) for f in _part("value"))])

    @property
    def verdict_config(self) -> RewardConfig:
        """The canonical configuration verdicts are computed under: these verdict settings, weight 1 on each of
        :attr:`verdict_levels`, and the value settings' defaults (which no verdict reads)."""
        levels = self.verdict_levels
        return dataclasses.replace(self, weights={lvl: (1.0 if lvl in levels else 0.0) for lvl in LEVELS},
                                   partial_credit=True)

    def value(self, verdict: Score) -> Score:
        """This configuration's :class:`Score` of a verdict (from :func:`judge`, or a pool's cache) computed under a
        configuration with the same :attr:`verdict_fingerprint`: components of disabled levels are ``None``, the
        testbench's fraction of checks becomes 1/0 without ``partial_credit`` (equivalence's fraction is already
        decided by ``EquivConfig.partial_credit``, a verdict setting), and the total is weighted."""
        if not verdict.scorable:
            return verdict
        components: dict[str, float | None] = {}
        for lvl in LEVELS:
            component = verdict.components.get(lvl) if self.enabled(lvl) else None
            if (lvl == "function" and component is not None and not self.partial_credit
                    and verdict.detail.get("method") == TESTBENCH_METHOD):
                component = 1.0 if verdict.passed else 0.0
            components[lvl] = component
        total = sum(self.weight(lvl) * (components[lvl] or 0.0) for lvl in LEVELS)
        return Score(round(total, 6), verdict.passed, verdict.failure, components, dict(verdict.detail))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RewardConfig:
        """Build from plain values (YAML/JSON); unknown keys are errors."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ConfigError(f"unknown reward setting(s) {sorted(unknown)}; known: {sorted(fields)}")
        data = dict(data)
        if "weights" in data:
            data["weights"] = {**{k: 0.0 for k in LEVELS}, **dict(data["weights"])}
        if isinstance(data.get("sim"), Mapping):
            data["sim"] = SimLimits(**data["sim"])
        if isinstance(data.get("sandbox"), Mapping):
            sb = dict(data["sandbox"])
            if isinstance(sb.get("limits"), Mapping):
                sb["limits"] = Limits(**sb["limits"])
            data["sandbox"] = SandboxConfig(**sb)
        return cls(**data)


def _part(part: str) -> list[dataclasses.Field]:
    """The fields of :class:`RewardConfig` in ``part`` (``verdict``: they change what the tools decide; ``value``:
    they only turn a verdict into a number)."""
    return [f for f in dataclasses.fields(RewardConfig) if f.metadata["part"] == part]


def _check_parts(cls: type = RewardConfig) -> None:
    """Every field of :class:`RewardConfig` says whether it changes verdicts, so a new one cannot join the wrong
    fingerprint (or none) silently."""
    for f in dataclasses.fields(cls):
        if f.metadata.get("part") not in ("verdict", "value"):
            raise TypeError(f"RewardConfig.{f.name} must set metadata part='verdict' (it changes what the tools "
                            "decide) or part='value' (it only turns a verdict into a number)")


_check_parts()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return sorted(value.items()) if isinstance(value, Mapping) else value


def _digest(parts: list) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare_task(task: Task, config: RewardConfig, *, remember: bool = True) -> TaskState:
    """Check the task once per process (the verdict, good or bad, is cached; see :mod:`rewards.task_checks`).

    The reference must define ``top`` and pass the canonical-text rules; with the function level on, the testbench
    must compile with it and, with ``validate_reference``, the reference must pass it (its CPU time sets the
    candidate's budget); with PPA on, its synthesis figures. Raises :class:`TaskError` for a broken task: never the
    model's fault."""
    state = task_state(task, config, remember=remember)
    if task.testbench and state.golden is not None and config.enabled("function"):
        simulation_facts(state, task, config, persist=remember)
    if config.enabled("ppa") and task.reference is not None:
        synthesis_facts(state, task, config, persist=remember)
    return state


def validate_reference(task: Task, config: RewardConfig | None = None) -> None:
    """Score the task's reference as a candidate of its own task, as scoring would, and raise unless it passes.

    Everything a completion goes through runs on it: the canonical text and its rules, the standalone elaboration
    gate, the reference passing its own testbench (simulation tasks) or its equivalence with itself
    (reference-only tasks), and its synthesis when PPA is on. Raises :class:`~rewards.errors.ReferenceRejected`
    (a :class:`TaskError`) with the failure class and detail, :class:`TaskError` for a task fault found before any
    tool ran, and :class:`InfrastructureError` for a fault of the machine. Nothing is remembered: no per-process
    table and no facts file grows (meant for one-off tasks, e.g. the data pipeline's filters)."""
    config = config or RewardConfig()
    state = task_state(task, config, remember=False)
    if state.golden is None:
        raise TaskError(f"task {task.id!r} has no reference design to validate")
    score = _score_code(task, reference_as_candidate(task), 1.0, config, state=state, persist=False)
    if score.failure == "infrastructure":
        raise InfrastructureError(score.detail.get("reason") or "infrastructure fault")
    if score.failure == "task_error":
        raise TaskError(score.detail.get("reason") or "task fault")
    if not score.passed:
        detail = score.detail or {}
        text = str(detail.get("log") or detail.get("reason") or "")
        raise ReferenceRejected(f"task {task.id!r}: its reference, scored as a candidate, fails ({score.failure}): "
                                f"{text[-600:]}", score.failure, detail)


def score_completion(task: Task, completion: Any, config: RewardConfig | None = None) -> Score:
    """Score one completion for one task: ``config``'s value of the completion's verdict (:func:`judge`).
    Infrastructure and task faults give ``reward=None``."""
    config = config or RewardConfig()
    return config.value(judge(task, completion, config))


def judge(task: Task, completion: Any, config: RewardConfig | None = None) -> Score:
    """The verdict on one completion: what the tools decide under ``config``'s verdict settings, as a :class:`Score`
    computed under :attr:`RewardConfig.verdict_config` (components are the facts: the format score, the gate's 1/0,
    the function level's fraction, the PPA score; weight 1 each). Every configuration with the same
    :attr:`RewardConfig.verdict_fingerprint` turns it into its own score with :meth:`RewardConfig.value`; pools cache
    verdicts, not values.

    ``detail["tools"]`` books the tool runs this call made, by stage (``compile``, ``gate``, ``context``,
    ``simulate``, ``reference``, ``equivalence``, ``ppa``): processes, CPU and wall seconds."""
    config = (config or RewardConfig()).verdict_config
    with accounting() as tools:
        try:
            score = _score(task, completion, config)
        except InfrastructureError as exc:
            logger.warning("task %s: not scorable, infrastructure fault: %s", task.id, exc)
            score = Score.unscorable("infrastructure", str(exc))
        except TaskError as exc:
            logger.warning("task %s: not scorable, task fault: %s", task.id, exc)
            score = Score.unscorable("task_error", str(exc))
    if tools:
        score.detail["tools"] = tools
    return score


def _score(task: Task, completion: Any, config: RewardConfig) -> Score:
    start = time.monotonic()
    extraction = extract_verilog(completion, reasoning=config.reasoning)
    if extraction.code is None:
        components = {lvl: (0.0 if config.enabled(lvl) else None) for lvl in LEVELS}
        if config.enabled("format"):
            components["format"] = extraction.format_score
        total = config.weight("format") * (components["format"] or 0.0)
        return Score(round(total, 6), False, "format", components,
                     {"timings": {"extract": time.monotonic() - start}, "log": extraction.reason})
    return _score_code(task, extraction.code, extraction.format_score, config,
                       extract_seconds=time.monotonic() - start)


class _Scorecard:
    """What one scoring call has found so far (components, ``detail`` with its ``timings``) and the :class:`Score`
    it becomes."""

    def __init__(self, config: RewardConfig, format_score: float, extract_seconds: float):
        self.config = config
        self.timings: dict[str, float] = {"extract": extract_seconds}
        self.components: dict[str, float | None] = {lvl: (0.0 if config.enabled(lvl) else None) for lvl in LEVELS}
        self.detail: dict[str, Any] = {"timings": self.timings}
        self.credit("format", format_score)

    def credit(self, level: str, value: float) -> None:
        """Set ``level``'s component (a disabled level stays ``None``)."""
        if self.config.enabled(level):
            self.components[level] = value

    @contextlib.contextmanager
    def timed(self, name: str):
        """Record the seconds of the ``with`` block as ``timings[name]``."""
        start = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = time.monotonic() - start

    def done(self, failure: str | None, passed: bool | None) -> Score:
        total = sum(self.config.weight(lvl) * (self.components[lvl] or 0.0) for lvl in LEVELS)
        return Score(round(total, 6), passed, failure, self.components, self.detail)

    def refused(self, failure: str, log: str, compile_log: str = "") -> Score:
        """A gate failed: no syntax, function or PPA credit, whatever else was measured."""
        for lvl in ("syntax", "function", "ppa"):
            self.credit(lvl, 0.0)
        self.detail["log"] = log
        if compile_log:
            self.detail["compile_log"] = compile_log
        return self.done(failure, False)


def _score_code(task: Task, code_text: str, format_score: float, config: RewardConfig, *,
                state: TaskState | None = None, persist: bool = True, extract_seconds: float = 0.0) -> Score:
    """Score extracted code (see :func:`score_completion`); ``state``/``persist`` for one-off checks.

    The canonical text, then the function level (the simulation path when the task has a testbench, else the
    standalone gate and equivalence with the reference), then PPA for a design that passed."""
    card = _Scorecard(config, format_score, extract_seconds)
    if not any(config.enabled(lvl) for lvl in ("syntax", "function", "ppa")):
        return card.done(None, None)
    if state is None:
        state = task_state(task, config)
    reference = synthesis_facts(state, task, config, persist=persist) if config.enabled("ppa") else None
    try:
        # the one canonical text: the gate, the simulator, Yosys and the equivalence checker all read it
        with card.timed("canonical"):
            sanitized = sanitize_candidate(code_text, task.top, timescale=state.timescale)
    except Forbidden as exc:
        return card.refused("forbidden", str(exc))
    if sanitized.neutralised:
        card.detail["neutralised"] = list(sanitized.neutralised)
    needs_function = config.enabled("function") or config.enabled("ppa")
    if task.testbench and needs_function:
        verdict = _simulation_verdict(task, sanitized, config, state, persist, card)
    else:
        verdict = _gate_and_equivalence(task, sanitized, config, needs_function, card)
    if isinstance(verdict, Score):  # refused at a gate, or no function level to check
        return verdict
    passed, failure, fraction = verdict
    card.detail["pass_fraction"] = fraction
    card.credit("function", fraction)  # the verdict's fraction; RewardConfig.value applies partial_credit
    if not passed:
        return card.done(failure, False)
    if config.enabled("ppa") and reference is not None:
        _ppa(task, sanitized, config, state, reference, card)
    return card.done(None, True)


def _simulation_verdict(task: Task, sanitized: Sanitized, config: RewardConfig, state: TaskState, persist: bool,
                        card: _Scorecard) -> tuple[bool, str | None, float] | Score:
    """(passed, failure, pass fraction) of the testbench, or the refusal at a gate."""
    outcome = _simulate(task, sanitized, config, state, persist, card.timings, card.detail)
    if isinstance(outcome, Score):  # refused at a gate
        return card.refused(outcome.failure or "elaboration", outcome.detail["log"],
                            outcome.detail.get("compile_log", ""))
    card.credit("syntax", 1.0)
    return outcome.passed, outcome.failure, outcome.pass_fraction


def _gate_and_equivalence(task: Task, sanitized: Sanitized, config: RewardConfig, needs_function: bool,
                          card: _Scorecard) -> tuple[bool, str | None, float] | Score:
    """The standalone gate, then (passed, failure, fraction) of equivalence with the reference; a :class:`Score`
    when the gate refuses the design or no function level is to be checked."""
    # the gate, before any credit: the design elaborates alone, reaching nothing outside itself
    with card.timed("syntax"), stage("gate"):
        gate = check_syntax(sanitized.code, task.top, config=config.sandbox, timeout=config.sim.compile_timeout,
                            parameters=needs_function and sanitized.parameterised)
    if not gate.ok:
        card.detail["failure_stage"] = "standalone"
        return card.refused(gate.failure or "elaboration", gate.log, gate.compile_log)
    card.credit("syntax", 1.0)
    if not needs_function:
        return card.done(None, None)
    if task.reference is None:
        raise TaskError(f"task {task.id!r} has neither a testbench nor a reference: cannot check function")
    with card.timed("function"), stage("equivalence"):
        return _equivalence(task, sanitized.code, config, card.detail)


def _ppa(task: Task, sanitized: Sanitized, config: RewardConfig, state: TaskState, reference,
         card: _Scorecard) -> None:
    """The PPA component of a design that passed, against the reference's synthesis figures."""
    with card.timed("ppa"):
        if state.golden is not None and sanitized.shape == state.golden.shape:
            candidate = reference  # the reference's own text: the same netlist
        else:
            with stage("ppa"):
                candidate = synthesize(sanitized.code, task.top, liberty=config.liberty, config=config.sandbox)
    if candidate.ok:
        card.credit("ppa", round(ppa_score(candidate, reference), 6))
        card.detail["ppa"] = {"candidate": candidate.figures(), "reference": reference.figures()}
    elif candidate.timed_out:
        card.detail["ppa"] = {"error": f"synthesis used up its CPU budget: {candidate.log[-300:]}"}
    else:
        card.detail["ppa"] = {"error": candidate.log[-400:]}


def _simulate(task: Task, sanitized: Sanitized, config: RewardConfig, state: TaskState, persist: bool,
              timings: dict[str, float], detail: dict[str, Any]) -> SimResult | Score:
    """The simulation path: the gate and the simulation compile (one compiler run when they can share it), the
    task's facts, the gate's second half, the run. A :class:`Score` stands for "refused at a gate"."""
    check_facts = config.enabled("function")
    if check_facts:
        known_simulation(state, task, config, persist=persist)  # a broken task needs no compile
        state.check()
    start = time.monotonic()
    with compile_candidate(task, sanitized, config=config.sandbox, limits=config.sim, gate=True,
                           parameters=sanitized.parameterised) as compiled:
        timings["compile"] = time.monotonic() - start
        if compiled.gate_reason and compiled.gate_reason != "not gated":
            detail["gate_alone"] = compiled.gate_reason
        gate, result = compiled.gate, None
        assert gate is not None
        context = compiled.context_gate() if gate.ok and compiled.failure is None else None
        if check_facts:  # task faults come first, whatever the candidate did
            start = time.monotonic()
            ready = gate.ok and compiled.failure is None and context is None
            result = simulation_facts(state, task, config, compiled=compiled if ready else None,
                                      candidate=sanitized, persist=persist)
            timings["reference"] = time.monotonic() - start
        if not gate.ok:
            detail["failure_stage"] = "standalone"
            return Score(None, False, gate.failure, {}, {"log": gate.log, "compile_log": gate.compile_log})
        refusal = compiled.failure or context
        if refusal is not None:
            if refusal.failure == "forbidden":  # the gate's second half: the testbench's names or parameter values
                detail["failure_stage"] = "in_context"
                return Score(None, False, "forbidden", {}, {"log": refusal.log, "compile_log": refusal.compile_log})
            _sim_detail(detail, refusal)
            return refusal
        if result is None:
            budget = config.sim.run_timeout(state.reference_cpu) if config.validate_reference else None
            start = time.monotonic()
            result = compiled.run(budget)
            timings["function"] = time.monotonic() - start
    _sim_detail(detail, result)
    return result


def _sim_detail(detail: dict[str, Any], sim: SimResult) -> None:
    detail["log"] = sim.log
    if sim.compile_log:
        detail["compile_log"] = sim.compile_log
    detail["method"] = TESTBENCH_METHOD


def _equivalence(task: Task, code: str, config: RewardConfig, detail: dict[str, Any]) -> tuple[bool, str | None, float]:
    """Function by equivalence with the reference (tasks without a testbench)."""
    from .equivalence import EquivConfig, check_equivalence

    eq_config = EquivConfig(**{**dict(config.equivalence), "sandbox": config.sandbox})
    eq = check_equivalence(reference_as_candidate(task), code, task.top, config=eq_config)
    if eq.verdict == "error":
        if eq.fault == "golden":
            raise TaskError(f"task {task.id!r}: the reference cannot be checked: {eq.reason}")
        if eq.fault != "candidate":
            raise InfrastructureError(f"equivalence check failed: {eq.reason}")
    # binary by default; EquivConfig.partial_credit grants the fraction of stimulus sequences
    # without a mismatch; an equivalence weaker than EquivConfig.min_strength does not pass
    passed = eq.meets(eq_config.min_strength)
    if passed:
        failure = None
    elif eq.verdict == "equivalent":
        failure = "unproven"
    elif eq.verdict == "interface_mismatch":
        failure = "interface_mismatch"
    elif eq.verdict == "error":
        failure = "elaboration"
    else:
        failure = eq.fault if eq.fault in ("timeout", "compile", "elaboration", "resource") else "mismatch"
    fraction = 1.0 if passed else 0.0
    if eq_config.partial_credit and eq.verdict == "not_equivalent" and eq.sequence_fraction is not None:
        fraction = eq.sequence_fraction
    detail["strength"] = eq.strength
    detail["log"] = eq.reason or eq.log
    detail["method"] = f"equivalence/{eq.method}"
    detail["counterexample"] = eq.counterexample
    return passed, failure, fraction


def ppa_only(task: Task, completion: Any, config: RewardConfig) -> tuple[float | None, dict[str, Any]]:
    """PPA component of a completion already known to be functionally correct.

    Returns ``(component, figures)``; ``component`` is ``None`` on an infrastructure or task fault.
    """
    try:
        config = dataclasses.replace(config, weights={**config.weights, "function": 0.0})
        state = task_state(task, config)
        reference = synthesis_facts(state, task, config)
        extraction = extract_verilog(completion, reasoning=config.reasoning)
        if extraction.code is None or reference is None:
            return 0.0, {"error": "no design or no reference to compare with"}
        sanitized = sanitize_candidate(extraction.code, task.top, timescale=state.timescale)
        if state.golden is not None and sanitized.shape == state.golden.shape:
            cand = reference
        else:
            cand = synthesize(sanitized.code, task.top, liberty=config.liberty, config=config.sandbox)
    except (InfrastructureError, TaskError) as exc:
        return None, {"error": str(exc)}
    except Forbidden as exc:
        return 0.0, {"error": str(exc)}
    if not cand.ok:
        return 0.0, {"error": cand.log[-400:]}
    score = round(ppa_score(cand, reference), 6)
    return score, {"candidate": cand.figures(), "reference": reference.figures()}
