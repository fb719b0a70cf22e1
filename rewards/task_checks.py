"""What is checked once per task, not once per completion: the reference's canonical text, its own simulation, its
synthesis.

A task's reference must define ``top``, must pass the canonical-text rules (a reference written with ``$finish``
could never be matched by a candidate), its testbench must compile with it, and, with ``validate_reference``, it must
pass its own testbench: the CPU time of that run sets the candidate's simulation budget. With PPA on, its synthesis
figures are the yardstick. A task that fails any of these is a :class:`~rewards.errors.TaskError` for every
completion (reward ``None``), never the model's fault.

Where these are kept:

* **per process**, in a bounded table of :class:`TaskState` keyed by the task's and the reward settings'
  fingerprints: the verdict, good or bad, is decided once per process (a broken task is not re-run for each of its
  completions);
* **per machine**, in :mod:`rewards.task_facts`: the facts that hold (the reference passes, its CPU time, its
  synthesis figures), and the testbench failures that the task's content decides (the testbench does not compile
  with the reference; the reference's simulation ended on its own with a wrong or missing verdict, or with the
  testbench's own ``TIMEOUT`` line). ``score``, ``eval`` and training reuse them, so a task's reference is simulated
  once per machine. Nothing else is written there (a run stopped by our CPU or memory limits, an infrastructure fault,
  a synthesis failure): the next process checks again.

The reference's own run is skipped whenever its result is known, and also when the first completion scored for a
task *is* the reference (the same canonical text, up to the per-run renaming): that completion's simulation, with
the reference's budget, is the reference's check (:func:`simulation_facts` with ``compiled``).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import threading
from typing import TYPE_CHECKING, Any

from . import lexer, merged_gate, task_facts
from .errors import Forbidden, TaskError
from .sandbox import stage
from .sanitize import Sanitized, sanitize_candidate
from .simulate import Compiled, SimResult, compile_candidate, reference_as_candidate, task_timescale
from .synth import SynthResult, synthesize
from .task import Task

if TYPE_CHECKING:
    from .hierarchy import RewardConfig

MAX_STATES = 4096
"""Tasks remembered per process (least recently used first out): a streamed corpus of one-off tasks stays bounded."""
#: the failure classes of a run that reached the simulator: the reference then fails its own testbench
_RAN = ("mismatch", "timeout", "missing_result", "resource")


@dataclasses.dataclass
class TaskState:
    """What this process knows about one task under one reward configuration."""

    timescale: str
    golden: Sanitized | None = None
    """The reference's canonical text (``None`` without a reference)."""
    error: TaskError | None = None
    """The task is broken (decided once; raised afresh to every caller)."""
    settled: bool = False
    """``error`` is decided by the task's content alone (see :func:`_settled`): it is remembered per machine."""
    simulated: bool = False
    """The testbench facts below are decided."""
    reference_cpu: float | None = None
    """CPU seconds of the reference's own simulation (``None`` when not run: ``validate_reference=False``)."""
    synthesized: bool = False
    synth: SynthResult | None = None
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def check(self) -> None:
        if self.error is not None:
            raise TaskError(str(self.error))  # a fresh exception per caller (threads share the state)


_STATES: collections.OrderedDict[tuple[str, str], TaskState] = collections.OrderedDict()
_GUARD = threading.Lock()


def task_state(task: Task, config: RewardConfig, *, remember: bool = True) -> TaskState:
    """The state of ``task`` under ``config``: its reference canonicalised and checked (in-process, no tool run).

    ``remember=False`` builds a state that is not kept (one-off tasks: nothing grows). Raises :class:`TaskError`
    when the reference does not define ``top`` or uses what candidates may not."""
    key = (task.fingerprint, config.verdict_fingerprint)
    if remember:
        with _GUARD:
            found = _STATES.get(key)
            if found is not None:
                _STATES.move_to_end(key)
    else:
        found = None
    if found is None:
        found = _new_state(task)
        if remember:
            with _GUARD:
                found = _STATES.setdefault(key, found)
                _STATES.move_to_end(key)
                while len(_STATES) > MAX_STATES:
                    _STATES.popitem(last=False)
    found.check()
    return found


