"""Recipe errors name the input at fault (a mistyped command-line override is not blamed on the recipe file), and
every reward is logged under the name the recipe gives it (TRL's overlong penalty called itself
soft_overlong_punishment_reward)."""

from __future__ import annotations

import os

import pytest

from rewards.trl import REWARDS
from verirl.config import RecipeError, build_rewards, load_recipe

from .conftest import ROOT

TINY = os.path.join(ROOT, "recipes", "tiny")


@pytest.mark.parametrize("override", [["--learning_rat", "1e-4"], ["learning_rat=1e-4"], {"learning_rat": 1e-4}])
def test_a_mistyped_override_is_blamed_on_the_command_line(override):
    with pytest.raises(RecipeError) as info:
        load_recipe(os.path.join(TINY, "sft.yaml"), override, check_only=True)
    message = str(info.value)
    assert message.startswith("command-line override(s) `learning_rat` (did you mean `learning_rate`?)")
    assert "sft.yaml" not in message


def test_a_typo_in_the_file_is_still_blamed_on_the_file(tmp_path):
    recipe = tmp_path / "r.yaml"
    with open(os.path.join(TINY, "sft.yaml")) as fh:
        recipe.write_text(fh.read() + "learning_rat: 1e-4\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(str(recipe), ["--max_steps", "3"], check_only=True)
    message = str(info.value)
    assert message.startswith(f"recipe {str(recipe)!r} with the overrides max_steps=3: unknown key(s) `learning_rat`")
    assert "command-line override" not in message


def test_a_bad_override_value_names_the_overrides():
    with pytest.raises(RecipeError) as info:
        load_recipe(os.path.join(TINY, "grpo.yaml"), ["entropy_gate.mode=sideways"], check_only=True)
    assert "entropy_gate.mode" in str(info.value) and "with the overrides entropy_gate.mode=" in str(info.value)


def test_every_registry_reward_is_logged_under_its_recipe_name():
    names = sorted(REWARDS)  # the one registry
    assert "overlong" in names
    specs = []
    for name in names:
        kwargs = {"soft_punish_cache": 4} if name == "overlong" else {}
        specs.append({"name": name, "weight": 1.0, "kwargs": kwargs})
    recipe = load_recipe(os.path.join(TINY, "grpo.yaml"), {"rewards": specs, "max_completion_length": 24},
                         check_only=True)
    funcs = build_rewards(recipe.training.rewards)
    assert [f.__name__ for f in funcs] == names


def test_two_overlong_rewards_do_not_share_a_name_by_accident():
    recipe = load_recipe(os.path.join(TINY, "dapo.yaml"), check_only=True)
    first = build_rewards(recipe.training.rewards)
    second = build_rewards(recipe.training.rewards)
    assert [f.__name__ for f in first] == [f.__name__ for f in second] == ["format", "simulation", "overlong"]
