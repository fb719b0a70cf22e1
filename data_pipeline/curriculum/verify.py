"""Check generated tasks with the reward engine: every golden must pass its own testbench.

The golden is scored as a candidate (in a ```` ```verilog ```` block) through :class:`rewards.pool.RewardPool`, so
the check exercises exactly the path a model's completion takes: extraction, sanitizing, the ``ref_`` renaming of
the reference, simulation and the `` `VERIRL_REPORT`` protocol.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class VerifyReport:
    checked: int
    failed: list[dict]
    """One entry per failing task: ``id``, ``family``, ``failure`` and the start of the log."""

    @property
    def ok(self) -> bool:
        return not self.failed


def golden_completion(task: dict) -> str:
    return f"```verilog\n{task['reference'].strip()}\n```"


def verify_tasks(tasks: Sequence[dict], *, workers: int | None = None, chunk: int = 64,
                 progress: Callable[[int], None] | None = None, pool=None) -> VerifyReport:
    """Score every task's golden against its testbench; ``progress(n)`` is called after each chunk of ``n``."""
    from rewards.hierarchy import RewardConfig
    from rewards.pool import RewardPool
    from rewards.task import Task

    own = pool is None
    pool = pool or RewardPool(RewardConfig(), workers=workers)
    failed = []
    try:
        for start in range(0, len(tasks), chunk):
            part = tasks[start:start + chunk]
            scores = pool.score([(Task.from_dict(t), golden_completion(t)) for t in part])
            for task, score in zip(part, scores):
                if score.passed is not True:
                    failed.append({"id": task["id"], "family": task.get("metadata", {}).get("family"),
                                   "failure": score.failure, "log": str(score.detail.get("log", ""))[:800]})
            if progress:
                progress(len(part))
    finally:
        if own:
            pool.close()
    for item in failed[:5]:
        logger.error("golden of %s (%s) fails its testbench: %s", item["id"], item["family"], item["failure"])
    return VerifyReport(checked=len(tasks), failed=failed)