def _new_state(task: Task) -> TaskState:
    state = TaskState(task_timescale(task))
    if task.reference is None:
        return state
    golden_text = reference_as_candidate(task)
    names = [n.strip() for n in lexer.module_names(golden_text)]
    if task.top not in names:
        state.error = TaskError(f"task {task.id!r}: the reference does not define module `{task.top}` "
                                f"(it defines {', '.join(names[:8]) or 'no module'})")
        return state
    try:
        state.golden = sanitize_candidate(golden_text, task.top, timescale=state.timescale)
    except Forbidden as exc:
        state.error = TaskError(f"task {task.id!r}: the reference uses a construct candidates may not use, so a "
                                f"candidate written like it could never pass: {exc}")
    return state


def cache_size() -> int:
    """Tasks this process holds a state for."""
    with _GUARD:
        return len(_STATES)


def forget() -> None:
    """Drop every per-process task state and what was read from the tasks' texts (the benchmarks' view of a new
    process; the machine's facts file is not touched)."""
    with _GUARD:
        _STATES.clear()
    lexer.trusted_tokens.cache_clear()
    lexer.unit_names.cache_clear()
    merged_gate.trusted_names.cache_clear()


# ------------------------------------------------------------------------------------------ simulation facts

def _simulation_key(task: Task, config: RewardConfig) -> str:
    limits = config.sandbox.limits
    return task_facts.fact_key("simulation" if config.validate_reference else "testbench-compiles",
                               task.fingerprint, task_facts.tool_identity("iverilog", "vvp"),
                               config.sim.compile_timeout, config.sim.max_timeout, limits.memory_mb,
                               limits.cpu_seconds)


def known_simulation(state: TaskState, task: Task, config: RewardConfig, *, persist: bool = True) -> bool:
    """Whether the testbench facts are decided, looking in the machine's facts file (no tool run)."""
    if state.simulated or state.error is not None:
        return True
    db = task_facts.store() if persist else None
    if db is None:
        return False
    found = db.get(_simulation_key(task, config))
    if found is None:
        return False
    with state.lock:
        if isinstance(found.get("error"), str):
            if not state.simulated and state.error is None:
                state.error, state.settled = TaskError(found["error"]), True
        elif not state.simulated:
            cpu = found.get("reference_cpu")
            state.reference_cpu = float(cpu) if isinstance(cpu, (int, float)) else None
            state.simulated = True
    return True


def expected_seconds(task: Task, config: RewardConfig) -> float:
    """CPU seconds the reference's own simulation took, when this process or the machine's facts file knows it
    (0.0 otherwise): the pool starts the longest jobs first, so that one long simulation does not run alone at the
    end of a batch. No tool runs here."""
    if not task.testbench:
        return 0.0
    with _GUARD:
        state = _STATES.get((task.fingerprint, config.verdict_fingerprint))
    if state is not None and state.simulated:
        return state.reference_cpu or 0.0
    db = task_facts.store()
    found = db.get(_simulation_key(task, config)) if db is not None else None
    cpu = found.get("reference_cpu") if found else None
    return float(cpu) if isinstance(cpu, (int, float)) else 0.0


def simulation_facts(state: TaskState, task: Task, config: RewardConfig, *, compiled: Compiled | None = None,
                     candidate: Sanitized | None = None, persist: bool = True) -> SimResult | None:
    """Decide the testbench facts of ``task`` once (raises :class:`TaskError` for a broken task).

    ``compiled``/``candidate``: the completion being scored, compiled and past both halves of the gate. When its
    canonical text is the reference's and the facts are not known yet, its simulation with the reference's budget
    decides them, and its result is returned (the caller's verdict; no second run). Otherwise ``None``."""
    state.check()
    if known_simulation(state, task, config, persist=persist):
        state.check()
        return None
    with state.lock:
        if not state.simulated and state.error is None:
            result = None
            if compiled is not None and candidate is not None and state.golden is not None \
                    and candidate.shape == state.golden.shape:
                result = _decide_from_candidate(state, task, config, compiled)
            if not state.simulated and state.error is None:
                _decide_from_reference(state, task, config)
            if (state.simulated or state.settled) and persist:
                db = task_facts.store()
                if db is not None:
                    db.put(_simulation_key(task, config), {"reference_cpu": state.reference_cpu} if state.simulated
                           else {"error": str(state.error)})
            state.check()
            return result
    state.check()
    return None


