"""Scoring completions of benchmark problems through the reward engine.

Each benchmark problem becomes a :class:`rewards.task.Task` with the benchmark's own harness (``verilog-eval``:
the unchanged ``_test.sv`` with ``RefModule``; ``rtllm``: the unchanged ``testbench.v`` plus its data files), so
"pass" means what the benchmark means, hardened the way the reward engine hardens every harness (sanitized
candidate, no early ``$finish`` pass, no hierarchical reads of the reference). The reply is first cut by the run's
extraction rule (:mod:`verirl.eval.extraction`); for VerilogEval the engine's log is then read the way the official
``sv-iv-analyze`` reads it (``analysis="official"``, the default: warnings included, see
:func:`verirl.eval.failures.official_class`).

Scoring is resumable: ``results.jsonl`` is appended (and synced) every few samples, two per worker, and a rerun
reuses every row already scored for the same completion text, task, reward settings, extraction rule and analysis
(rows that were not scorable — infrastructure faults — are scored again).

PPA (``--ppa``) is a separate stage after the verdict: only passing samples are synthesized, against their problem's
reference, so a reference that Yosys refuses (e.g. a latch in an ``always_comb``) is reported for its problem and
changes no verdict, no problem count and no pass@k.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .benchmarks import Benchmark, BenchmarkError, Problem, iter_jsonl
from .extraction import check_rule, extract_code
from .failures import classify, official_class
from .generate import check_sample_row
from .official import official_log

logger = logging.getLogger(__name__)

ANALYSES = {
    "official": "VerilogEval's sv-iv-analyze read on the engine's compile-and-run log: compile errors, the "
                "'no sensitivities' warning and TIMEOUT fail a sample whatever the simulation printed",
    "engine": "the reward engine's verdict alone, as in training (compiler warnings do not fail a sample)",
}
#: what the reward engine's extractor is told: verirl.eval has already cut the reply (no <think> handling there)
EVAL_REASONING = "none"
#: bumped whenever the reading of an engine result changes, so that older rows of results.jsonl are scored again
_ROW_VERSION = 2
#: failures decided before any tool log exists
_NO_TOOL_LOG = ("format", "forbidden", "resource", "infrastructure", "task_error")


def check_analysis(analysis: str | None, benchmark: str) -> str:
    """The analysis for ``benchmark`` (``official`` for VerilogEval, ``engine`` otherwise, unless given)."""
    analysis = analysis or ("official" if benchmark == "verilog-eval-v2" else "engine")
    if analysis not in ANALYSES:
        raise BenchmarkError(f"unknown analysis {analysis!r}; choose one of {', '.join(ANALYSES)}")
    if analysis == "official" and benchmark != "verilog-eval-v2":
        raise BenchmarkError(f"--analysis official reproduces VerilogEval's sv-iv-analyze; {benchmark}'s own flow "
                             "(RTLLM: Synopsys VCS) cannot run here: use --analysis engine (its default)")
    return analysis


def to_task(problem: Problem):
    """The reward-engine task of a benchmark problem."""
    from rewards.task import Task

    return Task(
        id=problem.task_id, prompt=problem.description, top=problem.top, reference=problem.reference,
        testbench=problem.testbench, harness=problem.harness, tb_top=problem.tb_top, files=dict(problem.files),
        metadata=dict(problem.metadata),
    )


@dataclasses.dataclass
class Sample:
    """One completion to score."""

    task_id: str
    sample_index: int
    completion: str
    finish_reason: str | None = None
    """Why generation stopped (``stop``; ``length``: cut at ``--max-tokens``), when the backend said."""
    tokens: int | None = None
    """Length of the completion in tokens, when the backend said."""

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.completion.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def load_completions(path: str, benchmark: Benchmark) -> list[Sample]:
    """Read and validate a completions/samples JSONL file before anything is scored.

    Rows need ``task_id`` and ``completion``; ``sample_index`` is optional (rows of one task are numbered in file
    order), ``finish_reason`` and ``completion_tokens`` too. Every error names the file and line: malformed JSON, missing fields, an unknown
    ``task_id``, a duplicated ``(task_id, sample_index)``.
    """
    if not os.path.isfile(path):
        raise BenchmarkError(f"completions file {path} does not exist")
    samples: list[Sample] = []
    seen: dict[tuple[str, int], int] = {}
    next_index: dict[str, int] = {}
    for lineno, row in iter_jsonl(path):
        check_sample_row(row, path, lineno)
        benchmark.get(row["task_id"], where=f"{path}:{lineno}: ")
        index = row.get("sample_index")
        if index is None:
            index = next_index.get(row["task_id"], 0)
        next_index[row["task_id"]] = max(next_index.get(row["task_id"], 0), index + 1)
        key = (row["task_id"], index)
        if key in seen:
            raise BenchmarkError(f"{path}:{lineno}: sample {index} of {row['task_id']} already appeared on line "
                                 f"{seen[key]}")
        seen[key] = lineno
        reason, tokens = row.get("finish_reason"), row.get("completion_tokens")
        samples.append(Sample(row["task_id"], index, row["completion"], reason if isinstance(reason, str) else None,
                              tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None))
    if not samples:
        raise BenchmarkError(f"completions file {path} holds no rows")
    return samples


def reference_samples(benchmark: Benchmark, problems: Sequence[Problem] | None = None) -> list[Sample]:
    """The benchmark's reference designs as completions (``--check-references``)."""
    problems = list(problems if problems is not None else benchmark.problems.values())
    return [Sample(p.task_id, 0, reference_completion(p)) for p in problems if p.reference]


