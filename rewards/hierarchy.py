"""The hierarchical reward: format → syntax → function → PPA.

Each level is scored only when every enabled level before it passed: no syntax credit
without extractable code, no function credit without a design that compiles, and PPA
credit only for functionally correct designs (a PPA term computed before correctness
would reward tiny wrong netlists). Every component is reported separately; the total is
``sum(weight[level] * component[level])`` over enabled levels.

Component values:

* ``format`` — the extractor's format score (1.0 wrapped code, 0.5 bare module, 0 none);
* ``syntax`` — 1.0 when the sanitized candidate compiles and elaborates alone, else 0;
* ``function`` — fraction of testbench checks passed (``partial_credit=True``) or 1/0;
  with no testbench, equivalence against the reference (1/0);
* ``ppa`` — :func:`rewards.synth.ppa_score` against the reference's synthesis figures.

A component is ``None`` when its level is disabled, and 0.0 when it was not reached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError, InfrastructureError, TaskError
from .extract import REASONING_MODES, extract_verilog
from .sandbox import Limits, SandboxConfig
from .sanitize import Forbidden, sanitize_candidate
from .score import LEVELS, Score
from .simulate import SimLimits, reference_as_candidate, simulate
from .syntax import check_syntax
from .synth import SynthResult, liberty_path, ppa_score, synthesize
from .task import Task

logger = logging.getLogger(__name__)

DEFAULT_WEIGHTS = {"format": 0.1, "syntax": 0.1, "function": 1.0, "ppa": 0.0}


@dataclasses.dataclass(frozen=True)
class RewardConfig:
    """How completions are scored. Invalid values raise :class:`ConfigError` on construction."""

    weights: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    """Weight per level (``format``, ``syntax``, ``function``, ``ppa``); weight 0 disables a level."""
    partial_credit: bool = True
    """Function component = fraction of testbench checks passed, instead of all-or-nothing."""
    reasoning: str = "optional"
    """``none``, ``optional`` or ``required``: whether a ``<think>...</think>`` block is expected."""
    liberty: str | None = None
    """Liberty file for µm² area; without it, a technology-independent transistor estimate."""
    sim: SimLimits = dataclasses.field(default_factory=SimLimits)
    """Compile/simulation timeouts; the simulation timeout adapts to the reference's run time."""
    equivalence: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Settings for :class:`rewards.equivalence.EquivConfig`, used for tasks without a testbench."""
    sandbox: SandboxConfig = dataclasses.field(default_factory=SandboxConfig)
    """Resource limits and isolation of every tool run."""
    validate_reference: bool = True
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
    def fingerprint(self) -> str:
        payload = json.dumps(
            [sorted(self.weights.items()), self.partial_credit, self.reasoning, self.liberty,
             dataclasses.asdict(self.sim), sorted(self.equivalence.items()), self.validate_reference],
            sort_keys=True, default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

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


@dataclasses.dataclass
class _Prepared:
    reference_seconds: float | None
    reference_synth: SynthResult | None


_PREP_CACHE: dict[tuple[str, str], _Prepared] = {}
_PREP_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_PREP_GUARD = threading.Lock()


def prepare_task(task: Task, config: RewardConfig) -> _Prepared:
    """Validate the task once per process: the reference must pass its own testbench.

    Measures the reference's simulation time (the candidate's timeout derives from it) and,
    when PPA is enabled, its synthesis figures. Raises :class:`TaskError` for broken tasks.
    """
    key = (task.fingerprint, config.fingerprint)
    if key in _PREP_CACHE:
        return _PREP_CACHE[key]
    with _PREP_GUARD:
        lock = _PREP_LOCKS.setdefault(key, threading.Lock())
    with lock:
        if key in _PREP_CACHE:
            return _PREP_CACHE[key]
        seconds = None
        if (task.testbench and task.reference is not None and config.enabled("function")
                and config.validate_reference):
            golden = sanitize_candidate(reference_as_candidate(task), task.top).code
            result = simulate(task, golden, config=config.sandbox, limits=config.sim)
            if not result.passed:
                raise TaskError(f"task {task.id!r}: the reference fails its own testbench "
                                f"({result.failure}): {result.log[-400:]}")
            seconds = result.sim_seconds
        synth = None
        if config.enabled("ppa") and task.reference is not None:
            synth = synthesize(reference_as_candidate(task), task.top, liberty=config.liberty,
                               config=config.sandbox)
            if not synth.ok:
                raise TaskError(f"task {task.id!r}: the reference does not synthesize: {synth.log[-400:]}")
        prepared = _Prepared(seconds, synth)
        _PREP_CACHE[key] = prepared
        return prepared


def score_completion(task: Task, completion: Any, config: RewardConfig | None = None) -> Score:
    """Score one completion for one task. Infrastructure and task faults give ``reward=None``."""
    config = config or RewardConfig()
    try:
        return _score(task, completion, config)
    except InfrastructureError as exc:
        logger.warning("task %s: not scorable, infrastructure fault: %s", task.id, exc)
        return Score.unscorable("infrastructure", str(exc))
    except TaskError as exc:
        logger.warning("task %s: not scorable, task fault: %s", task.id, exc)
        return Score.unscorable("task_error", str(exc))


def _score(task: Task, completion: Any, config: RewardConfig) -> Score:
    timings: dict[str, float] = {}
    components: dict[str, float | None] = {lvl: (0.0 if config.enabled(lvl) else None) for lvl in LEVELS}
    detail: dict[str, Any] = {"timings": timings}

    def done(failure: str | None, passed: bool | None) -> Score:
        total = sum(config.weight(lvl) * (components[lvl] or 0.0) for lvl in LEVELS)
        return Score(round(total, 6), passed, failure, components, detail)

    extraction = extract_verilog(completion, reasoning=config.reasoning)
    if config.enabled("format"):
        components["format"] = extraction.format_score
    if extraction.code is None:
        detail["log"] = extraction.reason
        return done("format", False)
    if not any(config.enabled(lvl) for lvl in ("syntax", "function", "ppa")):
        return done(None, None)
    try:
        sanitized = sanitize_candidate(extraction.code, task.top)
    except Forbidden as exc:
        detail["log"] = str(exc)
        return done("forbidden", False)
    if sanitized.neutralised:
        detail["neutralised"] = list(sanitized.neutralised)

    def standalone() -> bool:
        """Elaborate the candidate alone: it compiles, and reaches nothing outside itself."""
        start = time.monotonic()
        syntax = check_syntax(sanitized.code, task.top, config=config.sandbox, timeout=config.sim.compile_timeout)
        timings["syntax"] = timings.get("syntax", 0.0) + time.monotonic() - start
        if config.enabled("syntax"):
            components["syntax"] = 1.0 if syntax.ok else 0.0
        if not syntax.ok:
            detail["log"] = syntax.log
            detail["failure_stage"] = "standalone"
            detail["standalone_failure"] = syntax.failure
        return syntax.ok

    needs_function = config.enabled("function") or config.enabled("ppa")
    if not needs_function or not task.testbench:
        if not standalone():
            return done(detail["standalone_failure"], False)
        if not needs_function:
            return done(None, None)
    prepared = prepare_task(task, config)
    start = time.monotonic()
    if task.testbench:
        # Simulate first; the standalone elaboration (the gate against hierarchical references and
        # borrowed modules) runs for every candidate that passes and every one that fails to compile,
        # i.e. wherever its answer can change the verdict or the syntax credit.
        timeout = config.sim.run_timeout(prepared.reference_seconds)
        sim = simulate(task, sanitized.code, config=config.sandbox, limits=config.sim,
                       run_timeout=timeout if config.validate_reference else None)
        timings["function"] = time.monotonic() - start
        compiled = sim.failure not in ("syntax", "compile", "elaboration")
        if not compiled or sim.passed:
            if not standalone():
                return done(detail["standalone_failure"], False)
        elif config.enabled("syntax"):
            components["syntax"] = 1.0
        passed, failure, fraction = sim.passed, sim.failure, sim.pass_fraction
        detail["log"] = sim.log
        detail["method"] = "simulation"
    elif task.reference is not None:
        from .equivalence import EquivConfig, check_equivalence

        eq_config = EquivConfig(**{**dict(config.equivalence), "sandbox": config.sandbox})
        eq = check_equivalence(reference_as_candidate(task), sanitized.code, task.top, config=eq_config)
        if eq.verdict == "error":
            if eq.fault == "golden":
                raise TaskError(f"task {task.id!r}: the reference cannot be checked: {eq.reason}")
            if eq.fault != "candidate":
                raise InfrastructureError(f"equivalence check failed: {eq.reason}")
        passed = eq.verdict == "equivalent"
        if passed:
            failure = None
        elif eq.verdict == "interface_mismatch":
            failure = "interface_mismatch"
        elif eq.verdict == "error":
            failure = "elaboration"
        else:
            failure = eq.fault if eq.fault in ("timeout", "compile", "elaboration", "resource") else "mismatch"
        fraction = 1.0 if passed else 0.0
        if eq.passed is not None and eq.total and config.partial_credit and not passed and failure == "mismatch":
            fraction = max(0.0, min(1.0, eq.passed / eq.total))
        detail["log"] = eq.reason or eq.log
        detail["method"] = f"equivalence/{eq.method}"
        detail["counterexample"] = eq.counterexample
        timings["function"] = time.monotonic() - start
    else:
        raise TaskError(f"task {task.id!r} has neither a testbench nor a reference: cannot check function")
    detail["pass_fraction"] = fraction
    if config.enabled("function"):
        components["function"] = fraction if config.partial_credit else (1.0 if passed else 0.0)
    if not passed:
        return done(failure, False)

    if config.enabled("ppa") and prepared.reference_synth is not None:
        start = time.monotonic()
        cand = synthesize(sanitized.code, task.top, liberty=config.liberty, config=config.sandbox)
        timings["ppa"] = time.monotonic() - start
        if cand.ok:
            components["ppa"] = round(ppa_score(cand, prepared.reference_synth), 6)
            detail["ppa"] = {"candidate": cand.figures(), "reference": prepared.reference_synth.figures()}
        else:
            detail["ppa"] = {"error": cand.log[-400:]}
    return done(None, True)


def ppa_only(task: Task, completion: Any, config: RewardConfig) -> tuple[float | None, dict[str, Any]]:
    """PPA component of a completion already known to be functionally correct.

    Returns ``(component, figures)``; ``component`` is ``None`` on an infrastructure or task fault.
    """
    try:
        prepared = prepare_task(task, dataclasses.replace(config, weights={**config.weights, "function": 0.0}))
        extraction = extract_verilog(completion, reasoning=config.reasoning)
        if extraction.code is None or prepared.reference_synth is None:
            return 0.0, {"error": "no design or no reference to compare with"}
        code = sanitize_candidate(extraction.code, task.top).code
        cand = synthesize(code, task.top, liberty=config.liberty, config=config.sandbox)
    except (InfrastructureError, TaskError) as exc:
        return None, {"error": str(exc)}
    except Forbidden as exc:
        return 0.0, {"error": str(exc)}
    if not cand.ok:
        return 0.0, {"error": cand.log[-400:]}
    score = round(ppa_score(cand, prepared.reference_synth), 6)
    return score, {"candidate": cand.figures(), "reference": prepared.reference_synth.figures()}
