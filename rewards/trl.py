"""Reward functions with TRL's calling convention, and the registry recipes name them by.

Every reward is a picklable callable ``reward(prompts, completions, completion_ids=None,
**columns) -> list[float | None]`` with a ``__name__`` (TRL logs per-reward metrics under
it). Task columns (``id``, ``top``, ``reference``, ``testbench``, ``harness``, ``tb_top``,
``files``) come from the dataset through ``columns``. ``None`` means "not scorable"
(infrastructure or task fault); TRL turns it into NaN and leaves it out of the mean.

A completion whose functional level is not scorable must not be trained as a failure. Plain
TRL drops a completion only when *every* reward is None, and ``format`` (no tools run) or
the ``overlong`` length penalty still score it, so verirl's trainer (``verirl.train.grpo``) masks the
whole row whenever a reward of this module or the recipe's functional reward returns None:
no advantage, no loss token, reported as ``unscorable/fraction``.

Rewards that agree on what their verdicts depend on share one worker pool and one cache of
verdicts per process (:meth:`VerilogReward.pool_key`); each computes its own value from the
shared verdict. Settings that only turn a verdict into a number (``partial_credit``, the level
weights of ``hierarchical``) and execution settings such as ``workers`` do not split it, so a
recipe that lists ``format``, ``syntax``, ``simulation`` and ``hierarchical`` simulates each
completion once; ``ppa`` reuses that simulation and synthesizes only the designs that passed.

This module follows TRL's convention but does not import TRL (``rewards`` stays light).
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ConfigError, TaskError
from .hierarchy import DEFAULT_WEIGHTS, RewardConfig
from .length import check_overlong_settings, soft_overlong_penalty
from .pool import RewardPool, check_backend
from .score import LEVELS, Score
from .task import Task

logger = logging.getLogger(__name__)

TASK_COLUMNS = ("id", "top", "reference", "testbench", "harness", "tb_top", "files")

#: one pool per process for each :meth:`VerilogReward.pool_key`
_POOLS: dict[tuple, RewardPool] = {}
#: the largest ``workers`` / ``cache_size`` any reward of a pool key has asked for (the pool opens with them)
_ASKED: dict[tuple, dict[str, int | None]] = {}
_POOLS_LOCK = threading.Lock()


class VerilogReward:
    """Base class: scores a batch through a shared :class:`~rewards.pool.RewardPool`.

    The scoring settings are :class:`rewards.hierarchy.RewardConfig`'s, in the shape
    :meth:`RewardConfig.from_dict` reads (the ``reward:`` section of data recipes, ``verirl score``), except the
    level weights, which the reward's levels set:

    Args:
        partial_credit: function credit is the fraction of testbench checks passed.
        reasoning: ``none``/``optional``/``required`` ``<think>`` block.
        liberty: Liberty file for µm² area (PPA).
        sim: :class:`rewards.simulate.SimLimits` fields (compile timeout; the simulation's CPU budget, adapted to the
            CPU time of the reference's own simulation: ``min_timeout``, ``timeout_factor``, ``timeout_margin``,
            ``max_timeout``).
        equivalence: settings for the equivalence checker (tasks without a testbench).
        sandbox: :class:`rewards.sandbox.SandboxConfig` fields, e.g. ``{limits: {memory_mb: 2048, cpu_seconds: 60}}``.
        validate_reference: run the reference once per task (a failing reference is a task fault).

    and how the process scores (they never change a score):

    Args:
        workers: parallel scoring jobs per process (default: twice the CPUs of this process).
        backend: ``local`` or ``ray``.
        ray_address: Ray cluster to join (``host:port``; default ``$RAY_ADDRESS``), or ``local`` for a private Ray.
        cache_size: in-memory cache entries.
        cache_path: SQLite file that keeps scores across restarts (resume).
        batch_deadline: seconds after which unfinished completions of a batch are not scorable.
    """

    name = "verilog"
    levels: tuple[str, ...] = ("format", "syntax", "function")

    def __init__(
        self,
        *,
        partial_credit: bool = RewardConfig.partial_credit,
        reasoning: str = RewardConfig.reasoning,
        liberty: str | None = None,
        sim: Mapping[str, Any] | None = None,
        equivalence: Mapping[str, Any] | None = None,
        sandbox: Mapping[str, Any] | None = None,
        validate_reference: bool = RewardConfig.validate_reference,
        workers: int | None = None,
        backend: str = "local",
        ray_address: str | None = None,
        cache_size: int = 16384,
        cache_path: str | None = None,
        batch_deadline: float | None = None,
    ):
        self.settings = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.__name__ = self.name
        try:
            self.config = self._config()
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"reward {self.name!r}: {exc}") from None
        try:
            check_backend(backend, ray_address)
        except ConfigError as exc:
            raise ConfigError(f"reward {self.name!r}: {exc}") from None
        self._ask_for_pool()

    def _config(self, weights: Mapping[str, float] | None = None) -> RewardConfig:
        s = self.settings
        weights = weights or {lvl: (1.0 if lvl in self.levels else 0.0) for lvl in LEVELS}
        for key in ("sim", "equivalence", "sandbox"):
            if s[key] is not None and not isinstance(s[key], Mapping):
                raise TypeError(f"`{key}` must be a mapping of settings, got {s[key]!r}")
        return RewardConfig.from_dict({
            "weights": weights, "partial_credit": s["partial_credit"], "reasoning": s["reasoning"],
            "liberty": s["liberty"], "sim": dict(s["sim"] or {}), "equivalence": dict(s["equivalence"] or {}),
            "sandbox": dict(s["sandbox"] or {}), "validate_reference": s["validate_reference"],
        })

    # pickling: the pool (threads, sqlite) is rebuilt lazily in the receiving process
    def __getstate__(self) -> dict:
        return {"settings": self.settings, "extra": self._extra_state()}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state["settings"], **state["extra"])

    def _extra_state(self) -> dict:
        return {}

    def pool_key(self) -> tuple:
        """What the process's shared pool is keyed by: what its verdicts depend on
        (:attr:`RewardConfig.verdict_fingerprint`: levels on, tool settings and limits), where scoring runs (backend,
        cluster) and where verdicts persist (cache file). Rewards that agree on these share one pool — a recipe's
        ``syntax``, ``simulation``, ``hierarchical`` and ``ppa`` simulate each completion once — whatever their value
        settings (``partial_credit``, weights: each reward values the shared verdicts itself) and execution
        settings: ``workers`` and ``cache_size`` are the largest any of them asks for, ``batch_deadline`` applies to
        each reward's own calls."""
        s = self.settings
        return (self.config.verdict_fingerprint, s["backend"], s["ray_address"], s["cache_path"])

    def _ask_for_pool(self) -> None:
        """Record this reward's execution settings for its pool (rewards are built before they first score)."""
        s, key = self.settings, self.pool_key()
        with _POOLS_LOCK:
            asked = _ASKED.setdefault(key, {"workers": None, "cache_size": 0})
            if s["workers"] is not None:
                asked["workers"] = max(asked["workers"] or 0, s["workers"])
            asked["cache_size"] = max(asked["cache_size"], s["cache_size"])
            pool = _POOLS.get(key)
        if pool is not None and s["workers"] is not None and s["workers"] > pool.workers:
            logger.warning("reward %r asks for %d workers but its process's pool already runs with %d",
                           self.name, s["workers"], pool.workers)

    @property
    def pool(self) -> RewardPool:
        s, key = self.settings, self.pool_key()
        with _POOLS_LOCK:
            pool = _POOLS.get(key)
            if pool is None:
                asked = _ASKED.get(key) or {"workers": s["workers"], "cache_size": s["cache_size"]}
                pool = RewardPool(self.config, workers=asked["workers"], backend=s["backend"],
                                  cache_size=asked["cache_size"], cache_path=s["cache_path"],
                                  ray_address=s["ray_address"])
                _POOLS[key] = pool
        return pool

    def score_batch(self, completions: Sequence[Any], columns: Mapping[str, Any]) -> list[Score]:
        tasks = tasks_from_columns(columns, len(completions))
        return self.pool.score(list(zip(tasks, completions)), deadline=self.settings["batch_deadline"],
                               config=self.config)

    def value(self, score: Score) -> float | None:
        return score.reward

    def __call__(self, prompts=None, completions=None, completion_ids=None, **columns) -> list[float | None]:
        if completions is None:
            raise TypeError(f"reward {self.name!r} needs `completions`")
        start = time.monotonic()
        scores = self.score_batch(completions, columns)
        values = [self.value(s) for s in scores]
        log_metrics(columns.get("log_metric"), self.name, scores, time.monotonic() - start)
        return values