def reference_completion(problem: Problem) -> str:
    """The benchmark's reference design as a reply (its module renamed to ``top``, in one fenced block): it passes
    when the reference passes its own testbench, under every extraction rule. Used by ``--check-references`` and by
    the validation benchmark."""
    if not problem.reference:
        raise BenchmarkError(f"{problem.task_id} has no reference design")
    code = problem.reference
    if problem.benchmark == "verilog-eval-v2":
        code = re.sub(r"\bRefModule\b", problem.top, code)
    return as_completion(code)


def as_completion(code: str) -> str:
    """``code`` in one ```verilog fenced block."""
    return "```verilog\n" + code.rstrip("\n") + "\n```\n"


def engine_completion(code: str) -> tuple[str, str | None]:
    """(completion for the reward engine, note): ``code`` in one fenced block that the engine's extractor takes back
    unchanged.

    The engine's extractor ends a fenced block at the first three backticks and searches ``<answer>`` first, so
    code holding either would reach the compiler cut differently from what the benchmark's harness compiles (e.g.
    a fence line kept between ``[BEGIN]`` and ``[DONE]``). Such markup is not Verilog; it is replaced by text the
    compiler treats alike: three backticks by three quotes (a syntax error where it stands in code, plain text in a
    comment or string), ``<answer>`` by ``< answer>`` (the same tokens). The note says when that happened.
    """
    from rewards.extract import extract_verilog

    wrapped = as_completion(code)
    taken = extract_verilog(wrapped, reasoning=EVAL_REASONING).code
    if taken is None or taken == code.strip() + "\n":
        return wrapped, None
    neutral = code.replace("```", "'''").replace("<answer>", "< answer>")
    return as_completion(neutral), "markup the engine's extractor cuts at (``` or <answer>) neutralised in the code"


def make_pool(workers: int | None = None, backend: str = "local", reference_check: bool = True):
    """The reward pool used for evaluation: the functional verdict only (see :func:`eval_reward_config`); PPA is
    computed afterwards for passing samples (:func:`eval_ppa_config`, ``score_samples(ppa=...)``)."""
    from rewards.pool import RewardPool

    kwargs = {"backend": backend}
    if workers:
        kwargs["workers"] = workers
    return RewardPool(eval_reward_config(reference_check), **kwargs)


