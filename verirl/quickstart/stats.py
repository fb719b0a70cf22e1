"""Confidence intervals for the quickstart's ablation: across RL seeds (Student t) and across tasks (bootstrap).

Two sources of noise enter a held-out pass@1 difference between two RL arms started from the same SFT checkpoint:
the RL run itself (seed: prompt order, sampled completions) and the finite held-out set. :func:`t_interval` over
the per-seed values covers the first (and, through it, part of the second); :func:`paired_task_bootstrap` resamples
the held-out tasks, keeping every seed's and arm's results on the same resampled tasks, and covers the second.
"""

from __future__ import annotations

import math
import random

#: two-sided 95% quantiles of Student's t distribution, by degrees of freedom
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
         20: 2.086, 25: 2.060, 30: 2.042}


def t_quantile(df: int) -> float:
    if df < 1:
        raise ValueError("a t interval needs at least two values")
    if df in T_975:
        return T_975[df]
    below = max(k for k in T_975 if k <= df)
    return T_975[below] if df <= 30 else 1.96 + 2.4 / df  # within 0.01 of the exact value above 30


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high) of the 95% Student-t interval of the mean; low = high = mean for a single value."""
    n = len(values)
    if n == 0:
        raise ValueError("t_interval of no values")
    mean = sum(values) / n
    if n == 1:
        return mean, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_task_bootstrap(a: list[dict[str, float]], b: list[dict[str, float]], *, reps: int = 2000,
                          seed: int = 0) -> tuple[float, float, float]:
    """95% bootstrap interval of mean_s(A_s) - mean_s(B_s) over held-out tasks.

    ``a`` and ``b`` hold one dict per seed mapping task id to that task's pass rate (pass@1) in arm A and B. Each
    replicate draws the task ids with replacement once and evaluates every seed of both arms on that same draw,
    so the interval reflects which tasks happen to be in the held-out set, not seed-to-seed variation.
    """
    if not a or not b:
        raise ValueError("paired_task_bootstrap needs at least one seed per arm")
    tasks = sorted(set.intersection(*(set(d) for d in a + b)))
    if not tasks:
        raise ValueError("the arms were evaluated on no common task")

    def diff(sample: list[str]) -> float:
        def mean(runs: list[dict[str, float]]) -> float:
            return sum(sum(r[t] for t in sample) / len(sample) for r in runs) / len(runs)

        return mean(a) - mean(b)

    point = diff(tasks)
    rng = random.Random(seed)
    draws = sorted(diff([rng.choice(tasks) for _ in tasks]) for _ in range(reps))
    return point, draws[int(0.025 * reps)], draws[min(reps - 1, int(0.975 * reps))]
