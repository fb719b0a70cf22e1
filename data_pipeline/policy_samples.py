"""Sampling a policy on task prompts and scoring the samples: one path for ``verirl data preferences`` (DPO pairs)
and ``verirl data difficulty`` (pass rates).

Both render a task's prompt as the trainers do (:func:`data_pipeline.prompting.render_prompt` with the recipe's
``system_prompt`` and ``prompt_template``), generate ``n`` completions per prompt with the configured
:mod:`data_pipeline.llm` backend, score every completion of a batch in one :class:`rewards.pool.RewardPool` call, and
write their rows through a resumable :func:`data_pipeline.shards.sharded_map`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator

from .prompting import DEFAULT_TEMPLATE, render_prompt, rendering
from .shards import concatenate, sharded_map

logger = logging.getLogger(__name__)


def iter_tasks(path: str) -> Iterator[dict]:
    """Task rows of a dataset file (.jsonl streamed line by line, .parquet by row group)."""
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        for i in range(pf.num_row_groups):
            yield from pf.read_row_group(i).to_pylist()
        return
    from rewards.task import iter_jsonl

    for _, row in iter_jsonl(path):
        yield row


def parse_task_rows(batch: list[dict]) -> tuple[list[tuple], Counter]:
    """``(row, Task)`` for each usable row; bad rows are logged and counted as ``bad_task``, never raised."""
    from rewards.errors import TaskError
    from rewards.task import Task

    counts: Counter = Counter()
    tasks = []
    for row in batch:
        counts["tasks"] += 1
        try:
            tasks.append((row, Task.from_dict(row)))
        except TaskError as exc:
            logger.warning("skipping bad task row: %s", exc)
            counts["bad_task"] += 1
    return tasks, counts


class PolicySampler:
    """``n`` completions per task prompt from an LLM backend (made from ``llm`` on first use unless given), the
    prompt rendered with ``system_prompt`` / ``prompt_template`` as the trainers render it."""

    def __init__(self, llm=None, *, backend=None, system_prompt: str | None = None,
                 prompt_template: str = DEFAULT_TEMPLATE):
        self.llm = llm
        self.backend = backend
        self.system_prompt = system_prompt
        self.prompt_template = prompt_template

    @property
    def rendering(self) -> dict:
        """The rendering settings (recorded with the samples' products)."""
        return rendering(self.system_prompt, self.prompt_template)

    def conversations(self, rows: list[dict]) -> list[list[dict]]:
        return [render_prompt(row["prompt"], row, system_prompt=self.system_prompt,
                              prompt_template=self.prompt_template) for row in rows]

    def sample(self, rows: list[dict], n: int, seed: int) -> list[list[str]]:
        """``n`` completions for each row's prompt (an empty list for a prompt the backend rejected)."""
        if self.backend is None:
            from .llm import make_backend

            self.backend = make_backend(self.llm)
        groups = self.backend.generate(self.conversations(rows), n=n, seed=seed)
        return [group or [] for group in groups]

    def model(self) -> str | None:
        return self.backend.describe().get("model") if self.backend is not None else None


def score_groups(pool, tasks: list, groups: list[list[str]]) -> list[list]:
    """The reward engine's :class:`~rewards.score.Score` of every completion, grouped like ``groups``; ``tasks``
    are the ``(row, Task)`` pairs of :func:`parse_task_rows`. One pool batch for all of them."""
    flat = iter(pool.score([(task, completion) for (_, task), group in zip(tasks, groups) for completion in group]))
    return [[next(flat) for _ in group] for group in groups]


def map_scored_tasks(cfg, process: Callable, *, fingerprint: str, what: str,
                     progress: bool | None = None) -> dict:
    """Run ``process(index, rows, pool) -> (out_rows, counts)`` over ``cfg.tasks`` in resumable shards of
    ``cfg.batch_size`` (under ``<cfg.output>.shards/``) with one reward pool (``cfg.reward`` settings,
    ``cfg.workers``); the shards' rows are concatenated into ``cfg.output``. Returns the summed counts."""
    from tqdm.auto import tqdm

    from rewards.hierarchy import RewardConfig
    from rewards.pool import RewardPool

    reward_config = RewardConfig.from_dict(cfg.reward) if cfg.reward else RewardConfig()
    bar = tqdm(desc="prompts", unit="prompt", disable=None if progress is None else not progress)

    def shard(index: int, rows: list[dict]):
        out = process(index, rows, pool)
        bar.update(len(rows))
        return out

    with RewardPool(reward_config, workers=cfg.workers) as pool:
        files, counts = sharded_map(iter_tasks(cfg.tasks), cfg.batch_size, cfg.output + ".shards", shard,
                                    fingerprint=fingerprint)
    concatenate(files, cfg.output)
    bar.close()
    logger.info("%s: %s", what, counts)
    return counts