def eval_reward_config(reference_check: bool = True):
    """Reward settings for the functional verdict of evaluation: only the function level counts, all or nothing.

    ``reference_check``: simulate each problem's reference once first, so a reference that fails its own testbench
    is reported as broken (not as the model's failure) and timeouts follow the reference's run time. Without it
    a sample of a broken problem simply fails, and every simulation may run up to the 20 s limit.

    PPA is never part of this config: whether a design (or the reference) synthesizes must not change a verdict,
    the set of problems or pass@k."""
    from rewards.hierarchy import RewardConfig

    return RewardConfig(weights={"format": 0.0, "syntax": 0.0, "function": 1.0, "ppa": 0.0},
                        partial_credit=False, validate_reference=reference_check, reasoning=EVAL_REASONING)


def eval_ppa_config(liberty: str | None = None):
    """Settings of the PPA comparison (``--ppa``): passing designs and the reference are synthesized with Yosys, with
    µm² areas when a Liberty file is given. Used only after the functional verdict is known."""
    from rewards.hierarchy import RewardConfig

    return RewardConfig(weights={"format": 0.0, "syntax": 0.0, "function": 0.0, "ppa": 1.0}, partial_credit=False,
                        liberty=liberty, validate_reference=False, reasoning=EVAL_REASONING)


def default_chunk(pool) -> int:
    """Samples scored between two appends to ``results.jsonl``: two per worker, so an interrupted run loses at most
    the samples that were being scored, and the workers stay busy."""
    return max(4, 2 * int(getattr(pool, "workers", 4) or 4))


def score_samples(benchmark: Benchmark, samples: Sequence[Sample], pool, results_path: str | None = None,
                  chunk_size: int | None = None, progress: Callable[[int, int, int], None] | None = None,
                  extraction: str | None = None, analysis: str | None = None, ppa=None,
                  resumed: Callable[[int, int], None] | None = None) -> list[dict]:
    """Score ``samples`` and return one result row per sample (see :func:`result_row`).

    ``extraction`` and ``analysis`` default to the benchmark's (:data:`verirl.eval.extraction.DEFAULT_RULE`,
    :func:`check_analysis`). With ``results_path``, rows already there for the same completion, task content,
    reward settings, rule and analysis are reused (``resumed(reused, total)`` is told how many), and new rows are
    appended and synced every ``chunk_size`` finished samples (default :func:`default_chunk`), in the order they
    finish, so an interrupted run loses at most the samples in flight. ``progress(done, total, passed)`` follows
    every append. Jobs go to ``pool`` one at a time as its workers free up, those of tasks known to simulate
    longest first, one job per distinct (task, engine input) (:func:`_score_as_completed`).

    ``ppa`` (:func:`eval_ppa_config`): after the verdict, passing samples are synthesized and compared with the
    reference (``row["ppa"]``); a problem whose reference does not synthesize gets ``reference_failed`` in the
    ``ppa`` of its rows. Verdicts never depend on it.
    """
    run = _ScoringRun(benchmark, pool, results_path, chunk_size or default_chunk(pool), progress,
                      check_rule(extraction, benchmark.name), check_analysis(analysis, benchmark.name), ppa)
    todo = run.reuse_previous(samples)
    if resumed:
        resumed(len(run.rows), len(samples))
    run.add_missing_ppa(samples)
    run.score(todo, len(samples))
    return [run.rows[(s.task_id, s.sample_index)] for s in samples]