class FormatReward(VerilogReward):
    """Format score of the extracted code (1 wrapped, 0.5 bare module, 0 none); no tools run."""

    name = "format"
    levels = ("format",)

    def score_batch(self, completions, columns):
        from .hierarchy import score_completion

        placeholder = Task(id="format", prompt="", top="top")
        return [score_completion(placeholder, c, self.config) for c in completions]

    def value(self, score: Score) -> float | None:
        return score.components["format"] if score.scorable else None


class SyntaxReward(VerilogReward):
    """1.0 when the extracted, sanitized design compiles and elaborates on its own."""

    name = "syntax"
    levels = ("format", "syntax", "function")  # shares the simulation's pool and cache

    def value(self, score: Score) -> float | None:
        return score.components["syntax"] if score.scorable else None


class SimulationReward(VerilogReward):
    """Function level: fraction of testbench checks passed (or equivalence with the reference)."""

    name = "simulation"
    levels = ("format", "syntax", "function")

    def value(self, score: Score) -> float | None:
        return score.components["function"] if score.scorable else None


class EquivalenceReward(VerilogReward):
    """Function level by equivalence against the reference, ignoring any testbench."""

    name = "equivalence"
    levels = ("format", "syntax", "function")

    def score_batch(self, completions, columns):
        tasks = [dataclasses.replace(t, testbench=None) for t in tasks_from_columns(columns, len(completions))]
        for task in tasks:
            if task.reference is None:
                raise TaskError(f"task {task.id!r}: the equivalence reward needs a `reference` column")
        return self.pool.score(list(zip(tasks, completions)), deadline=self.settings["batch_deadline"],
                               config=self.config)

    def value(self, score: Score) -> float | None:
        return score.components["function"] if score.scorable else None


