"""Every recipe parses; bad recipes fail at parse time with a message that says what to change."""

from __future__ import annotations

import glob
import os

import pytest
import yaml

from verirl.config import RecipeError, load_recipe, parse_overrides, recipe_from_dict

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_RECIPES = sorted(
    p for p in glob.glob(os.path.join(ROOT, "recipes", "**", "*.yaml"), recursive=True)
    if os.sep + "accelerate" + os.sep not in p and os.sep + "data" + os.sep not in p
)
ACCELERATE_CONFIGS = sorted(glob.glob(os.path.join(ROOT, "recipes", "accelerate", "*.yaml")))


def test_recipes_exist_for_every_trainer_in_full_and_lora_form():
    names = {os.path.relpath(p, os.path.join(ROOT, "recipes")) for p in TRAIN_RECIPES}
    for trainer in ("sft", "grpo", "dapo", "dpo"):
        assert f"tiny/{trainer}.yaml" in names
        assert any(n.endswith(f"/{trainer}/config_full.yaml") for n in names)
        assert any(n.endswith(f"/{trainer}/config_lora.yaml") for n in names)


@pytest.mark.parametrize("path", TRAIN_RECIPES, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_recipe_parses(path):
    recipe = load_recipe(path, check_only=True)
    assert recipe.trainer in ("sft", "grpo", "dapo", "dpo")
    assert recipe.model.model_name_or_path
    if recipe.trainer in ("grpo", "dapo"):
        assert recipe.training.reward_weights == [r.weight for r in recipe.training.rewards]
    if "lora" in os.path.basename(path):
        assert recipe.model.use_peft


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=os.path.basename)
def test_accelerate_configs_load(path):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(path)
    assert cfg.num_processes >= 1 or cfg.num_processes == -1  # -1: given by `accelerate launch --num_processes`
    assert cfg.distributed_type is not None


def test_accelerate_configs_cover_the_documented_setups():
    names = {os.path.basename(p) for p in ACCELERATE_CONFIGS}
    assert {"single_gpu.yaml", "ddp.yaml", "zero2.yaml", "zero2_offload.yaml", "zero3.yaml",
            "zero3_offload.yaml", "multi_node.yaml"} <= names


BASE = {
    "trainer": "grpo",
    "model_name_or_path": "m",
    "dataset": "d.jsonl",
    "output_dir": "/tmp/verirl-test-config",
    "use_cpu": True,
    "rewards": [{"name": "format", "weight": 0.3}, {"name": "simulation", "kwargs": {"partial_credit": False}}],
}


def _with(**changes):
    data = dict(BASE)
    data.update(changes)
    return data


def test_rewards_are_the_single_source_of_reward_weights():
    recipe = recipe_from_dict(BASE)
    assert recipe.training.reward_weights == [0.3, 1.0]
    with pytest.raises(RecipeError, match="weight"):
        recipe_from_dict(_with(reward_weights=[1.0, 1.0]))


@pytest.mark.parametrize("changes, message", [
    ({"learning_rat": 1e-5}, "did you mean `learning_rate`"),
    ({"trainer": "ppo"}, "trainer"),
    ({"rewards": [{"name": "simulaton"}]}, "did you mean 'simulation'"),
    ({"rewards": [{"name": "simulation", "kwargs": {"partial_credits": True}}]}, "partial_credit"),
    ({"rewards": [{"name": "simulation", "kwargs": {"workers": "many"}}]}, "does not fit"),
    ({"rewards": [{"name": "simulation", "weights": 2}]}, "kwargs"),
    ({"rewards": []}, "rewards"),
    ({"entropy_gate": {"mode": "tokens"}}, "per_response"),
    ({"entropy_gate": {"mode": "batch", "top_fraction": 1.5}}, "top_fraction"),
    ({"top_entropy_quantile": 0.2, "entropy_gate": {"mode": "batch", "top_fraction": 0.3}}, "one place"),
    ({"reward_weights": [1.0]}, "reward_weights has 1 values"),
    ({"adaptive_sampling": True}, "dynamic_sampling"),
    ({"dynamic_sampling": True, "num_generations": 3, "per_device_train_batch_size": 8}, "divisible|multiple"),
    ({"prompt_template": "{prompt} {oops}"}, "prompt_template"),
    ({"dataset": ""}, "dataset"),
    ({"functional_reward": "nope"}, "functional_reward='nope' names none"),
    ({"dynamic_sampling_signal": "loss"}, "dynamic_sampling_signal"),
    ({"trainer": "dapo", "rewards": [{"name": "format"}]}, "has none: add a `simulation`"),
    ({"eval_split": 0}, "eval_split"),
    ({"eval_split": -0.1}, "eval_split"),
    ({"eval_split": 2.5, "eval_strategy": "steps", "eval_steps": 5}, "whole number"),
    ({"eval_split": 10, "eval_dataset": "e.jsonl"}, "either eval_dataset"),
    ({"eval_split": 10}, "eval_strategy"),
    ({"rewards": [{"name": "overlong", "kwargs": {"max_completion_len": 10, "soft_punish_cache": 2}}]},
     "follows max_completion_length"),
    ({"rewards": [{"name": "overlong", "kwargs": {"soft_punish_cache": 600}}], "max_completion_length": 512},
     "soft_punish_cache"),
])
def test_bad_recipes_fail_at_parse_time(changes, message):
    with pytest.raises(RecipeError, match=message):
        recipe_from_dict(_with(**changes))


