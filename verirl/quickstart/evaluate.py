"""Held-out evaluation of a checkpoint: sample ``n`` completions per task, score them, pass@k.

The SFT and the RL checkpoints are evaluated by the same function with the same :class:`Sampling` (temperature,
top-p, token budget, seed), so the difference between the two is the RL stage's doing. Prompts go through the
model's chat template exactly as in training (a user message, no system prompt).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections import defaultdict

from verirl.eval.passk import pass_at_k

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Sampling:
    n: int
    temperature: float
    max_new_tokens: int
    seed: int
    top_p: float = 1.0
    batch_size: int = 64


def messages(task: dict) -> list[dict]:
    """The conversation a task is sampled with: its prompt as one user message (as in training)."""
    return [{"role": "user", "content": task["prompt"]}]


def generate_texts(model, tokenizer, tasks: list[dict], *, max_new_tokens: int, batch_size: int,
                   temperature: float | None = None, top_p: float = 1.0, n: int = 1, seed: int = 0,
                   progress=None) -> list[list[str]]:
    """``n`` completions of each task from an in-memory model, through :mod:`data_pipeline.llm` (verirl's one
    generation module); ``temperature=None`` decodes greedily.

    ``batch_size`` sequences per ``generate`` call: tasks are batched in the order given (callers put similar tasks
    next to each other so that a batch's longest completion wastes little); each batch is seeded from ``seed`` and
    the caller's random state, the model's training mode and the tokenizer's padding side are left as they were.
    """
    from data_pipeline.llm import GenerationRequest, TransformersBackend

    per_call = max(1, batch_size // n)
    backend = TransformersBackend.from_model(model, tokenizer, max_new_tokens=max_new_tokens,
                                             temperature=temperature or 0.0, top_p=top_p, batch_size=per_call,
                                             device=str(model.device))
    requests = [GenerationRequest(messages(task), n, seed + i) for i, task in enumerate(tasks)]
    out: list[list[str]] = []
    for start in range(0, len(requests), per_call):
        chunk = requests[start:start + per_call]
        out += [[g.text for g in group] for group in backend.complete(chunk)]
        if progress:
            progress(len(chunk) * n)
    return out


def sample_completions(model_dir: str, tasks: list[dict], sampling: Sampling, progress=None) -> list[list[str]]:
    """``sampling.n`` completions per task (plain text of the assistant turn).

    The tasks are generated grouped by family (similar completion lengths share a batch); the result is in the
    order of ``tasks``. The global torch random state is left as it was.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    order = sorted(range(len(tasks)), key=lambda i: (str((tasks[i].get("metadata") or {}).get("family")), i))
    groups = generate_texts(model, tokenizer, [tasks[i] for i in order], max_new_tokens=sampling.max_new_tokens,
                            batch_size=sampling.batch_size, temperature=sampling.temperature, top_p=sampling.top_p,
                            n=sampling.n, seed=sampling.seed, progress=progress)
    out: list[list[str]] = [[] for _ in tasks]
    for rank, i in enumerate(order):
        out[i] = groups[rank]
    return out


def evaluate_checkpoint(model_dir: str, tasks: list[dict], sampling: Sampling, pool, out_path: str,
                        progress=None) -> dict:
    """Sample, score with ``pool`` (a RewardPool), write one JSON line per sample to ``out_path``; return metrics."""
    from rewards.task import Task

    completions = sample_completions(model_dir, tasks, sampling, progress=progress)
    pairs = [(Task.from_dict(task), text) for task, texts in zip(tasks, completions) for text in texts]
    scores = pool.score(pairs)
    rows = []
    for i, (task, text) in enumerate((t, c) for t, cs in zip(tasks, completions) for c in cs):
        score = scores[i]
        meta = task.get("metadata") or {}
        rows.append({"task_id": task["id"], "family": meta.get("family"), "level": meta.get("level"),
                     "sample": i % sampling.n, "completion": text, "passed": bool(score.passed),
                     "reward": score.reward, "failure": score.failure})
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in rows)
    os.replace(tmp, out_path)
    return summarize(rows, sampling)


#: task levels of the clocked designs (counters, shift registers, edge detectors, FSMs)
SEQUENTIAL_LEVELS = ("3", "4")


def per_task_pass_rates(rows: list[dict], levels: tuple[str, ...] | None = None) -> dict[str, float]:
    """task id -> fraction of its samples that passed (its unbiased pass@1); only tasks of ``levels`` if given."""
    per_task: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        if levels is None or str(row["level"]) in levels:
            per_task[row["task_id"]].append(bool(row["passed"]))
    return {task_id: sum(v) / len(v) for task_id, v in per_task.items()}


def summarize(rows: list[dict], sampling: Sampling) -> dict:
    """pass@k (k = 1 and n), pass@1 per family, per level and on levels 3-4, failure classes, mean reward."""
    per_task: dict[str, list[bool]] = defaultdict(list)
    fam_of, level_of = {}, {}
    failures: dict[str, int] = defaultdict(int)
    rewards = []
    for row in rows:
        per_task[row["task_id"]].append(row["passed"])
        fam_of[row["task_id"]], level_of[row["task_id"]] = row["family"], row["level"]
        if not row["passed"]:
            failures[row["failure"] or "unknown"] += 1
        if row["reward"] is not None:
            rewards.append(row["reward"])
    ks = sorted({1, sampling.n})
    out = {"tasks": len(per_task), "samples": len(rows), "sampling": dataclasses.asdict(sampling),
           "mean_reward": sum(rewards) / len(rewards) if rewards else None, "failures": dict(failures)}
    for k in ks:
        out[f"pass@{k}"] = _mean(pass_at_k(len(v), sum(v), k) for v in per_task.values())
    for key, of in (("family", fam_of), ("level", level_of)):
        groups: dict[str, list[float]] = defaultdict(list)
        for task_id, values in per_task.items():
            groups[str(of[task_id])].append(pass_at_k(len(values), sum(values), 1))
        out[f"pass@1_by_{key}"] = {g: _mean(v) for g, v in sorted(groups.items())}
        out[f"tasks_by_{key}"] = {g: len(v) for g, v in sorted(groups.items())}
    sequential = [pass_at_k(len(v), sum(v), 1) for t, v in per_task.items() if str(level_of[t]) in SEQUENTIAL_LEVELS]
    out["pass@1_levels_3_4"] = _mean(sequential) if sequential else None
    out["tasks_levels_3_4"] = len(sequential)
    return out


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