class _ScoringRun:
    """One :func:`score_samples` call: the rows so far, what each was scored against, and how new rows are saved."""

    def __init__(self, benchmark: Benchmark, pool, results_path: str | None, chunk_size: int,
                 progress: Callable[[int, int, int], None] | None, rule: str, analysis: str, ppa):
        self.benchmark, self.pool, self.results_path = benchmark, pool, results_path
        self.chunk_size, self.progress, self.rule, self.analysis = chunk_size, progress, rule, analysis
        self.rows: dict[tuple[str, int], dict] = {}
        self.tasks: dict[str, object] = {}  # task id → its rewards Task
        self.ppa_stage = _PPAStage(pool, ppa, self.tasks, rule) if ppa is not None else None
        self.done = self.passed = 0
        self._config_fp = getattr(getattr(pool, "config", None), "fingerprint", "")
        self._stamps: dict[str, str] = {}

    def stamp(self, task_id: str) -> str:
        """What a row was scored against: the task's content, the reward settings, the rule and the analysis."""
        if task_id not in self._stamps:
            self.tasks[task_id] = to_task(self.benchmark.problems[task_id])
            key = f"{self.tasks[task_id].fingerprint}:{self._config_fp}:{self.rule}:{self.analysis}:{_ROW_VERSION}"
            self._stamps[task_id] = hashlib.sha256(key.encode()).hexdigest()[:16]
        return self._stamps[task_id]

    def reuse_previous(self, samples: Sequence[Sample]) -> list[Sample]:
        """Take the rows of ``results_path`` scored for the same completion and stamp; return the samples left."""
        previous = _previous_results(self.results_path) if self.results_path else {}
        todo: list[Sample] = []
        for sample in samples:
            old = previous.get((sample.task_id, sample.sample_index))
            if (old is not None and old.get("completion_sha") == sample.digest and old.get("failure") != "unscorable"
                    and old.get("scored_with") == self.stamp(sample.task_id)):
                self.rows[(sample.task_id, sample.sample_index)] = old
                if old.get("failure") == "broken_reference":
                    self.benchmark.known_broken.setdefault(sample.task_id, _first_line(old.get("reason") or ""))
            else:
                todo.append(sample)
        if self.rows:
            logger.info("reusing %d scored samples from %s", len(self.rows), self.results_path)
        self.done = len(self.rows)
        self.passed = sum(1 for r in self.rows.values() if r.get("passed"))
        return todo

    def add_missing_ppa(self, samples: Sequence[Sample]) -> None:
        """Reused rows scored without (or with other) PPA settings get their PPA now."""
        if self.ppa_stage is None:
            return
        stale = [(s, self.rows[(s.task_id, s.sample_index)]) for s in samples if (s.task_id, s.sample_index) in self.rows
                 and self.rows[(s.task_id, s.sample_index)].get("ppa_with") != self.ppa_stage.stamp]
        for start in range(0, len(stale), self.chunk_size):
            part = stale[start:start + self.chunk_size]
            self.ppa_stage.add(self.benchmark, [s for s, _ in part], [r for _, r in part])
            if self.results_path:
                _append(self.results_path, [r for _, r in part])

    def _jobs(self, todo: Sequence[Sample]) -> dict[tuple[str, str], list[tuple[Sample, str, str | None]]]:
        """One job per distinct (task, engine input), with the samples that share it and their cut code."""
        jobs: dict[tuple[str, str], list[tuple[Sample, str, str | None]]] = {}
        for sample in todo:
            self.stamp(sample.task_id)
            code = extract_code(self.benchmark.problems[sample.task_id], self.benchmark.task, sample.completion,
                                self.rule)
            # an empty cut is what the benchmark's harness would compile: nothing (a format failure here)
            completion, note = engine_completion(code) if code.strip() else ("", None)
            jobs.setdefault((sample.task_id, completion), []).append((sample, code, note))
        return jobs

    def score(self, todo: Sequence[Sample], total: int) -> None:
        """Score ``todo``, longest tasks first, saving rows every ``chunk_size`` finished samples."""
        jobs = self._jobs(todo)
        order = _longest_first(list(jobs), self.tasks, getattr(self.pool, "config", None))
        ended = _score_as_completed(self.pool, [(key, (self.tasks[key[0]], key[1])) for key in order])
        pending: list[tuple[Sample, dict]] = []
        with contextlib.closing(ended):  # an interruption here stops the feeders at once
            for (task_id, completion), score in ended:
                for sample, code, note in jobs[(task_id, completion)]:
                    row = result_row(self.benchmark, sample, score, code, self.analysis, note, completion)
                    pending.append((sample, {**row, "scored_with": self.stamp(task_id)}))
                if len(pending) >= self.chunk_size:
                    self._save(pending, total)
                    pending = []
        if pending:
            self._save(pending, total)

    def _save(self, part: list[tuple[Sample, dict]], total: int) -> None:
        if self.ppa_stage is not None:
            self.ppa_stage.add(self.benchmark, [s for s, _ in part], [r for _, r in part])
        for _, row in part:
            self.rows[(row["task_id"], row["sample_index"])] = row
        if self.results_path:
            _append(self.results_path, [r for _, r in part])
        self.done += len(part)
        self.passed += sum(1 for _, r in part if r.get("passed"))
        if self.progress:
            self.progress(self.done, total, self.passed)


