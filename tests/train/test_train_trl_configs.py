"""verirl's trainer settings are TRL config subclasses: TRL's keys work, TRL's parser parses them, they serialise and
are saved with the run, and the rewards list stays the single source of weights."""

from __future__ import annotations

import json
import os

import pytest
import torch

from verirl.config import RecipeError, load_recipe, recipe_from_dict
from verirl.train.configs import VerirlDPOConfig, VerirlGRPOConfig, VerirlSFTConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GRPO = {
    "trainer": "grpo", "model_name_or_path": "m", "dataset": "d.jsonl", "output_dir": "/tmp/verirl-test-trl-configs",
    "use_cpu": True, "rewards": [{"name": "format"}, {"name": "simulation"}],
}


def _grpo(**changes):
    return recipe_from_dict({**GRPO, **changes}).training


# ------------------------------------------------------------------------------------------ TRL's own keys


@pytest.mark.parametrize("weights", [[0.25, 2.0], [1.0, 1.0], [0.0, 3.0]])
def test_trl_reward_weights_fill_the_rewards_list(weights):
    config = _grpo(reward_weights=weights)
    assert [spec.weight for spec in config.rewards] == weights == config.reward_weights


def test_reward_weights_that_agree_with_the_list_are_accepted_and_disagreeing_ones_named():
    rewards = [{"name": "format", "weight": 0.1}, {"name": "simulation"}]
    config = _grpo(rewards=rewards, reward_weights=[0.1, 2.0])  # the second has no weight of its own
    assert config.reward_weights == [0.1, 2.0]
    with pytest.raises(RecipeError, match=r"rewards\[0\] \(format\) has weight 0.1 but reward_weights\[0\] is 0.5"):
        _grpo(rewards=rewards, reward_weights=[0.5, 1.0])
    with pytest.raises(RecipeError, match="3 values but `rewards:` lists 2"):
        _grpo(reward_weights=[1.0, 1.0, 1.0])


def test_without_weights_every_reward_weighs_one():
    assert _grpo().reward_weights == [1.0, 1.0]


@pytest.mark.parametrize("changes, mode, fraction", [
    ({"top_entropy_quantile": 0.3}, "batch", 0.3),  # TRL's key alone: TRL's batch gate
    ({"top_entropy_quantile": 0.3, "entropy_gate": {"mode": "per_response"}}, "per_response", 0.3),
    ({"entropy_gate": {"mode": "batch"}}, "batch", 0.2),
    ({"entropy_gate": {"mode": "per_response", "top_fraction": 0.4}}, "per_response", 0.4),
    ({"entropy_gate": {"mode": "batch", "top_fraction": 0.4}, "top_entropy_quantile": 0.4}, "batch", 0.4),
    ({}, "off", None),
])
def test_top_entropy_quantile_and_the_entropy_gate_are_one_value(changes, mode, fraction):
    config = _grpo(**changes)
    assert config.entropy_gate.mode == mode and config.entropy_gate.top_fraction == fraction
    assert config.top_entropy_quantile == (fraction if fraction is not None else 1.0)


def test_plain_python_configs_need_no_dataset_and_resolve_the_same_way():
    config = VerirlGRPOConfig(output_dir="/tmp/x", use_cpu=True, rewards=[{"name": "format", "weight": 0.5}],
                              top_entropy_quantile=0.25)
    assert config.trainer == "grpo" and config.dataset == ""
    assert config.reward_weights == [0.5] and config.entropy_gate.mode == "batch"
    assert VerirlSFTConfig(output_dir="/tmp/x", use_cpu=True).trainer == "sft"
    with pytest.raises(RecipeError, match="serves dpo"):
        VerirlDPOConfig(output_dir="/tmp/x", use_cpu=True, trainer="sft")
    with pytest.raises(ValueError, match="dynamic_sampling_signal"):
        VerirlGRPOConfig(output_dir="/tmp/x", use_cpu=True, dynamic_sampling_signal="loss")


# ------------------------------------------------------------------------------------------ TRL's parser


def test_trl_parser_reads_a_shipped_recipe_like_load_recipe():
    """``TrlParser((VerirlGRPOConfig, ModelConfig))`` as in an open-r1 script: same config as load_recipe."""
    from trl import ModelConfig, TrlParser

    path = os.path.join(ROOT, "recipes", "tiny", "grpo.yaml")  # no trainer preset: TrlParser applies none
    training, model = TrlParser((VerirlGRPOConfig, ModelConfig)).parse_args_and_config(["--config", path])
    recipe = load_recipe(path)
    assert json.loads(training.to_json_string()) == json.loads(recipe.training.to_json_string())
    assert model.model_name_or_path == recipe.model.model_name_or_path


