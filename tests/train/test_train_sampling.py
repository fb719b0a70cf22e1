"""Dynamic sampling drops zero-variance groups and refills; the adaptive ratio moves both ways."""

from __future__ import annotations

import math

import pytest
import torch

from verirl.train.sampling import (
    RefillStream,
    SamplingState,
    concat_batches,
    extra_groups,
    group_rewards,
    group_rows,
    informative_groups,
    select_rows,
)


def test_informative_groups_ignores_unscorable_and_needs_two_scores():
    rewards = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [float("nan"), 0.0, 0.0], [float("nan"), float("nan"), 1.0],
                            [0.3, float("nan"), 0.7]])
    assert informative_groups(rewards).tolist() == [False, True, False, False, True]


def test_group_rewards_weights_and_nan_rows():
    per_func = torch.tensor([[1.0, 0.0], [float("nan"), float("nan")], [0.5, 1.0], [0.0, float("nan")]])
    grouped = group_rewards(per_func, torch.tensor([1.0, 2.0]), 2)
    assert grouped.shape == (2, 2)
    assert grouped[0, 0] == 1.0 and math.isnan(grouped[0, 1])
    assert grouped[1].tolist() == [2.5, 0.0]


def test_select_and_concat_repad_prompts_left_and_completions_right():
    a = {"prompt_ids": torch.tensor([[9, 1], [9, 2]]), "prompt_mask": torch.tensor([[0, 1], [0, 1]]),
         "completion_ids": torch.tensor([[5, 9], [6, 7]]), "completion_mask": torch.tensor([[1, 0], [1, 1]]),
         "advantages": torch.tensor([1.0, -1.0]), "num_items_in_batch": torch.tensor(3)}
    b = {"prompt_ids": torch.tensor([[3, 4, 5]]), "prompt_mask": torch.tensor([[1, 1, 1]]),
         "completion_ids": torch.tensor([[8, 8, 8]]), "completion_mask": torch.tensor([[1, 1, 1]]),
         "advantages": torch.tensor([0.5]), "num_items_in_batch": torch.tensor(3)}
    joined = concat_batches([select_rows(a, torch.tensor([1])), select_rows(b, torch.tensor([0]))], pad_token_id=9)
    assert joined["prompt_ids"].tolist() == [[9, 9, 2], [3, 4, 5]]
    assert joined["prompt_mask"].tolist() == [[0, 0, 1], [1, 1, 1]]
    assert joined["completion_ids"].tolist() == [[6, 7, 9], [8, 8, 8]]
    assert joined["completion_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]
    assert joined["advantages"].tolist() == [-1.0, 0.5]
    assert "num_items_in_batch" not in joined  # recomputed by the trainer
    assert group_rows([0, 2], 3).tolist() == [0, 1, 2, 6, 7, 8]


def test_refill_stream_is_disjoint_across_processes_and_resumable():
    state = SamplingState()
    s = RefillStream(10, seed=3, state=state)
    r0 = s.draw(3, rank=0, world=2)
    state_copy = SamplingState.from_dict(state.to_dict())
    s.state.refill_cursor -= 6  # replay the same draw as rank 1
    r1 = s.draw(3, rank=1, world=2)
    assert len(r0) == len(r1) == 3 and not set(r0) & set(r1)
    # a resumed stream with the saved state continues identically
    after = [s.draw(4, 0, 1) for _ in range(3)]
    resumed = RefillStream(10, seed=3, state=state_copy)
    assert [resumed.draw(4, 0, 1) for _ in range(3)] == after
    assert state_copy.refill_epoch >= 1  # wrapped into a new permutation


def test_adaptive_ratio_moves_both_ways():
    state = SamplingState()
    assert state.oversample_factor(4.0) == 1.0
    state.update_keep_ratio(kept=1, generated=4, ema=0.5)  # few informative groups: oversample more
    low = state.oversample_factor(4.0)
    assert low > 1.0
    state.update_keep_ratio(kept=1, generated=10, ema=0.5)
    lower = state.oversample_factor(4.0)
    assert lower > low
    state.update_keep_ratio(kept=8, generated=8, ema=0.5)  # the model improved: the factor comes back down
    assert state.oversample_factor(4.0) < lower
    for _ in range(20):
        state.update_keep_ratio(kept=5, generated=5, ema=0.5)
    assert state.oversample_factor(4.0) == pytest.approx(1.0, abs=1e-3)
    state.update_keep_ratio(kept=0, generated=5, ema=1.0)
    assert state.oversample_factor(4.0) == 4.0  # capped
    assert extra_groups(4, 1.0) == 0 and extra_groups(4, 1.5) == 2 and extra_groups(3, 4.0) == 9


@pytest.mark.slow
def test_dynamic_sampling_drops_uninformative_groups_and_refills(tiny_assets, tmp_path):
    from verirl.config import load_recipe
    from verirl.train import build_trainer

    recipe = load_recipe("recipes/tiny/dapo.yaml", {
        "model_name_or_path": tiny_assets["model"],
        "dataset": tiny_assets["tasks"],
        "output_dir": str(tmp_path / "out"),
        "rewards": [{"name": "train_toy_rewards:half_informative_reward"}],
        "max_completion_length": 8,
        "max_refill_rounds": 3,
        "adaptive_sampling": False,
        "per_device_train_batch_size": 12,
        "num_generations": 3,
    })
    trainer = build_trainer(recipe)
    trainer.model.train()
    batch = next(iter(trainer.get_train_dataloader()))
    ids = [row["id"] for row in batch[::3]]
    uninformative = [i for i in ids if int(i[-1]) % 2 == 0]
    out = trainer._generate_and_score_completions(batch)

    assert out["completion_ids"].shape[0] == 12  # the batch is full again
    m = trainer._metrics["train"]
    kept = m["dynamic_sampling/keep_ratio"][-1]
    assert m["dynamic_sampling/groups_generated"][-1] > 4
    assert uninformative, "the seeded first batch should hold a task with an even id; change the seed"
    assert m["dynamic_sampling/refill_rounds"][-1] >= 1
    assert kept < 1.0
    assert m["dynamic_sampling/padded_fraction"][-1] == 0.0
    adv = out["advantages"].view(-1, 3)
    assert (adv.abs().sum(-1) > 0).all()  # every kept group carries a signal
    assert out["num_items_in_batch"] == out["completion_mask"].sum()
    assert trainer.sampling_state.refill_cursor > 0


@pytest.mark.slow
def test_dynamic_sampling_pads_with_zero_advantage_when_nothing_is_informative(tiny_assets, tmp_path):
    from verirl.config import load_recipe
    from verirl.train import build_trainer

    recipe = load_recipe("recipes/tiny/dapo.yaml", {
        "model_name_or_path": tiny_assets["model"],
        "dataset": tiny_assets["tasks"],
        "output_dir": str(tmp_path / "out"),
        "rewards": [{"name": "train_toy_rewards:constant_reward"}],
        "max_completion_length": 4,
        "max_refill_rounds": 1,
    })
    trainer = build_trainer(recipe)
    trainer.model.train()
    out = trainer._generate_and_score_completions(next(iter(trainer.get_train_dataloader())))
    assert out["completion_ids"].shape[0] == 8
    assert (out["advantages"] == 0).all()
    m = trainer._metrics["train"]
    assert m["dynamic_sampling/keep_ratio"][-1] == 0.0
    assert m["dynamic_sampling/padded_fraction"][-1] == 1.0
    assert trainer.sampling_state.keep_ratio_ema < 1.0
