"""The one reward registry (rewards.trl.REWARDS): its documentation table, and the length penalty that used to live
in a second registry of verirl's (TRL's factory) before it moved here."""

from __future__ import annotations

import os
import pickle
import re

import pytest

from rewards.errors import ConfigError
from rewards.trl import REWARDS, OverlongReward, build_reward, reward_arguments

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_docs_table_lists_exactly_the_registry():
    with open(os.path.join(ROOT, "docs", "rewards.md"), encoding="utf-8") as fh:
        section = fh.read().split("## TRL reward functions")[1].split("\n## ")[0]
    documented = re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)
    assert sorted(documented) == sorted(REWARDS), "docs/rewards.md's reward table and rewards.trl.REWARDS differ"
    assert len(documented) == len(set(documented))


@pytest.mark.parametrize(("max_len", "cache"), [(64, 8), (100, 1), (16, 15), (32, 0), (4096, 512)])
def test_overlong_matches_trls_soft_overlong_punishment(max_len, cache):
    trl_rewards = pytest.importorskip("trl.rewards", reason="TRL is the reference implementation")
    reference = trl_rewards.get_soft_overlong_punishment(max_completion_len=max_len, soft_punish_cache=cache)
    lengths = sorted({0, 1, max_len - cache - 1, max_len - cache, max_len - cache + 1, max_len - 1, max_len,
                      max_len + 1, 2 * max_len} - {-1})
    ids = [[7] * n for n in lengths]
    ours = build_reward("overlong", max_completion_len=max_len, soft_punish_cache=cache)
    assert ours(completion_ids=ids) == pytest.approx(reference(completion_ids=ids))


def test_overlong_values_and_contract():
    reward = build_reward("overlong", max_completion_len=64, soft_punish_cache=8)
    assert isinstance(reward, OverlongReward) and reward.__name__ == "overlong"  # TRL logs it under this name
    assert reward(prompts=["p"] * 4, completions=["c"] * 4, completion_ids=[[1] * 56, [1] * 57, [1] * 60, [1] * 65],
                  top=["t"] * 4) == [0.0, -0.125, -0.5, -1.0]
    clone = pickle.loads(pickle.dumps(reward))  # reward functions travel to Ray workers and DDP processes
    assert clone(completion_ids=[[1] * 60]) == [-0.5] and clone.__name__ == "overlong"
    with pytest.raises(TypeError, match="completion_ids"):
        reward(prompts=["p"], completions=["c"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_completion_len": 64, "soft_punish_cache": 64}, "soft_punish_cache < max_completion_len"),
    ({"max_completion_len": 64, "soft_punish_cache": -1}, "0 <= soft_punish_cache"),
    ({"max_completion_len": 64.0, "soft_punish_cache": 8}, "whole number"),
    ({"max_completion_len": 64, "soft_punish_cache": True}, "whole number"),
    ({"max_completion_len": 64, "soft_punish_cache": 8, "workers": 2}, "no setting"),
])
def test_overlong_bad_settings_fail_when_built(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build_reward("overlong", **kwargs)


def test_registry_arguments_of_a_reward_without_the_scorer_base():
    assert set(reward_arguments("overlong")) == {"max_completion_len", "soft_punish_cache"}
    assert {"weights", "workers", "partial_credit"} <= set(reward_arguments("hierarchical"))
    with pytest.raises(ConfigError, match="unknown reward 'nope'"):
        reward_arguments("nope")
