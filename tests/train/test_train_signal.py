"""On the trainer: unscorable completions carry no advantage and no loss token, dynamic sampling tests the functional
pass, padding counts in no normaliser, and a window without a loss token makes no optimizer step."""

from __future__ import annotations

import math

import pytest
import torch

from verirl.config import load_recipe

TINY = {"sft": "recipes/tiny/sft.yaml", "grpo": "recipes/tiny/grpo.yaml", "dapo": "recipes/tiny/dapo.yaml"}
ONE_UPDATE = {"steps_per_generation": 1, "num_iterations": 1}  # one generation per step: simple shapes


def _trainer(tiny_assets, tmp_path, trainer, rewards, **overrides):
    from verirl.train import build_trainer

    recipe = load_recipe(TINY[trainer], {
        "model_name_or_path": tiny_assets["model"],
        "dataset": tiny_assets["tasks"],
        "output_dir": str(tmp_path / "out"),
        "rewards": rewards,
        "max_completion_length": 6,
        **overrides,
    })
    built = build_trainer(recipe)
    built.model.train()
    return built


def _first_batch(trainer):
    return next(iter(trainer.get_train_dataloader()))


# format (a real reward of the engine: never None) + a functional reward with one unscorable completion per group
UNSCORABLE_ONE = [{"name": "format", "weight": 0.1},
                  {"name": "train_toy_rewards:pass_unless_first_reward", "weight": 1.0}]
FUNCTIONAL = {"functional_reward": "pass_unless_first_reward"}


@pytest.mark.slow
def test_unscorable_completion_of_an_all_pass_group_gets_no_advantage_and_no_loss_token(tiny_assets, tmp_path):
    trainer = _trainer(tiny_assets, tmp_path, "grpo", UNSCORABLE_ONE, **FUNCTIONAL)
    out = trainer._generate_and_score_completions(_first_batch(trainer))
    g = trainer.num_generations
    assert torch.equal(out["advantages"], torch.zeros_like(out["advantages"]))  # was [-1.5, .5, .5, .5] per group
    first = torch.arange(0, out["completion_mask"].size(0), g)
    assert out["completion_mask"][first].sum() == 0  # the unscorable completion leaves the loss
    others = torch.ones(out["completion_mask"].size(0), dtype=torch.bool)
    others[first] = False
    assert (out["completion_mask"][others].sum(-1) > 0).all()
    assert out["num_items_in_batch"] == out["completion_mask"].sum()
    m = trainer._metrics["train"]
    assert m["unscorable/fraction"][-1] == pytest.approx(1 / g)
    assert m["unscorable/groups_without_baseline"][-1] == 0.0
    # the format reward of the unscorable completion is excluded from its mean as well
    logged = list(trainer._logs["rewards"]["format"])
    assert all(math.isnan(v) for v in logged[::g])


@pytest.mark.slow
@pytest.mark.parametrize("signal", ["pass", "total"])
def test_dynamic_sampling_drops_a_group_whose_scored_completions_all_pass(tiny_assets, tmp_path, signal):
    # with `total`, only the exclusion of the unscorable completion keeps its nan-summed total (0.0 against 1.1)
    # from making the group look informative
    trainer = _trainer(tiny_assets, tmp_path, "dapo", UNSCORABLE_ONE, max_refill_rounds=1, adaptive_sampling=False,
                       dynamic_sampling_signal=signal, **FUNCTIONAL, **ONE_UPDATE)
    out = trainer._generate_and_score_completions(_first_batch(trainer))
    m = trainer._metrics["train"]
    assert m["dynamic_sampling/keep_ratio"][-1] == 0.0  # every group: 3 scored completions, all passing
    assert m["dynamic_sampling/padded_fraction"][-1] == 1.0
    assert m["unscorable/fraction"][-1] == pytest.approx(0.25)
    assert (out["advantages"] == 0).all() and out["num_items_in_batch"] == 0


SHAPING_ONLY = [{"name": "train_toy_rewards:position_reward", "weight": 1.0},  # differs in every group
                {"name": "train_toy_rewards:always_fail_reward", "weight": 1.0}]


@pytest.mark.slow
@pytest.mark.parametrize("signal, kept", [(None, False), ("pass", False), ("functional", False), ("total", True)])
def test_groups_that_differ_only_in_shaping_rewards_are_dropped_by_default(tiny_assets, tmp_path, signal, kept):
    chosen = {} if signal is None else {"dynamic_sampling_signal": signal}  # None: the recipe's default
    trainer = _trainer(tiny_assets, tmp_path, "dapo", SHAPING_ONLY, max_refill_rounds=0, adaptive_sampling=False,
                       functional_reward="always_fail_reward", **chosen, **ONE_UPDATE)
    out = trainer._generate_and_score_completions(_first_batch(trainer))
    m = trainer._metrics["train"]
    assert m["dynamic_sampling/shaping_only_fraction"][-1] == 1.0  # counted whatever the signal
    assert m["dynamic_sampling/keep_ratio"][-1] == float(kept)
    if not kept:
        assert m["dynamic_sampling/padded_fraction"][-1] == 1.0 and out["num_items_in_batch"] == 0
    else:
        assert out["num_items_in_batch"] > 0