def _longest_first(keys: list[tuple[str, str]], tasks: dict, config) -> list[tuple[str, str]]:
    """Jobs of the tasks whose reference is known to simulate longest first (the task facts of
    :func:`rewards.task_checks.expected_seconds`; the rest keep their order): the run then ends when its work is
    done, not when a long job that started last ends alone on one core."""
    if config is None:
        return keys
    from rewards.task_checks import expected_seconds

    cost: dict[str, float] = {}
    for task_id, _ in keys:
        if task_id not in cost:
            try:
                cost[task_id] = expected_seconds(tasks[task_id], config)
            except Exception:  # noqa: BLE001 - ordering is an optimisation: never fail a run for it
                cost[task_id] = 0.0
    return sorted(keys, key=lambda key: -cost[key[0]])


def _score_as_completed(pool, jobs: list[tuple[Any, tuple[object, str]]]) -> Iterator[tuple[Any, object]]:
    """Score the ``(key, (task, completion))`` jobs with ``pool`` and yield ``(key, score)`` as each job ends.

    The pool is kept full: as many feeder threads as it has workers each hand it one job at a time, taken in the
    given order, so no job waits for a slower one of its batch to end (a batch per append would leave cores idle at
    the end of every batch, and start a long job wherever its batch fell). The feeders are daemon threads: a stopped
    run (Ctrl-C) does not wait for them; they take no new job once the caller has stopped reading."""
    if not jobs:
        return
    lock = threading.Lock()
    ended = threading.Event()
    finished: queue.SimpleQueue = queue.SimpleQueue()
    work = iter(jobs)

    def feed() -> None:
        while not ended.is_set():
            with lock:
                job = next(work, None)
            if job is None:
                return
            key, pair = job
            try:
                finished.put((key, pool.score([pair])[0], None))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, which raises it
                finished.put((key, None, exc))
                return

    feeders = [threading.Thread(target=feed, name="verirl-eval-feed", daemon=True)
               for _ in range(max(1, min(len(jobs), int(getattr(pool, "workers", 1) or 1))))]
    try:
        for thread in feeders:
            thread.start()
        for _ in range(len(jobs)):
            key, score, exc = finished.get()
            if exc is not None:
                raise exc
            yield key, score
    finally:
        ended.set()


class _PPAStage:
    """PPA of passing samples against their problem's reference, after (and independent of) the verdict."""

    def __init__(self, pool, config, tasks: dict, rule: str):
        self.pool, self.config, self.tasks, self.rule = pool, config, tasks, rule
        self.stamp = config.fingerprint[:16]
        self.reference: dict[str, str | None] = {}  # task id → why its reference has no PPA figures (None: it has)

    def _check_references(self, task_ids: list[str]) -> None:
        """Synthesize each new problem's reference once (in parallel); remember the problems where it fails."""
        import concurrent.futures as cf

        from rewards.errors import InfrastructureError, TaskError
        from rewards.hierarchy import prepare_task

        def check(task_id: str) -> str | None:
            try:
                prepare_task(self.tasks[task_id], self.config)
            except TaskError as exc:
                return f"the reference does not synthesize: {_first_line(_after_colon(str(exc)))}"
            except InfrastructureError as exc:
                return f"synthesis of the reference could not run (infrastructure): {_first_line(str(exc))}"
            return None

        new = [t for t in dict.fromkeys(task_ids) if t not in self.reference]
        if not new:
            return
        workers = max(1, min(len(new), int(getattr(self.pool, "workers", 2) or 2)))
        with cf.ThreadPoolExecutor(workers) as executor:
            for task_id, why in zip(new, executor.map(check, new)):
                self.reference[task_id] = why

    def add(self, benchmark: Benchmark, samples: Sequence[Sample], rows: list[dict]) -> None:
        self._check_references([s.task_id for s in samples])
        wanted = []
        for sample, row in zip(samples, rows):
            row["ppa_with"] = self.stamp
            row.pop("ppa", None)
            why = self.reference.get(sample.task_id)
            if why is not None:
                row["ppa"] = {"reference_failed": True, "error": why}
            elif row.get("passed"):
                problem = benchmark.problems[sample.task_id]
                code = extract_code(problem, benchmark.task, sample.completion, self.rule)
                wanted.append((row, (self.tasks[sample.task_id], engine_completion(code)[0])))
        if not wanted:
            return
        results = self.pool.map_ppa([pair for _, pair in wanted], self.config)
        for (row, _), (_, figures) in zip(wanted, results):
            row["ppa"] = figures


