"""Level-balanced prompt sets for RL on the curriculum.

A curriculum drawn family by family gives each difficulty level the share its families happen to get (one seed's
1000 training tasks held 174 level-3 tasks, another's 215), and the clocked levels, where SFT leaves the most to
learn, are the smaller part. :func:`balance_levels` gives every level the same number of RL prompts: a level with
more tasks than its quota is subsampled, one with fewer keeps all of its tasks and repeats some, drawn at random.
"""

from __future__ import annotations

import random
from collections import defaultdict

__all__ = ["balance_levels"]


def balance_levels(tasks: list[dict], n: int, seed: int) -> list[dict]:
    """``n // L`` tasks of each of the ``L`` levels in ``tasks`` (``metadata.level``), shuffled; deterministic in
    ``seed`` and the order of ``tasks``.

    Raises ValueError when a task has no level or ``n`` is smaller than the number of levels.
    """
    by_level: dict[int, list[dict]] = defaultdict(list)
    for task in tasks:
        level = (task.get("metadata") or {}).get("level")
        if not isinstance(level, int):  # a task that lacks the field, not a caller's type error
            raise ValueError(  # noqa: TRY004
                f"task {task.get('id')!r} has no integer metadata.level; balance_levels needs one per "
                f"task (curriculum tasks carry it)")
        by_level[level].append(task)
    if not by_level:
        return []
    quota = n // len(by_level)
    if quota < 1:
        raise ValueError(f"cannot balance {len(by_level)} levels into {n} tasks; ask for at least one per level")
    rng = random.Random(seed)
    out: list[dict] = []
    for level in sorted(by_level):
        pool = by_level[level]
        if len(pool) < quota:
            out += pool + [rng.choice(pool) for _ in range(quota - len(pool))]
        else:
            out += rng.sample(pool, quota)
    rng.shuffle(out)
    return out