def test_trl_parser_takes_nested_settings_as_text_on_the_command_line(tmp_path):
    from trl import ModelConfig, TrlParser

    training, _ = TrlParser((VerirlGRPOConfig, ModelConfig)).parse_args_and_config([
        "--output_dir", str(tmp_path), "--use_cpu", "true", "--learning_rate", "1e-5",
        "--rewards", "[{name: format, weight: 0.5}, {name: simulation, kwargs: {partial_credit: true}}]",
        "--entropy_gate", "{mode: per_response, top_fraction: 0.25}",
    ])
    assert training.learning_rate == 1e-5
    assert [(s.name, s.weight) for s in training.rewards] == [("format", 0.5), ("simulation", 1.0)]
    assert training.rewards[1].kwargs == {"partial_credit": True}
    assert training.entropy_gate.mode == "per_response" and training.top_entropy_quantile == 0.25
    with pytest.raises(RecipeError, match="entropy_gate"):
        TrlParser((VerirlGRPOConfig, ModelConfig)).parse_args_and_config(
            ["--output_dir", str(tmp_path), "--use_cpu", "true", "--entropy_gate", "batch"])


@pytest.mark.parametrize("value", ["1e-5", "1.0e-5", 1e-5, "0.00001"])
def test_string_values_are_converted_by_the_field_type(value):
    """TRL's convention: the field's type converts a value given as text (a quoted YAML value, an override)."""
    config = _grpo(learning_rate=value, adaptive_ema="0.25")
    assert config.learning_rate == 1e-5 and isinstance(config.learning_rate, float)
    assert config.adaptive_ema == 0.25


def test_exponent_floats_are_floats_in_training_and_data_recipes(tmp_path):
    from data_pipeline.config import PreferenceConfig, load_build_config

    train = tmp_path / "train.yaml"
    train.write_text("trainer: sft\nmodel_name_or_path: m\ndataset: d.jsonl\nuse_cpu: true\nlearning_rate: 1e-5\n"
                     f"output_dir: {tmp_path / 'o'}\n")
    assert load_recipe(train).training.learning_rate == 1e-5
    data = tmp_path / "prefs.yaml"
    data.write_text("tasks: t.jsonl\noutput: o.jsonl\nmargin: 2.5e-1\nreward: {weights: {format: 1e-1}}\n")
    config = load_build_config(str(data), cls=PreferenceConfig)
    assert config.margin == 0.25 and config.reward == {"weights": {"format": 0.1}}


# ------------------------------------------------------------------------------------------ serialisation


def test_configs_serialise_to_json_and_pickle():
    import pickle

    config = _grpo(entropy_gate={"mode": "per_response"}, dynamic_sampling=True, trainer="dapo")
    as_json = json.loads(config.to_json_string())
    assert as_json["rewards"][0] == {"name": "format", "weight": 1.0, "kwargs": {}}
    assert as_json["entropy_gate"]["mode"] == "per_response" and as_json["dynamic_sampling"] is True
    again = pickle.loads(pickle.dumps(config))
    assert again.rewards == config.rewards and again.entropy_gate == config.entropy_gate


def test_rl_settings_in_other_trainers_are_named():
    for key, value in (("dynamic_sampling", True), ("rewards", [{"name": "format"}]), ("entropy_gate", {})):
        with pytest.raises(RecipeError, match=f"`{key}` applies to grpo/dapo only"):
            recipe_from_dict({"trainer": "sft", "dataset": "d", "use_cpu": True, key: value})


@pytest.mark.slow
def test_python_trainer_from_a_config_saves_its_settings_with_the_checkpoint(tiny_assets, tmp_path):
    """No recipe and no dataset path: a VerirlGRPOConfig built in Python, rewards built from its list, and the
    settings land in training_args.bin next to the sampling state."""
    from datasets import Dataset
    from transformers import AutoTokenizer

    from verirl.train.grpo import STATE_FILE, VerirlGRPOTrainer

    with open(tiny_assets["tasks"], encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh][:8]
    dataset = Dataset.from_list([{"id": r["id"], "top": r["top"], "prompt": [{"role": "user", "content": r["prompt"]}]}
                                 for r in rows])
    config = VerirlGRPOConfig(
        output_dir=str(tmp_path / "run"), use_cpu=True, report_to=[], per_device_train_batch_size=4,
        num_generations=4, max_completion_length=4, max_steps=1, save_strategy="steps", save_steps=1,
        rewards=[{"name": "train_toy_rewards:token_parity_reward", "weight": 0.5}], dynamic_sampling=True,
        dynamic_sampling_signal="total", max_refill_rounds=0, entropy_gate={"mode": "per_response"}, seed=0,
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_assets["model"])
    trainer = VerirlGRPOTrainer(tiny_assets["model"], args=config, train_dataset=dataset, processing_class=tokenizer)
    assert trainer.reward_func_names == ["token_parity_reward"]
    trainer.train()
    checkpoint = tmp_path / "run" / "checkpoint-1"
    saved = torch.load(checkpoint / "training_args.bin", weights_only=False)
    assert isinstance(saved, VerirlGRPOConfig)
    assert saved.dynamic_sampling and saved.entropy_gate.mode == "per_response"
    assert [(s.name, s.weight) for s in saved.rewards] == [("train_toy_rewards:token_parity_reward", 0.5)]
    assert (checkpoint / STATE_FILE).is_file()
    from trl import GRPOConfig

    with pytest.raises(TypeError, match="VerirlGRPOConfig"):
        VerirlGRPOTrainer(tiny_assets["model"], reward_funcs=[lambda **kw: [0.0]],
                          args=GRPOConfig(output_dir=str(tmp_path / "plain"), use_cpu=True),
                          train_dataset=dataset, processing_class=tokenizer)