def test_rl_fields_are_rejected_in_sft_and_dpo_recipes():
    with pytest.raises(RecipeError, match="grpo/dapo only"):
        recipe_from_dict({"trainer": "sft", "dataset": "d", "use_cpu": True, "dynamic_sampling": True})
    with pytest.raises(RecipeError, match="grpo/dapo only"):
        recipe_from_dict({"trainer": "sft", "dataset": "d", "use_cpu": True, "functional_reward": "simulation"})
    with pytest.raises(RecipeError, match="grpo/dapo only"):
        recipe_from_dict({"trainer": "dpo", "dataset": "d", "use_cpu": True, "dynamic_sampling_signal": "total"})
    with pytest.raises(RecipeError, match="unknown key"):  # a GRPO field in a DPO recipe
        recipe_from_dict({"trainer": "dpo", "dataset": "d", "use_cpu": True, "num_generations": 4})


def test_precedence_defaults_preset_yaml_command_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "trainer: dapo\nmodel_name_or_path: m\ndataset: d.jsonl\nuse_cpu: true\noutput_dir: /tmp/x\n"
        "epsilon_high: 0.3\nlearning_rate: 2e-6\nrewards: [{name: format}, {name: simulation}]\n"
        "entropy_gate: {mode: batch, top_fraction: 0.4}\n"
    )
    recipe = load_recipe(path)
    assert recipe.training.loss_type == "dapo"  # preset
    assert recipe.training.epsilon_high == 0.3  # YAML beats the preset
    assert recipe.training.learning_rate == 2e-6  # `2e-6` read as a float
    assert recipe.training.beta == 0.0  # preset beats the dataclass default
    assert recipe.training.temperature == 1.0  # dataclass default
    assert recipe.training.top_entropy_quantile == 0.4
    recipe = load_recipe(path, ["--epsilon_high", "0.25", "entropy_gate.top_fraction=0.1", "--use_peft",
                                "--loss_type=bnpo"])
    assert recipe.training.epsilon_high == 0.25
    assert recipe.training.entropy_gate.top_fraction == 0.1 and recipe.training.entropy_gate.mode == "batch"
    assert recipe.training.top_entropy_quantile == 0.1
    assert recipe.model.use_peft is True
    assert recipe.training.loss_type == "bnpo"


def test_parse_overrides_forms():
    assert parse_overrides(["--a", "1", "--b=x", "c.d=[1, 2]", "--flag", "--e", "1e-4"]) == {
        "a": 1, "b": "x", "c": {"d": [1, 2]}, "flag": True, "e": 1e-4,
    }
    with pytest.raises(RecipeError):
        parse_overrides(["loose"])


def test_plugin_reward_by_module_path_and_check_of_its_settings():
    recipe = recipe_from_dict(_with(rewards=[{"name": "train_toy_rewards:length_reward"}]))
    assert recipe.training.rewards[0].name.endswith("length_reward")
    with pytest.raises(RecipeError, match="takes no kwargs"):
        recipe_from_dict(_with(rewards=[{"name": "train_toy_rewards:length_reward", "kwargs": {"x": 1}}]))
    with pytest.raises(RecipeError, match="cannot import"):
        recipe_from_dict(_with(rewards=[{"name": "no_such_module_xyz:f"}]))
    with pytest.raises(RecipeError, match="missing required"):
        recipe_from_dict(_with(rewards=[{"name": "overlong", "kwargs": {}}]))


