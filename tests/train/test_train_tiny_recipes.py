"""Every tiny recipe trains a few steps on CPU with a tiny model built offline; parameters move, metrics are logged."""

from __future__ import annotations

import json
import os

import pytest
import torch
import yaml
from tiny_assets import needs_icarus

from verirl.config import load_recipe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

EXPECTED = {
    "sft": ["loss", "mean_token_accuracy"],
    "dpo": ["loss", "rewards/margins"],
    "grpo": ["reward", "rewards/simulation/mean", "rewards/token_parity_reward/mean", "entropy_gate/fraction",
             "pass_rate/all", "simulation/latency_s", "timing/generation_s", "timing/reward_s",
             "timing/optimization_s", "timing/generation_cpu_s", "timing/reward_cpu_s", "timing/optimization_cpu_s",
             "timing/step_cpu_s", "timing/entropy_gate_cpu_s"],
    "dapo": ["reward", "entropy_gate/fraction", "dynamic_sampling/keep_ratio", "dynamic_sampling/refill_rounds",
             "dynamic_sampling/shaping_only_fraction", "adaptive_sampling/factor", "timing/reward_s",
             "unscorable/fraction", "optimizer/skipped_steps", "clip_ratio/region_mean", "timing/dynamic_sampling_cpu_s",
             "timing/step_cpu_s"],
}


def _state_dict(path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def recipe_overrides(trainer, assets, out_dir):
    overrides = {
        "model_name_or_path": assets["model"],
        "dataset": assets["pairs"] if trainer == "dpo" else assets["tasks"],
        "output_dir": str(out_dir),
    }
    if trainer in ("grpo", "dapo"):
        # the recipe's Verilog rewards stay; the tiny random model scores 0 on them, so a reward that varies
        # within a group is added to guarantee a policy gradient
        with open(os.path.join(ROOT, "recipes", "tiny", f"{trainer}.yaml")) as fh:
            rewards = yaml.safe_load(fh)["rewards"]
        overrides["rewards"] = rewards + [{"name": "train_toy_rewards:token_parity_reward", "weight": 1.0}]
    if trainer == "dapo":
        # dynamic sampling keeps a group when its functional reward is passed by some completions and not others;
        # the random model never passes a simulation, so the varying toy reward stands in as the functional one
        overrides["functional_reward"] = "token_parity_reward"
    return overrides


@pytest.mark.slow
@pytest.mark.parametrize("trainer", [
    "sft", "dpo",
    pytest.param("grpo", marks=[pytest.mark.eda, needs_icarus]),
    pytest.param("dapo", marks=[pytest.mark.eda, needs_icarus]),
])
def test_tiny_recipe_trains(trainer, tiny_assets, tmp_path):
    from verirl.train import train

    out = tmp_path / trainer
    recipe = load_recipe(os.path.join(ROOT, "recipes", "tiny", f"{trainer}.yaml"),
                         recipe_overrides(trainer, tiny_assets, out))
    before = _state_dict(tiny_assets["model"])
    result = train(recipe)
    assert result.global_step == recipe.training.max_steps
    after = _state_dict(str(out))
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "no parameter changed"

    with open(out / "metrics.jsonl") as fh:
        records = [json.loads(line) for line in fh]
    logged = set().union(*records)
    missing = [m for m in EXPECTED[trainer] if m not in logged]
    assert not missing, f"metrics not logged: {missing}; got {sorted(logged)}"
    for r in records:  # TRL's step_time still covers the generation of the step that generated
        if "timing/generation_s" in r and "step_time" in r:
            assert r["step_time"] >= r["timing/generation_s"]
    if trainer == "grpo":
        with open(out / "gated_tokens.jsonl") as fh:
            sample = [json.loads(line) for line in fh]
        assert sample and sample[0]["tokens"] and 0 < sample[0]["fraction"] <= 1


@pytest.mark.slow
@pytest.mark.eda
@needs_icarus
def test_lora_switch_trains_an_adapter(tiny_assets, tmp_path):
    from safetensors.torch import load_file

    from verirl.train import train

    out = tmp_path / "lora"
    overrides = recipe_overrides("grpo", tiny_assets, out)
    overrides.update({"use_peft": True, "lora_r": 4, "lora_alpha": 8, "max_steps": 1, "max_completion_length": 8,
                      "lora_target_modules": ["q_proj", "v_proj"]})
    recipe = load_recipe(os.path.join(ROOT, "recipes", "tiny", "grpo.yaml"), overrides)
    result = train(recipe)
    assert result.global_step == 1
    adapter = load_file(str(out / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # lora_B starts at zero: it moved
    assert not (out / "model.safetensors").exists()  # only the adapter is saved


def _clip_ratios(records):
    return [r["clip_ratio/region_mean"] for r in records if "clip_ratio/region_mean" in r]


@pytest.mark.slow
def test_tiny_dapo_recipe_clips_because_it_updates_several_times_per_rollout(tiny_assets, tmp_path):
    """With several optimizer steps per rollout the policy ratio leaves 1 and clip-higher acts; with one step per
    rollout (TRL's default) the ratio is exactly 1 and clip_ratio is 0 whatever epsilon_high says."""
    from verirl.train import train

    with open(os.path.join(ROOT, "recipes", "tiny", "dapo.yaml")) as fh:
        overlong = [r for r in yaml.safe_load(fh)["rewards"] if r["name"] == "overlong"]
    base = {
        "model_name_or_path": tiny_assets["model"],
        "dataset": tiny_assets["tasks"],
        # no EDA tools needed: format (no tools) + a reward that varies inside groups as the functional one
        "rewards": [{"name": "format", "weight": 0.2}, {"name": "train_toy_rewards:token_parity_reward"}] + overlong,
        "functional_reward": "token_parity_reward",
        "max_completion_length": 16,
    }
    recipe = load_recipe(os.path.join(ROOT, "recipes", "tiny", "dapo.yaml"), {**base, "output_dir": str(tmp_path / "a")})
    t = recipe.training
    assert t.num_iterations * t.steps_per_generation > t.gradient_accumulation_steps
    result = train(recipe, save_final=False)
    clipped = _clip_ratios(result.log_history)
    assert len(clipped) == t.max_steps and max(clipped) > 0.0, clipped
    high = [r["clip_ratio/high_mean"] for r in result.log_history if "clip_ratio/high_mean" in r]
    assert max(high) > 0.0, "epsilon_high never bound"

    one = load_recipe(os.path.join(ROOT, "recipes", "tiny", "dapo.yaml"),
                      {**base, "output_dir": str(tmp_path / "b"), "steps_per_generation": 1, "num_iterations": 1,
                       "max_steps": 2})
    assert _clip_ratios(train(one, save_final=False).log_history) == [0.0] * one.training.max_steps