class PPAReward(VerilogReward):
    """Synthesis figures vs the reference, only for functionally correct designs (else 0).

    The functional verdict comes from the shared simulation pool (so listing ``simulation``
    and ``ppa`` in one recipe simulates once); only passing designs are synthesized.
    """

    name = "ppa"
    levels = ("format", "syntax", "function")

    def score_batch(self, completions, columns):
        tasks = tasks_from_columns(columns, len(completions))
        pairs = list(zip(tasks, completions))
        deadline = self.settings["batch_deadline"]
        scores = self.pool.score(pairs, deadline=deadline, config=self.config)
        ppa_config = self._config({lvl: 1.0 for lvl in LEVELS})
        wanted = [i for i, s in enumerate(scores) if s.passed]
        figures = self.pool.map_ppa([pairs[i] for i in wanted], ppa_config, deadline=deadline)
        out = list(scores)
        for i, (component, detail) in zip(wanted, figures):
            score = dataclasses.replace(scores[i], components={**scores[i].components, "ppa": component},
                                        detail={**scores[i].detail, "ppa": detail})
            if component is None:
                score = Score.unscorable("infrastructure", str(detail))
            out[i] = score
        return out

    def value(self, score: Score) -> float | None:
        if not score.scorable:
            return None
        return score.components.get("ppa") or 0.0


class HierarchicalReward(VerilogReward):
    """The total of :mod:`rewards.hierarchy` with its own level weights, in one function."""

    name = "hierarchical"

    def __init__(self, *, weights: Mapping[str, float] | None = None, **kwargs: Any):
        self.weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        unknown = set(self.weights) - set(LEVELS)
        if unknown:
            raise ConfigError(f"reward 'hierarchical': unknown level(s) {sorted(unknown)}; levels: {list(LEVELS)}")
        self.levels = tuple(lvl for lvl in LEVELS if self.weights.get(lvl, 0) > 0)
        super().__init__(**kwargs)

    def _config(self, weights=None) -> RewardConfig:
        return super()._config({lvl: float(self.weights.get(lvl, 0.0)) for lvl in LEVELS})

    def _extra_state(self) -> dict:
        return {"weights": self.weights}

    def value(self, score: Score) -> float | None:
        return score.reward