@pytest.mark.slow
def test_padding_after_the_last_refill_round_counts_in_no_normaliser(tiny_assets, tmp_path):
    trainer = _trainer(tiny_assets, tmp_path, "dapo", [{"name": "train_toy_rewards:half_informative_reward"}],
                       dynamic_sampling_signal="total", max_refill_rounds=0, adaptive_sampling=False,
                       per_device_train_batch_size=12, num_generations=3, **ONE_UPDATE)
    out = trainer._generate_and_score_completions(_first_batch(trainer))
    m = trainer._metrics["train"]
    padded = m["dynamic_sampling/padded_fraction"][-1]
    assert 0.0 < padded < 1.0, "the seeded first batch should mix informative and uninformative groups"
    rows = out["completion_mask"].sum(-1)
    n_pad = round(padded * 4) * 3
    assert (rows[-n_pad:] == 0).all() and (out["advantages"][-n_pad:] == 0).all()  # filler rows come last
    assert (rows[:-n_pad] > 0).all()
    assert out["num_items_in_batch"] == rows.sum()  # only the kept groups' tokens


@pytest.mark.slow
def test_no_optimizer_step_when_no_token_carries_loss(tiny_assets, tmp_path):
    from verirl.train import train

    before = {k: v.clone() for k, v in _trainer(tiny_assets, tmp_path, "dapo", SHAPING_ONLY,
                                                  functional_reward="always_fail_reward").model.state_dict().items()}
    recipe = load_recipe(TINY["dapo"], {
        "model_name_or_path": tiny_assets["model"], "dataset": tiny_assets["tasks"],
        "output_dir": str(tmp_path / "run"), "rewards": SHAPING_ONLY, "functional_reward": "always_fail_reward",
        "max_completion_length": 6, "max_refill_rounds": 0, "weight_decay": 0.1, "max_steps": 2,
    })
    result = train(recipe, save_final=False)
    trainer = result.trainer
    assert result.global_step == 2
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "an all-padding step moved the weights"
    assert not trainer.optimizer.state, "Adam's moments were updated on an all-padding step"
    skipped = [r["optimizer/skipped_steps"] for r in result.log_history if "optimizer/skipped_steps" in r]
    assert skipped == [1.0, 1.0]


@pytest.mark.slow
@pytest.mark.parametrize("window, runs, skipped", [
    ([True, True], [True, True], 0.0),
    ([False, True], [False, True], 0.0),
    ([True, False], [True, True], 0.0),  # the last micro-batch still runs so that DDP synchronises the gradients
    ([False, False], [False, False], 1.0),
    ([False, False, True, False], [False, False, True, True], 0.0),
])
def test_micro_batches_without_loss_tokens_run_no_backward(tiny_assets, tmp_path, monkeypatch, window, runs,
                                                           skipped):
    from trl import GRPOTrainer

    trainer = _trainer(tiny_assets, tmp_path, "grpo", [{"name": "train_toy_rewards:length_reward"}],
                       gradient_accumulation_steps=len(window))
    trainer.current_gradient_accumulation_steps = len(window)  # set by Trainer's loop
    calls = []
    monkeypatch.setattr(GRPOTrainer, "training_step", lambda self, model, inputs, n: calls.append(inputs) or
                        torch.tensor(1.0))
    for i, has_tokens in enumerate(window):
        mask = torch.ones(2, 3, dtype=torch.long) * int(has_tokens)
        monkeypatch.setattr(trainer, "prepare_batch", lambda batch, mask=mask, i=i: {"completion_mask": mask, "i": i})
        trainer.accelerator.gradient_state._set_sync_gradients(i == len(window) - 1)
        trainer.training_step(trainer.model, i, None)
    assert [i in [c["i"] for c in calls] for i in range(len(window))] == runs
    assert trainer._metrics["train"]["optimizer/skipped_steps"] == [skipped]


def test_engine_rewards_and_the_functional_reward_decide_scorability():
    from rewards.trl import FormatReward, SimulationReward
    from verirl.train.grpo import _scorability_columns

    def plain(prompts, completions, **kw):
        return [0.0] * len(completions)

    assert _scorability_columns([FormatReward(), plain, SimulationReward()], None) == [0, 2]
    assert _scorability_columns([plain, plain], 1) == [1]
    assert _scorability_columns([plain], None) == []


@pytest.mark.slow
def test_groups_without_a_baseline_get_no_advantage_whatever_the_aggregation(tiny_assets, tmp_path):
    # TRL's normalize_then_sum centres on the batch, not the group: a lone scored completion could get an advantage
    from verirl.train.trl_hooks import ScoredRound

    trainer = _trainer(tiny_assets, tmp_path, "grpo", [{"name": "train_toy_rewards:length_reward"}])
    g = trainer.num_generations
    rewards = torch.ones(2 * g, 1)
    rewards[1:4] = float("nan")  # group 0: one scored completion, three unscorable (their rows are all NaN)
    out = {"completion_mask": torch.ones(2 * g, 3, dtype=torch.long), "advantages": torch.arange(1.0, 2 * g + 1)}
    out = trainer._exclude_unscorable(ScoredRound(out, rewards))
    assert out["advantages"].tolist() == [0.0] * g + list(range(g + 1, 2 * g + 1))
    assert out["completion_mask"].sum(-1).tolist() == [3, 0, 0, 0] + [3] * g
    assert out["num_items_in_batch"] == 3 * (g + 1)
