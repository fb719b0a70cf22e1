"""Pass-rate estimation with a model, to drop prompts that give RL no signal.

Each task is attempted ``samples`` times by the configured model; the completions are scored
by :class:`rewards.pool.RewardPool` and the task's ``metadata.difficulty`` becomes
``{pass_rate, samples, model}`` (pass rate over the scorable samples; an infrastructure fault
never counts as a failure). With GRPO-style training a prompt that is always solved or never
solved has zero advantage for every sample, so ``drop_always_solved`` / ``drop_never_solved``
remove them; the counts are returned and logged. Prompts whose samples were all unscorable are
kept with ``pass_rate = None``. The model is sampled on the prompt as the RL recipe renders it
(``system_prompt`` and ``prompt_template``, set them to the recipe's; :mod:`data_pipeline.policy_samples`, the path
``verirl data preferences`` samples with too).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

from .config import DifficultyConfig
from .policy_samples import PolicySampler, map_scored_tasks, parse_task_rows, score_groups


def pass_rate(scores: list) -> float | None:
    scorable = [s for s in scores if s.scorable]
    if not scorable:
        return None
    return sum(1 for s in scorable if s.passed) / len(scorable)


def estimate_difficulty(cfg: DifficultyConfig, *, backend=None, progress: bool | None = None) -> dict:
    """Write the kept tasks with their difficulty to ``cfg.output``; returns counts.

    The model is sampled on each prompt as the RL recipe renders it (``system_prompt``, ``prompt_template``: set
    them to the recipe's). Resumable like :func:`data_pipeline.preferences.build_preferences` (shards under
    ``<output>.shards/``).
    """
    cfg.validate_for_run()
    sampler = PolicySampler(cfg.llm, backend=backend, system_prompt=cfg.system_prompt,
                            prompt_template=cfg.prompt_template)

    def process(index: int, batch: list[dict], pool) -> tuple[list[dict], Counter]:
        tasks, counts = parse_task_rows(batch)
        groups = sampler.sample([row for row, _ in tasks], cfg.samples, cfg.seed + index * 100_003)
        model = sampler.model()
        out: list[dict] = []
        for (row, _), group, scores in zip(tasks, groups, score_groups(pool, tasks, groups)):
            rate = pass_rate(scores)
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
        return out, counts

    fingerprint = json.dumps([dataclasses.asdict(cfg.llm), cfg.samples, cfg.drop_always_solved,
                              cfg.drop_never_solved, cfg.reward, cfg.seed, sampler.rendering],
                             sort_keys=True, default=str)
    return map_scored_tasks(cfg, process, fingerprint=fingerprint, what="difficulty", progress=progress)