class OverlongReward:
    """DAPO's soft overlong punishment of the completion's length in tokens (:mod:`rewards.length`); the trainer
    sets ``max_completion_len`` to the recipe's ``max_completion_length``."""

    name = "overlong"

    def __init__(self, *, max_completion_len: int, soft_punish_cache: int):
        check_overlong_settings(max_completion_len, soft_punish_cache)
        self.max_completion_len = max_completion_len
        self.soft_punish_cache = soft_punish_cache
        self.__name__ = self.name

    def __call__(self, prompts=None, completions=None, completion_ids=None, **columns) -> list[float]:
        if completion_ids is None:
            raise TypeError("reward 'overlong' needs `completion_ids` (the completions' tokens, as TRL passes them)")
        return [soft_overlong_penalty(len(ids), self.max_completion_len, self.soft_punish_cache)
                for ids in completion_ids]


#: the one reward registry: name → class, for recipes (training), ``verirl score`` and the docs' table
REWARDS: dict[str, type] = {
    cls.name: cls
    for cls in (FormatReward, SyntaxReward, SimulationReward, EquivalenceReward, PPAReward, HierarchicalReward,
                OverlongReward)
}


def reward_arguments(name: str) -> dict[str, inspect.Parameter]:
    """Keyword arguments a registered reward accepts (for validating recipes at parse time)."""
    if name not in REWARDS:
        raise ConfigError(f"unknown reward {name!r}; known rewards: {', '.join(sorted(REWARDS))}")
    params = {}
    for klass in reversed(inspect.getmro(REWARDS[name])):
        if "__init__" in klass.__dict__ and klass is not object:
            params.update(inspect.signature(klass.__dict__["__init__"]).parameters)
    return {k: p for k, p in params.items() if k != "self" and p.kind == p.KEYWORD_ONLY}


def build_reward(name: str, **kwargs: Any):
    """Build a registered reward by name; unknown names and settings raise :class:`ConfigError`."""
    allowed = reward_arguments(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigError(f"reward {name!r} has no setting(s) {unknown}; its settings are: {sorted(allowed)}")
    return REWARDS[name](**kwargs)


def tasks_from_columns(columns: Mapping[str, Any], n: int) -> list[Task]:
    """Rebuild one :class:`Task` per completion from TRL's per-row dataset columns."""
    if "top" not in columns or ("testbench" not in columns and "reference" not in columns):
        raise TaskError("the dataset needs a `top` column and a `testbench` or `reference` column "
                        "(see docs/architecture.md); got columns: " + ", ".join(sorted(k for k in columns if k not in (
                            "trainer_state", "log_extra", "log_metric"))))
    tasks = []
    for i in range(n):
        row = {k: _at(columns[k], i) for k in TASK_COLUMNS if k in columns}
        row["files"] = _files(row.get("files"))
        row.setdefault("id", f"row{i}")
        row["prompt"] = ""
        tasks.append(Task.from_dict(row))
    return tasks


def _files(value: Any) -> dict[str, str]:
    """Data files of a row: a dict, or JSON text of one. ``datasets`` merges per-row dicts with
    different keys into one struct with ``None`` holes; those holes are not files."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise TaskError("the `files` column must be a dict or JSON text of one {name: content}") from None
    if not isinstance(value, Mapping):
        raise TaskError(f"the `files` column must map file names to contents, got {type(value).__name__}")
    return {str(k): v for k, v in value.items() if v is not None}


def _at(column: Any, i: int) -> Any:
    return column[i] if isinstance(column, (list, tuple)) else column


def log_metrics(log_metric, name: str, scores: Sequence[Score], seconds: float) -> None:
    """Report per-level pass rates, failure classes and latency through TRL's ``log_metric``."""
    if not callable(log_metric) or not scores:
        return
    n = len(scores)
    log_metric(f"{name}/latency_s", seconds)
    scorable = [s for s in scores if s.scorable]
    log_metric(f"{name}/unscorable_frac", 1.0 - len(scorable) / n)
    if not scorable:
        return
    for level in LEVELS:
        values = [s.components.get(level) for s in scorable if s.components.get(level) is not None]
        if values:
            log_metric(f"{name}/{level}_mean", sum(values) / len(values))
    log_metric(f"{name}/pass_rate", sum(1 for s in scorable if s.passed) / len(scorable))
    counts = collections.Counter(s.failure for s in scores if s.failure)
    for failure, count in counts.items():
        log_metric(f"{name}/failure/{failure}", count / n)
