"""Dynamic sampling drops groups without a signal and refills; the adaptive ratio moves both ways; unscorable
completions are excluded, not failed; padding carries no loss token and an all-padding window makes no step."""

from __future__ import annotations

import math

import pytest
import torch

from verirl.train.sampling import (
    RefillStream,
    SamplingState,
    classify_groups,
    concat_batches,
    extra_groups,
    group_rewards,
    group_rows,
    informative_groups,
    mask_unscorable,
    select_rows,
    total_varies,
)

NAN = float("nan")


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
        "dynamic_sampling_signal": "total",  # no functional reward here: the toy reward's spread is the signal
        "max_completion_length": 8,
        "max_refill_rounds": 3,
        "adaptive_sampling": False,
        "per_device_train_batch_size": 12,
        "steps_per_generation": 1,
        "num_iterations": 1,
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
    # TRL's own reward statistics are appended once per generation round, dropped groups included (docs/training.md)
    assert len(m["reward"]) == len(m["frac_reward_zero_std"]) == m["dynamic_sampling/refill_rounds"][-1] + 1
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
        "dynamic_sampling_signal": "total",
        "max_completion_length": 4,
        "max_refill_rounds": 1,
    })
    trainer = build_trainer(recipe)
    trainer.model.train()
    out = trainer._generate_and_score_completions(next(iter(trainer.get_train_dataloader())))
    assert out["completion_ids"].shape[0] == 8
    assert (out["advantages"] == 0).all()
    # padding keeps the batch shape only: no loss token, nothing in the token normaliser
    assert out["completion_mask"].sum() == 0 and out["num_items_in_batch"] == 0
    m = trainer._metrics["train"]
    assert m["dynamic_sampling/keep_ratio"][-1] == 0.0
    assert m["dynamic_sampling/padded_fraction"][-1] == 1.0
    assert trainer.sampling_state.keep_ratio_ema < 1.0


# ------------------------------------------------------------------------------------------ unscorable rows


def test_mask_unscorable_excludes_the_whole_row_when_a_scorability_column_is_nan():
    # columns: format (never None), simulation (functional), overlong (never None)
    per_func = torch.tensor([[1.0, 1.0, 0.0], [1.0, NAN, -0.5], [NAN, NAN, NAN], [0.5, 0.0, 0.0]])
    masked, unscorable = mask_unscorable(per_func, [1])
    assert unscorable.tolist() == [False, True, True, False]
    assert torch.isnan(masked[1]).all() and torch.isnan(masked[2]).all()
    assert torch.equal(masked[[0, 3]], per_func[[0, 3]])
    assert not torch.isnan(per_func[1, 0])  # the input is not modified
    # without scorability columns only TRL's own rule applies (every reward None)
    assert mask_unscorable(per_func, [])[1].tolist() == [False, False, True, False]
    # two scorability columns: either one unscorable is enough
    assert mask_unscorable(per_func, [0, 1])[1].tolist() == [False, True, True, False]


