"""Pass-rate estimation with a model, to drop prompts that give RL no signal.

Each task is attempted ``samples`` times by the configured model; the completions are scored
by :class:`rewards.pool.RewardPool` and the task's ``metadata.difficulty`` becomes
``{pass_rate, samples, model}`` (pass rate over the scorable samples; an infrastructure fault
never counts as a failure). With GRPO-style training a prompt that is always solved or never
solved has zero advantage for every sample, so ``drop_always_solved`` / ``drop_never_solved``
remove them; the counts are returned and logged. Prompts whose samples were all unscorable are
kept with ``pass_rate = None``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter

from .config import DifficultyConfig
from .preferences import as_messages, iter_tasks, parse_task_rows
from .shards import concatenate, sharded_map

logger = logging.getLogger(__name__)


def pass_rate(scores: list) -> float | None:
    scorable = [s for s in scores if s.scorable]
    if not scorable:
        return None
    return sum(1 for s in scorable if s.passed) / len(scorable)


def estimate_difficulty(cfg: DifficultyConfig, *, backend=None, progress: bool | None = None) -> dict:
    """Write the kept tasks with their difficulty to ``cfg.output``; returns counts.

    Resumable like :func:`data_pipeline.preferences.build_preferences` (shards under ``<output>.shards/``).
    """
    from tqdm.auto import tqdm

    from rewards.hierarchy import RewardConfig
    from rewards.pool import RewardPool

    cfg.validate_for_run()
    reward_config = RewardConfig.from_dict(cfg.reward) if cfg.reward else RewardConfig()
    bar = tqdm(desc="prompts", unit="prompt", disable=None if progress is None else not progress)
    state = {"backend": backend}

    def process(index: int, batch: list[dict]) -> tuple[list[dict], Counter]:
        if state["backend"] is None:
            from .llm import make_backend

            state["backend"] = make_backend(cfg.llm)
        model = state["backend"].describe().get("model")
        tasks, counts = parse_task_rows(batch)
        groups = state["backend"].generate([as_messages(row["prompt"]) for row, _ in tasks], n=cfg.samples,
                                           seed=cfg.seed + index * 100_003)
        groups = [g or [] for g in groups]
        scores = iter(pool.score([(task, c) for (_, task), g in zip(tasks, groups) for c in g]))
        out: list[dict] = []
        for (row, _), group in zip(tasks, groups):
            rate = pass_rate([next(scores) for _ in group])
            metadata = dict(row.get("metadata") or {})
            metadata["difficulty"] = {"pass_rate": rate, "samples": len(group), "model": model}
            row = dict(row, metadata=metadata)
            if rate is None:
                counts["unscorable"] += 1
            elif rate == 1.0 and cfg.drop_always_solved:
                counts["dropped_always_solved"] += 1
                continue
            elif rate == 0.0 and cfg.drop_never_solved:
                counts["dropped_never_solved"] += 1
                continue
            out.append(row)
            counts["kept"] += 1
        bar.update(len(batch))
        return out, counts

    fingerprint = json.dumps([dataclasses.asdict(cfg.llm), cfg.samples, cfg.drop_always_solved,
                              cfg.drop_never_solved, cfg.reward, cfg.seed], sort_keys=True, default=str)
    with RewardPool(reward_config, workers=cfg.workers) as pool:
        files, counts = sharded_map(iter_tasks(cfg.tasks), cfg.batch_size, cfg.output + ".shards", process,
                                    fingerprint=fingerprint)
    concatenate(files, cfg.output)
    bar.close()
    logger.info("difficulty: %s", counts)
    return counts