def test_cli_check_reports_errors_with_exit_code(tmp_path, capsys):
    from verirl.cli import main

    # settings only: whether runs/tiny/ was built here is tests/newuser/test_tiny_recipes_as_shipped.py's business
    assert main(["train", "--config", os.path.join(ROOT, "recipes", "tiny", "grpo.yaml"), "--check-settings"]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: grpo\ndataset: d\nuse_cpu: true\nrewards: [{name: nope}]\n")
    assert main(["train", "--config", str(bad), "--check"]) == 2
    assert "unknown reward 'nope'" in capsys.readouterr().err


def test_missing_model_folder_fails_before_loading_anything(tmp_path, capsys):
    from verirl.cli import main

    code = main(["train", "--config", os.path.join(ROOT, "recipes", "tiny", "sft.yaml"),
                 f"model_name_or_path={tmp_path / 'no' / 'model'}", f"output_dir={tmp_path / 'out'}"])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_functional_reward_is_found_by_name_or_default():
    assert recipe_from_dict(BASE).training.functional_index() == 1  # simulation
    eq = _with(rewards=[{"name": "format"}, {"name": "equivalence"}, {"name": "simulation"}])
    assert recipe_from_dict(eq).training.functional_index() == 2  # simulation preferred over equivalence
    plug = _with(rewards=[{"name": "format"}, {"name": "train_toy_rewards:token_parity_reward"}],
                 functional_reward="token_parity_reward")
    assert recipe_from_dict(plug).training.functional_index() == 1
    assert recipe_from_dict(_with(rewards=[{"name": "format"}])).training.functional_index() is None
    # dynamic sampling on the weighted total needs no functional reward
    total = _with(trainer="dapo", rewards=[{"name": "format"}], dynamic_sampling_signal="total")
    assert recipe_from_dict(total).training.dynamic_sampling_signal == "total"


def test_overlong_length_follows_max_completion_length_and_its_overrides(tmp_path):
    data = _with(rewards=[{"name": "simulation"}, {"name": "overlong", "kwargs": {"soft_punish_cache": 8}}],
                 max_completion_length=100)
    assert recipe_from_dict(data).training.rewards[1].kwargs["max_completion_len"] == 100
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    recipe = load_recipe(path, ["--max_completion_length", "64"])
    assert recipe.training.rewards[1].kwargs == {"soft_punish_cache": 8, "max_completion_len": 64}
    # the reward that is built penalises from 64 - 8 tokens on
    from verirl.config import build_rewards

    overlong = build_rewards(recipe.training.rewards[1:])[0]
    assert overlong(completion_ids=[[1] * 56, [1] * 60, [1] * 64]) == [0.0, -0.5, -1.0]


def test_clip_higher_without_several_updates_per_rollout_is_reported(caplog):
    dapo = _with(trainer="dapo")
    with caplog.at_level("WARNING", logger="verirl.config"):
        recipe_from_dict(dapo)
    assert "clip-higher) has no effect" in caplog.text
    for several in ({"steps_per_generation": 2}, {"num_iterations": 2},
                    {"gradient_accumulation_steps": 2, "steps_per_generation": 4}):
        caplog.clear()
        with caplog.at_level("WARNING", logger="verirl.config"):
            recipe_from_dict(_with(trainer="dapo", **several))
        assert "no effect" not in caplog.text, several
    caplog.clear()
    with caplog.at_level("WARNING", logger="verirl.config"):
        recipe_from_dict(_with(trainer="dapo", loss_type="grpo", steps_per_generation=2))
    assert "shrink the step" in caplog.text  # padding dilutes a sequence-mean loss


@pytest.mark.parametrize("save_steps, warned", [(50, True), (48, False), (4, False), (6, True)])
def test_checkpoints_inside_a_rollout_are_reported(caplog, save_steps, warned):
    with caplog.at_level("WARNING", logger="verirl.config"):
        recipe_from_dict(_with(trainer="dapo", steps_per_generation=4, save_strategy="steps", save_steps=save_steps))
    assert ("inside a rollout" in caplog.text) == warned


def test_recipes_build_every_reward_from_the_one_registry():
    from rewards.trl import REWARDS
    from verirl.config import build_rewards

    data = _with(rewards=[{"name": "format"}, {"name": "simulation"},
                          {"name": "overlong", "kwargs": {"soft_punish_cache": 8}}], max_completion_length=64)
    funcs = build_rewards(recipe_from_dict(data).training.rewards)
    assert [type(f) for f in funcs] == [REWARDS["format"], REWARDS["simulation"], REWARDS["overlong"]]
    assert [f.__name__ for f in funcs] == ["format", "simulation", "overlong"]
