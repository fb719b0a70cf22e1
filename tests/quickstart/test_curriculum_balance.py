"""Level-balanced RL prompts (data_pipeline.curriculum.balance)."""

from __future__ import annotations

from collections import Counter

import pytest

from data_pipeline.curriculum import CurriculumConfig, generate_curriculum
from data_pipeline.curriculum.balance import balance_levels


def _tasks(counts: dict[int, int]) -> list[dict]:
    return [{"id": f"l{level}_{i}", "metadata": {"level": level}} for level, n in counts.items() for i in range(n)]


def test_every_level_gets_the_same_share_subsampled_or_repeated():
    tasks = _tasks({1: 30, 2: 50, 3: 8, 4: 12})
    out = balance_levels(tasks, 80, seed=3)
    assert Counter(t["metadata"]["level"] for t in out) == {1: 20, 2: 20, 3: 20, 4: 20}
    ids = Counter(t["id"] for t in out)
    # a level with fewer tasks than its quota keeps every task; one with more is subsampled without repeats
    assert {i for i in ids if i.startswith("l3_")} == {f"l3_{i}" for i in range(8)}
    assert {i for i in ids if i.startswith("l4_")} == {f"l4_{i}" for i in range(12)}
    assert all(ids[i] == 1 for i in ids if i.startswith(("l1_", "l2_")))
    # shuffled, not level after level
    assert [t["metadata"]["level"] for t in out[:20]] != [1] * 20


def test_deterministic_in_the_seed_and_only_the_given_tasks():
    tasks = _tasks({1: 9, 2: 4, 3: 6})
    a, b, c = (balance_levels(tasks, 30, seed=s) for s in (5, 5, 6))
    assert [t["id"] for t in a] == [t["id"] for t in b] != [t["id"] for t in c]
    assert {t["id"] for t in a} <= {t["id"] for t in tasks}
    # n that is not a multiple of the levels: the quota rounds down
    assert len(balance_levels(tasks, 31, seed=5)) == 30


def test_a_curriculum_split_balances_and_bad_input_is_named():
    train = generate_curriculum(CurriculumConfig(seed=1, n_train=200, n_test=20))["train"]
    out = balance_levels(train, 200, seed=1)
    assert set(Counter(t["metadata"]["level"] for t in out).values()) == {50}
    assert balance_levels([], 10, seed=0) == []
    with pytest.raises(ValueError, match="'x' has no integer metadata.level"):
        balance_levels([{"id": "x", "metadata": {}}], 10, seed=0)
    with pytest.raises(ValueError, match="at least one per level"):
        balance_levels(_tasks({1: 2, 2: 2, 3: 2}), 2, seed=0)