def _after_colon(text: str) -> str:
    """``task 'X': the reference does not synthesize: LOG`` → ``LOG``."""
    return text.split("does not synthesize:", 1)[-1].strip() or text


def result_row(benchmark: Benchmark, sample: Sample, score, code: str, analysis: str = "engine",
               note: str | None = None, completion: str = "") -> dict:
    """One row of ``results.jsonl``: the verdict under ``analysis`` and its failure class.

    ``code`` is what the extraction rule took (for VerilogEval: the sample file), ``completion`` what the engine
    was given."""
    problem = benchmark.problems[sample.task_id]
    detail = dict(score.detail or {})
    log = detail.get("log") or ""
    reason = detail.get("reason") or ""
    if analysis == "official" and problem.harness == "verilog-eval" and score.failure not in _NO_TOOL_LOG:
        log = official_log(log, problem, sample.sample_index)
        full = _complete_log(problem, sample.sample_index, log, detail.get("compile_log") or "")
        passed, failure = official_class(score.passed, score.failure, full, code)
    else:
        failure = classify(score.failure, reason if score.failure == "task_error" else log, code, score.passed)
        passed = bool(score.passed) if score.passed is not None else None
    if failure == "broken_reference":
        # The benchmark's reference fails its own testbench on this simulator; the official harness fails every
        # candidate of such a problem (it compiles and runs the same files), so the sample counts as failed and
        # the problem is reported as known-broken.
        passed = False
        benchmark.known_broken.setdefault(sample.task_id, _first_line(reason))
    row = {
        "task_id": sample.task_id,
        "sample_index": sample.sample_index,
        "passed": passed,
        "failure": failure,
        "engine_failure": score.failure,
        "reward": score.reward,
        "pass_fraction": detail.get("pass_fraction"),
        "known_broken": sample.task_id in benchmark.known_broken,
        "completion_sha": sample.digest,
        "finish_reason": sample.finish_reason,
        "completion_tokens": sample.tokens,
        "log": log[-2000:],
    }
    if note:
        row["note"] = note
    if failure in ("unscorable", "broken_reference"):
        row["reason"] = reason
    if detail.get("ppa") is not None:
        row["ppa"] = detail["ppa"]
    return row


def _complete_log(problem: Problem, sample_index: int, log: str, compile_log: str) -> str:
    """The engine's log, with the compiler's output in full when the engine kept only its tail.

    The official analysis stops at the first matching line, so a log cut at its head (rewards keeps the last few KB)
    could hide a warning or the first error. The engine also keeps the compiler's output from its beginning
    (``Score.detail["compile_log"]``, the very compile that ran: nothing is compiled again); it goes first.
    """
    if not log.startswith("...\n") or not compile_log:
        return log
    return official_log(compile_log, problem, sample_index) + "\n" + log


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or ["reference fails its own testbench"])[0][:300]


def _previous_results(path: str) -> dict[tuple[str, int], dict]:
    out: dict[tuple[str, int], dict] = {}
    if not os.path.exists(path):
        return out
    for _, row in iter_jsonl(path):
        if "task_id" in row and "sample_index" in row:
            out[(row["task_id"], row["sample_index"])] = row  # later rows win
    return out


def _append(path: str, rows: list[dict]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        fh.flush()
        os.fsync(fh.fileno())


def compact_results(path: str, rows: Sequence[dict]) -> None:
    """Rewrite ``results.jsonl`` with exactly ``rows`` (one per sample, in order) once scoring is complete."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    os.replace(tmp, path)
