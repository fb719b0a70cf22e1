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

import itertools
import json
import logging
from collections import Counter

from .config import DifficultyConfig
from .preferences import as_messages, iter_tasks
from .shards import atomic_open

logger = logging.getLogger(__name__)


def pass_rate(scores: list) -> float | None:
    scorable = [s for s in scores if s.scorable]
    if not scorable:
        return None
    return sum(1 for s in scorable if s.passed) / len(scorable)


def estimate_difficulty(cfg: DifficultyConfig, *, backend=None, progress: bool | None = None) -> dict:
    """Write the kept tasks with their difficulty to ``cfg.output``; returns counts."""
    from tqdm.auto import tqdm

    from rewards.errors import TaskError
    from rewards.hierarchy import RewardConfig
    from rewards.pool import RewardPool
    from rewards.task import Task

    cfg.validate_for_run()
    if backend is None:
        from .llm import make_backend

        backend = make_backend(cfg.llm)
    model = backend.describe().get("model")
    reward_config = RewardConfig.from_dict(cfg.reward) if cfg.reward else RewardConfig()
    counts: Counter = Counter()
    bar = tqdm(desc="prompts", unit="prompt", disable=None if progress is None else not progress)
    with RewardPool(reward_config, workers=cfg.workers) as pool, atomic_open(cfg.output) as out:
        rows = iter_tasks(cfg.tasks)
        for batch_index in itertools.count():
            batch = list(itertools.islice(rows, cfg.batch_size))
            if not batch:
                break
            tasks = []
            for row in batch:
                counts["tasks"] += 1
                try:
                    tasks.append((row, Task.from_dict(row)))
                except TaskError as exc:
                    logger.warning("skipping bad task row: %s", exc)
                    counts["bad_task"] += 1
            groups = backend.generate([as_messages(row["prompt"]) for row, _ in tasks], n=cfg.samples,
                                      seed=cfg.seed + batch_index * 100_003)
            groups = [g or [] for g in groups]
            scores = iter(pool.score([(task, c) for (_, task), g in zip(tasks, groups) for c in g]))
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
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                counts["kept"] += 1
            bar.update(len(batch))
    bar.close()
    logger.info("difficulty: %s", dict(counts))
    return dict(counts)
