"""Scoring completions of benchmark problems through the reward engine.

Each benchmark problem becomes a :class:`rewards.task.Task` with the benchmark's own harness (``verilog-eval``:
the unchanged ``_test.sv`` with ``RefModule``; ``rtllm``: the unchanged ``testbench.v`` plus its data files), so
"pass" means what the benchmark means, hardened the way the reward engine hardens every harness (sanitized
candidate, no early ``$finish`` pass, no hierarchical reads of the reference). The reply is first cut by the run's
extraction rule (:mod:`verirl.eval.extraction`); for VerilogEval the engine's log is then read the way the official
``sv-iv-analyze`` reads it (``analysis="official"``, the default: warnings included, see
:func:`verirl.eval.failures.official_class`).

Scoring is resumable: ``results.jsonl`` is appended chunk by chunk, and a rerun reuses every row already scored
for the same completion text, task, reward settings, extraction rule and analysis (rows that were not scorable —
infrastructure faults — are scored again).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Sequence

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


def make_pool(workers: int | None = None, ppa: bool = False, liberty: str | None = None, backend: str = "local",
              reference_check: bool = True):
    """The reward pool used for evaluation (see :func:`eval_reward_config`)."""
    from rewards.pool import RewardPool

    kwargs = {"backend": backend}
    if workers:
        kwargs["workers"] = workers
    return RewardPool(eval_reward_config(ppa, liberty, reference_check), **kwargs)


def eval_reward_config(ppa: bool = False, liberty: str | None = None, reference_check: bool = True):
    """Reward settings for evaluation: only the functional verdict counts; with ``ppa``, passing designs and the
    reference are synthesized too (``score.detail["ppa"]``), with µm² areas when a Liberty file is given.

    ``reference_check``: simulate each problem's reference once first, so a reference that fails its own testbench
    is reported as broken (not as the model's failure) and timeouts follow the reference's run time. Without it
    a sample of a broken problem simply fails, and every simulation may run up to the 20 s limit."""
    from rewards.hierarchy import RewardConfig

    return RewardConfig(weights={"format": 0.0, "syntax": 0.0, "function": 1.0, "ppa": 1.0 if ppa else 0.0},
                        partial_credit=False, liberty=liberty, validate_reference=reference_check,
                        reasoning=EVAL_REASONING)


def score_samples(benchmark: Benchmark, samples: Sequence[Sample], pool, results_path: str | None = None,
                  chunk_size: int = 256, progress: Callable[[int, int], None] | None = None,
                  extraction: str | None = None, analysis: str | None = None) -> list[dict]:
    """Score ``samples`` and return one result row per sample (see :func:`result_row`).

    ``extraction`` and ``analysis`` default to the benchmark's (:data:`verirl.eval.extraction.DEFAULT_RULE`,
    :func:`check_analysis`). With ``results_path``, rows already there for the same completion, task content,
    reward settings, rule and analysis are reused, and new rows are appended after every chunk, so an interrupted
    run loses at most one chunk.
    """
    rule = check_rule(extraction, benchmark.name)
    analysis = check_analysis(analysis, benchmark.name)
    previous = _previous_results(results_path) if results_path else {}
    rows: dict[tuple[str, int], dict] = {}
    todo: list[Sample] = []
    tasks: dict[str, object] = {}
    config_fp = getattr(getattr(pool, "config", None), "fingerprint", "")
    stamps: dict[str, str] = {}

    def stamp(task_id: str) -> str:
        """What a row was scored against: the task's content, the reward settings, the rule and the analysis."""
        if task_id not in stamps:
            tasks[task_id] = to_task(benchmark.problems[task_id])
            key = f"{tasks[task_id].fingerprint}:{config_fp}:{rule}:{analysis}:{_ROW_VERSION}"
            stamps[task_id] = hashlib.sha256(key.encode()).hexdigest()[:16]
        return stamps[task_id]

    for sample in samples:
        old = previous.get((sample.task_id, sample.sample_index))
        if (old is not None and old.get("completion_sha") == sample.digest and old.get("failure") != "unscorable"
                and old.get("scored_with") == stamp(sample.task_id)):
            rows[(sample.task_id, sample.sample_index)] = old
            if old.get("failure") == "broken_reference":
                benchmark.known_broken.setdefault(sample.task_id, _first_line(old.get("reason") or ""))
        else:
            todo.append(sample)
    if rows:
        logger.info("reusing %d scored samples from %s", len(rows), results_path)
    done = len(rows)
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start:start + chunk_size]
        pairs, codes, notes = [], [], []
        for sample in chunk:
            problem = benchmark.problems[sample.task_id]
            stamp(sample.task_id)
            code = extract_code(problem, benchmark.task, sample.completion, rule)
            completion, note = engine_completion(code) if code.strip() else ("", None)
            codes.append(code)
            notes.append(note)
            # an empty cut is what the benchmark's harness would compile: nothing (a format failure here)
            pairs.append((tasks[sample.task_id], completion))
        scores = pool.score(pairs)
        new_rows = [{**result_row(benchmark, s, sc, code, analysis, note, completion),
                     "scored_with": stamp(s.task_id)}
                    for s, sc, code, note, (_, completion) in zip(chunk, scores, codes, notes, pairs)]
        for row in new_rows:
            rows[(row["task_id"], row["sample_index"])] = row
        if results_path:
            _append(results_path, new_rows)
        done += len(chunk)
        if progress:
            progress(done, len(samples))
    return [rows[(s.task_id, s.sample_index)] for s in samples]


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
