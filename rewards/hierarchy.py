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
  with no testbench, equivalence against the reference (1/0); only behind the gate;
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

from . import lexer
from .errors import ConfigError, Forbidden, InfrastructureError, TaskError
from .extract import REASONING_MODES, extract_verilog
from .sandbox import Limits, SandboxConfig
from .sanitize import sanitize_candidate
from .score import LEVELS, Score
from .simulate import SimLimits, reference_as_candidate, simulate, task_timescale
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
    timescale: str = "1ns/1ps"


_PREP_CACHE: dict[tuple[str, str], _Prepared | TaskError] = {}
_PREP_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_PREP_GUARD = threading.Lock()


def prepare_task(task: Task, config: RewardConfig) -> _Prepared:
    """Validate the task once per process (the verdict, good or bad, is cached).

    The reference must define ``top``; the testbench must compile with it; with
    ``validate_reference`` the reference must pass its own testbench, and its simulation time sets
    the candidate's timeout. With PPA enabled, the reference's synthesis figures. Raises
    :class:`TaskError` for a broken task: never the model's fault.
    """
    key = (task.fingerprint, config.fingerprint)
    with _PREP_GUARD:
        lock = _PREP_LOCKS.setdefault(key, threading.Lock())
    with lock:
        if key not in _PREP_CACHE:
            try:
                _PREP_CACHE[key] = _prepare(task, config)
            except TaskError as exc:
                _PREP_CACHE[key] = exc
    cached = _PREP_CACHE[key]
    if isinstance(cached, TaskError):
        raise TaskError(str(cached))  # a fresh exception per caller (threads share the cache)
    return cached


def _prepare(task: Task, config: RewardConfig) -> _Prepared:
    timescale = task_timescale(task)
    golden = None
    if task.reference is not None:
        golden_text = reference_as_candidate(task)
        names = [n.strip() for n in lexer.module_names(golden_text)]
        if task.top not in names:
            raise TaskError(f"task {task.id!r}: the reference does not define module `{task.top}` "
                            f"(it defines {', '.join(names[:8]) or 'no module'})")
        try:
            golden = sanitize_candidate(golden_text, task.top, timescale=timescale).code
        except Forbidden as exc:
            raise TaskError(f"task {task.id!r}: the reference uses a construct candidates may not use, so a "
                            f"candidate written like it could never pass: {exc}") from None
    seconds = None
    if task.testbench and golden is not None and config.enabled("function"):
        result = simulate(task, golden, config=config.sandbox, limits=config.sim, trusted=True,
                          run=config.validate_reference)
        if result.failure in ("syntax", "compile", "elaboration"):
            raise TaskError(f"task {task.id!r}: the reference fails its own testbench: the testbench does not "
                            f"compile with the reference ({result.failure}): {result.log[-400:]}")
        if not result.passed:
            raise TaskError(f"task {task.id!r}: the reference fails its own testbench "
                            f"({result.failure}): {result.log[-400:]}")
        seconds = result.sim_seconds if config.validate_reference else None
    synth = None
    if config.enabled("ppa") and task.reference is not None:
        synth = synthesize(golden or reference_as_candidate(task), task.top, liberty=config.liberty,
                           config=config.sandbox)
        if not synth.ok:
            raise TaskError(f"task {task.id!r}: the reference does not synthesize: {synth.log[-400:]}")
    return _Prepared(seconds, synth, timescale)


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

    def refused(failure: str, log: str) -> Score:
        """A gate failed: no syntax, function or PPA credit, whatever else was measured."""
        for lvl in ("syntax", "function", "ppa"):
            if config.enabled(lvl):
                components[lvl] = 0.0
        detail["log"] = log
        return done(failure, False)

    extraction = extract_verilog(completion, reasoning=config.reasoning)
    if config.enabled("format"):
        components["format"] = extraction.format_score
    if extraction.code is None:
        detail["log"] = extraction.reason
        return done("format", False)
    if not any(config.enabled(lvl) for lvl in ("syntax", "function", "ppa")):
        return done(None, None)
    prepared = prepare_task(task, config)
    start = time.monotonic()
    try:
        # the one canonical text: the gate, the simulator, Yosys and the equivalence checker all read it
        sanitized = sanitize_candidate(extraction.code, task.top, timescale=prepared.timescale)
    except Forbidden as exc:
        timings["canonical"] = time.monotonic() - start
        return refused("forbidden", str(exc))
    timings["canonical"] = time.monotonic() - start
    if sanitized.neutralised:
        detail["neutralised"] = list(sanitized.neutralised)
    code = sanitized.code
    needs_function = config.enabled("function") or config.enabled("ppa")

    # the gate, before any credit: the design elaborates alone, reaching nothing outside itself
    start = time.monotonic()
    gate = check_syntax(code, task.top, config=config.sandbox, timeout=config.sim.compile_timeout,
                        parameters=needs_function and sanitized.parameterised)
    timings["syntax"] = time.monotonic() - start
    if not gate.ok:
        detail["failure_stage"] = "standalone"
        return refused(gate.failure or "elaboration", gate.log)
    if config.enabled("syntax"):
        components["syntax"] = 1.0
    if not needs_function:
        return done(None, None)

    start = time.monotonic()
    if task.testbench:
        timeout = config.sim.run_timeout(prepared.reference_seconds)
        sim = simulate(task, code, config=config.sandbox, limits=config.sim,
                       run_timeout=timeout if config.validate_reference else None, defaults=gate.parameters)
        timings["function"] = time.monotonic() - start
        if sim.failure == "forbidden":  # the second half of the gate (parameter values of the testbench)
            detail["failure_stage"] = "in_context"
            return refused("forbidden", sim.log)
        passed, failure, fraction = sim.passed, sim.failure, sim.pass_fraction
        detail["log"] = sim.log
        detail["method"] = "simulation"
    elif task.reference is not None:
        from .equivalence import EquivConfig, check_equivalence

        eq_config = EquivConfig(**{**dict(config.equivalence), "sandbox": config.sandbox})
        eq = check_equivalence(reference_as_candidate(task), code, task.top, config=eq_config)
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
        cand = synthesize(code, task.top, liberty=config.liberty, config=config.sandbox)
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
        code = sanitize_candidate(extraction.code, task.top, timescale=prepared.timescale).code
        cand = synthesize(code, task.top, liberty=config.liberty, config=config.sandbox)
    except (InfrastructureError, TaskError) as exc:
        return None, {"error": str(exc)}
    except Forbidden as exc:
        return 0.0, {"error": str(exc)}
    if not cand.ok:
        return 0.0, {"error": cand.log[-400:]}
    score = round(ppa_score(cand, prepared.reference_synth), 6)
    return score, {"candidate": cand.figures(), "reference": prepared.reference_synth.figures()}