def _decide_from_candidate(state: TaskState, task: Task, config: RewardConfig, compiled: Compiled) -> SimResult | None:
    """The completion is the reference: its run is the reference's check (same text, same testbench)."""
    if not config.validate_reference:
        state.simulated = True  # it compiled with the testbench: the only fact asked for
        return None
    with stage("reference"):
        result = compiled.run(config.sim.max_timeout)
    if result.passed:
        state.reference_cpu = result.sim_cpu_seconds
        state.simulated = True
    elif result.failure in _RAN:
        state.error = _fails_own_testbench(task, result)
        state.settled = _settled(result, config.sim.max_timeout)
    return result


def _decide_from_reference(state: TaskState, task: Task, config: RewardConfig) -> None:
    if state.golden is None:
        state.simulated = True  # nothing to check it against
        return
    with stage("reference"), compile_candidate(task, state.golden.code, config=config.sandbox, limits=config.sim,
                                               trusted=True) as built:
        if built.failure is not None:
            result = built.failure
        elif not config.validate_reference:
            state.simulated = True
            return
        else:
            result = built.run(config.sim.max_timeout)
    if result.failure in ("syntax", "compile", "elaboration"):
        state.error = TaskError(f"task {task.id!r}: the reference fails its own testbench: the testbench does not "
                                f"compile with the reference ({result.failure}): {result.log[-400:]}")
        state.settled = True  # the compiler's verdict on fixed text (a compile past its budget is "timeout")
    elif not result.passed:
        state.error = _fails_own_testbench(task, result)
        state.settled = built.failure is None and _settled(result, config.sim.max_timeout)
    else:
        state.reference_cpu = result.sim_cpu_seconds
        state.simulated = True


def _settled(result: SimResult, budget: float) -> bool:
    """Whether the reference's failed simulation was decided by the task's content: the run ended on its own with a
    wrong or missing verdict, or with the testbench's own ``TIMEOUT`` line well inside its CPU budget. A run our
    limits stopped (the CPU budget, memory, output) may end otherwise on another day: it is not remembered."""
    if result.failure in ("mismatch", "missing_result"):
        return True
    return result.failure == "timeout" and result.sim_cpu_seconds < budget / 2


def _fails_own_testbench(task: Task, result: SimResult) -> TaskError:
    return TaskError(f"task {task.id!r}: the reference fails its own testbench ({result.failure}): "
                     f"{result.log[-400:]}")


# ------------------------------------------------------------------------------------------ synthesis facts

def _synthesis_key(task: Task, config: RewardConfig) -> str:
    liberty = None
    if config.liberty:
        with open(config.liberty, "rb") as fh:
            liberty = hashlib.sha256(fh.read()).hexdigest()
    return task_facts.fact_key("synthesis", task.fingerprint, task_facts.tool_identity("yosys"), liberty,
                               config.sandbox.limits.memory_mb, config.sandbox.limits.cpu_seconds)


def synthesis_facts(state: TaskState, task: Task, config: RewardConfig, *, persist: bool = True) -> SynthResult | None:
    """The reference's synthesis figures (``None`` without a reference); raises :class:`TaskError` when it does
    not synthesize."""
    state.check()
    if state.synthesized:
        return state.synth
    with state.lock:
        if not state.synthesized and state.error is None:
            if state.golden is None:
                state.synthesized = True
            else:
                db = task_facts.store() if persist else None
                key = _synthesis_key(task, config) if db is not None else ""
                found = db.get(key) if db is not None else None
                if found is not None:
                    state.synth = SynthResult(True, **_figures(found))
                    state.synthesized = True
                else:
                    with stage("reference"):
                        synth = synthesize(state.golden.code, task.top, liberty=config.liberty, config=config.sandbox)
                    if not synth.ok:
                        state.error = TaskError(f"task {task.id!r}: the reference does not synthesize: "
                                                f"{synth.log[-400:]}")
                    else:
                        state.synth, state.synthesized = synth, True
                        if db is not None:
                            db.put(key, synth.figures())
    state.check()
    return state.synth


def _figures(found: dict[str, Any]) -> dict[str, Any]:
    return {k: found.get(k) for k in ("cells", "area", "depth")} | {"area_unit": found.get("area_unit") or
                                                                  "transistors"}