def test_trl_advantages_of_a_group_with_an_unscorable_completion_are_zero():
    """The issue's example: format + simulation, an all-pass group, one simulation unscorable. nan-summed, TRL would
    see totals [0.1, 1.1, 1.1, 1.1] and give [-1.5, 0.5, 0.5, 0.5]; masked, the three scored completions agree."""
    from trl.trainer.utils import nanstd

    per_func = torch.tensor([[1.0, NAN], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    weights = torch.tensor([0.1, 1.0])

    def trl_advantages(rewards_per_func):  # TRL 1.16's sum_then_normalize with scale_rewards="group"
        unscorable = torch.isnan(rewards_per_func).all(dim=1)
        rewards = (rewards_per_func * weights).nansum(dim=1)
        rewards[unscorable] = torch.nan
        mean = torch.nanmean(rewards.view(-1, 4), dim=1).repeat_interleave(4)
        std = nanstd(rewards.view(-1, 4), dim=1).repeat_interleave(4)
        return torch.nan_to_num((rewards - mean) / (std + 1e-4), nan=0.0)

    assert trl_advantages(per_func)[0] < -1.0  # what happened before: the fault was trained as a failure
    masked, _ = mask_unscorable(per_func, [1])
    assert torch.equal(trl_advantages(masked), torch.zeros(4))
    flags = classify_groups(masked, weights, 4, signal="pass", functional_index=1)
    assert flags.informative.tolist() == [False]


# ------------------------------------------------------------------------------------------ informative groups


def _flags(rows, signal="pass", weights=(0.1, 1.0, 1.0), g=4, functional_index=1):
    per_func = torch.tensor(rows, dtype=torch.float32)
    masked, _ = mask_unscorable(per_func, [functional_index] if functional_index is not None else [])
    return classify_groups(masked, torch.tensor(weights), g, signal=signal, functional_index=functional_index)


# columns: format (shaping), simulation (functional, partial credit), overlong (shaping)
ONE_BARE_MODULE = [[0.5, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]  # only format differs
ONE_OVERLONG = [[1.0, 1.0, -0.4], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]  # all pass, one too long
PARTIAL_ONLY = [[1.0, 0.5, 0.0], [1.0, 0.25, 0.0], [1.0, 0.0, 0.0], [1.0, 0.75, 0.0]]  # nobody passes
MIXED = [[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.5, 0.0], [1.0, 1.0, 0.0]]  # 2 of 4 pass
ONE_SCORED = [[1.0, NAN, 0.0], [1.0, NAN, 0.0], [1.0, NAN, 0.0], [1.0, 0.0, 0.0]]
PASS_FAIL_UNSCORABLE = [[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, NAN, 0.0], [1.0, NAN, 0.0]]


@pytest.mark.parametrize("group, pass_keeps, functional_keeps, total_keeps, shaping_only", [
    (ONE_BARE_MODULE, False, False, True, True),
    (ONE_OVERLONG, False, False, True, True),
    (PARTIAL_ONLY, False, True, True, True),
    (MIXED, True, True, True, False),
    (ONE_SCORED, False, False, False, False),
    (PASS_FAIL_UNSCORABLE, True, True, True, False),
])
def test_informative_test_is_made_on_the_named_signal(group, pass_keeps, functional_keeps, total_keeps,
                                                      shaping_only):
    assert _flags(group, "pass").informative.tolist() == [pass_keeps]
    assert _flags(group, "functional").informative.tolist() == [functional_keeps]
    flags = _flags(group, "total")
    assert flags.informative.tolist() == [total_keeps]
    assert flags.shaping_only.tolist() == [shaping_only]  # counted the same whatever the signal


def test_group_flags_are_per_group_and_count_groups_without_baseline():
    flags = _flags(ONE_BARE_MODULE + MIXED + ONE_SCORED + PASS_FAIL_UNSCORABLE)
    assert flags.informative.tolist() == [False, True, False, True]
    assert flags.few_scored.tolist() == [False, False, True, False]
    assert flags.shaping_only.tolist() == [True, False, False, False]


def test_signal_needs_a_functional_reward_and_total_needs_none():
    with pytest.raises(ValueError, match="functional reward"):
        _flags(MIXED, "pass", functional_index=None)
    with pytest.raises(ValueError, match="unknown"):
        _flags(MIXED, "loss")
    flags = _flags(ONE_BARE_MODULE, "total", functional_index=None)
    assert flags.informative.tolist() == [True] and flags.shaping_only.tolist() == [False]


# ------------------------------------------------------------------------------------------ TRL's aggregation

# two shaping rewards that always cancel in the weighted sum, and one that is constant per group
CANCELLING = [[0.5, 0.0, 1.0], [0.0, 0.5, 1.0], [0.25, 0.25, 1.0], [0.5, 0.0, 1.0]]
ONE_COLUMN_VARIES = [[1.0, 0.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 1.0], [1.0, 0.0, 1.0]]


@pytest.mark.parametrize("rows, weights, by_sum, by_column", [
    (CANCELLING, (1.0, 1.0, 1.0), False, True),  # equal totals, but each reward differs: TRL normalises per reward
    (ONE_COLUMN_VARIES, (1.0, 1.0, 1.0), True, True),
    (ONE_COLUMN_VARIES, (1.0, 1.0, 0.0), False, False),  # the varying reward has weight 0
    (ONE_BARE_MODULE, (0.1, 1.0, 1.0), True, True),
    (ONE_SCORED, (0.1, 1.0, 1.0), False, False),  # one scored completion: nothing to compare
])
def test_whether_advantages_vary_follows_trls_aggregation(rows, weights, by_sum, by_column):
    per_func, _ = mask_unscorable(torch.tensor(rows, dtype=torch.float32), [1])
    w = torch.tensor(weights)
    assert total_varies(per_func, w, 4, "sum_then_normalize").tolist() == [by_sum]
    assert total_varies(per_func, w, 4, "normalize_then_sum").tolist() == [by_column]
    flags = classify_groups(per_func, w, 4, signal="total", functional_index=None, aggregation="normalize_then_sum")
    assert flags.informative.tolist() == [by_column]


def test_an_aggregation_trl_adds_later_is_refused_by_name():
    with pytest.raises(ValueError, match="multi_objective_aggregation='mean_of_ranks'"):
        total_varies(torch.ones(4, 1), torch.ones(1), 4, "mean_of_ranks")


@pytest.mark.slow
@pytest.mark.parametrize("aggregation", ["sum_then_normalize", "normalize_then_sum"])
def test_groups_flagged_constant_get_equal_advantages_from_trl(tiny_assets, tmp_path, aggregation):
    """The classification agrees with the advantages TRL itself computes, under each of its aggregations."""
    from verirl.config import load_recipe
    from verirl.train import build_trainer

    recipe = load_recipe("recipes/tiny/grpo.yaml", {
        "model_name_or_path": tiny_assets["model"], "dataset": tiny_assets["tasks"],
        "output_dir": str(tmp_path / "out"), "max_completion_length": 6, "per_device_train_batch_size": 12,
        "num_generations": 3, "steps_per_generation": 1, "multi_objective_aggregation": aggregation,
        "rewards": [{"name": "train_toy_rewards:half_informative_reward"},
                    {"name": "train_toy_rewards:constant_reward", "weight": 2.0}],
    })
    trainer = build_trainer(recipe)
    trainer.model.train()
    scored = trainer.score_round(next(iter(trainer.get_train_dataloader())))
    flags = classify_groups(scored.rewards, trainer.weights_per_reward, 3, signal="total", functional_index=None,
                            aggregation=aggregation)
    spread = scored.output["advantages"].view(-1, 3)
    spread = (spread.max(dim=1).values - spread.min(dim=1).values).tolist()
    assert 0 < int(flags.total_varies.sum()) < len(spread), "the seeded batch should mix both kinds of group"
    for varies, width in zip(flags.total_varies.tolist(), spread):
        assert (width > 1e-2) == varies, (aggregation, flags.total_varies.tolist(), spread)


def test_a_pass_group_whose_total_cannot_vary_carries_no_signal():
    # the functional reward has weight 0: passes differ but TRL's advantages would all be zero
    assert _flags(MIXED, "pass", weights=(0.0, 0.0, 0.0)).informative.tolist() == [False]


# ------------------------------------------------------------------------------------------ concat edge cases


def _part(rows, prompt_w, comp_w, fill=1):
    return {"prompt_ids": torch.full((rows, prompt_w), 3), "prompt_mask": torch.ones(rows, prompt_w, dtype=torch.long),
            "completion_ids": torch.full((rows, comp_w), 4), "completion_mask": torch.ones(rows, comp_w, dtype=torch.long),
            "old_per_token_logps": torch.full((rows, comp_w), -1.0), "advantages": torch.full((rows,), float(fill))}


@pytest.mark.parametrize("widths", [(1, 3), (1, 1, 4), (2, 1), (3, 1, 1)])
def test_concat_batches_repads_when_the_first_completion_width_is_one(widths):
    parts = [_part(2, 2, w, fill=i) for i, w in enumerate(widths)]
    joined = concat_batches(parts, pad_token_id=0)
    width = max(widths)
    assert joined["completion_ids"].shape == (2 * len(widths), width)
    for i, w in enumerate(widths):
        rows = slice(2 * i, 2 * i + 2)
        assert joined["completion_mask"][rows].sum(-1).tolist() == [w, w]
        assert (joined["completion_ids"][rows, w:] == 0).all()  # right padding with the pad token
        assert (joined["old_per_token_logps"][rows, w:] == 0).all()
        assert (joined["advantages"][rows] == i).all()


def test_concat_batches_keeps_per_sequence_columns():
    a, b = _part(2, 2, 3), _part(1, 4, 5)
    a["importance_sampling_ratio"], b["importance_sampling_ratio"] = torch.full((2, 1), 0.5), torch.full((1, 1), 2.0)
    joined = concat_batches([a, b], pad_token_id=0)
    assert joined["importance_sampling_ratio"].tolist() == [[0.5], [0.5], [2.0]]
    assert joined["prompt_mask"].tolist()[0] == [0, 0, 1, 1]  # prompts re-padded on the left


def _rows(prompts: list[list[int]], completions: list[list[int]], width_p: int, width_c: int, pad: int = 0) -> dict:
    """A generation output: prompts left-padded, completions right-padded, to the given widths."""
    p_ids = torch.tensor([[pad] * (width_p - len(p)) + p for p in prompts])
    p_mask = torch.tensor([[0] * (width_p - len(p)) + [1] * len(p) for p in prompts])
    c_ids = torch.tensor([c + [pad] * (width_c - len(c)) for c in completions])
    c_mask = torch.tensor([[1] * len(c) + [0] * (width_c - len(c)) for c in completions])
    return {"prompt_ids": p_ids, "prompt_mask": p_mask, "completion_ids": c_ids, "completion_mask": c_mask,
            "old_per_token_logps": c_mask.float() * -0.5, "advantages": torch.ones(len(prompts))}


def test_concat_drops_columns_no_joined_row_needs():
    # round 1 was padded for a long prompt and a long completion that dynamic sampling dropped
    wide = select_rows(_rows([[1, 2], [1, 2, 3, 4, 5, 6]], [[7, 8], [7, 8, 8, 8, 8, 8]], 6, 6), torch.tensor([0]))
    narrow = _rows([[3, 4, 5]], [[9, 9, 9]], 3, 3)
    joined = concat_batches([wide, narrow], pad_token_id=0)
    assert joined["prompt_ids"].tolist() == [[0, 1, 2], [3, 4, 5]]  # 3 unattended left columns gone
    assert joined["prompt_mask"].tolist() == [[0, 1, 1], [1, 1, 1]]
    assert joined["completion_ids"].tolist() == [[7, 8, 0], [9, 9, 9]]  # 3 padding columns gone
    assert joined["old_per_token_logps"].shape == (2, 3) and joined["completion_mask"].sum() == 5


def test_concat_keeps_tokens_of_rows_whose_mask_was_zeroed():
    # an unscorable row keeps its tokens in the batch (mask zero, tokens real): its columns are not padding
    masked = _rows([[1]], [[7, 7, 7, 7, 7]], 1, 5)
    masked["completion_mask"] = torch.zeros_like(masked["completion_mask"])
    other = _rows([[2, 3]], [[9]], 2, 1)
    joined = concat_batches([masked, other], pad_token_id=0)
    assert joined["completion_ids"].shape == (2, 5) and joined["prompt_ids"].shape == (2, 2)
    assert joined["completion_ids"][0].tolist() == [7, 7, 7, 7, 7]


def test_concat_never_cuts_a_counted_token_even_when_pad_is_eos():
    eos = 2  # pad == eos: the first EOS of a row is a counted token
    a = _rows([[5]], [[6, eos]], 1, 4, pad=eos)
    b = _rows([[5]], [[6, 6, 6, eos]], 1, 4, pad=eos)
    joined = concat_batches([select_rows(a, torch.tensor([0])), _rows([[5]], [[6, eos]], 1, 2, pad=eos)],
                            pad_token_id=eos)
    assert joined["completion_ids"].tolist() == [[6, eos], [6, eos]]
    assert joined["completion_mask"].sum().item() == 4
    joined = concat_batches([a, b], pad_token_id=eos)
    assert joined["completion_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
