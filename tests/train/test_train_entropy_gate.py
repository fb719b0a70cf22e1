"""The entropy gate updates only the chosen fraction of tokens, checked on the gradient."""

from __future__ import annotations

import math

import pytest
import torch

from verirl.train.entropy_gate import per_response_mask


def test_per_response_mask_picks_top_fraction_of_each_row():
    ent = torch.tensor([[0.1, 0.9, 0.5, 0.3, 0.0], [1.0, 2.0, 3.0, 0.0, 0.0], [0.2, 0.2, 0.2, 0.2, 0.2]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    gate = per_response_mask(ent, mask, 0.5)
    assert gate.tolist() == [
        [False, True, True, False, False],  # 2 of 4 valid: the two highest
        [False, True, True, False, False],  # ceil(1.5) = 2 of 3
        [True, True, True, False, False],  # ties broken by position: exactly ceil(2.5) = 3
    ]
    assert not (gate & ~mask.bool()).any()
    empty = per_response_mask(ent, torch.zeros_like(mask), 0.5)
    assert not empty.any()
    with pytest.raises(ValueError):
        per_response_mask(ent, mask, 0.0)


def _trainer(tiny_assets, tmp_path, mode, fraction, loss_type="grpo"):
    from verirl.config import load_recipe
    from verirl.train import build_trainer

    recipe = load_recipe("recipes/tiny/grpo.yaml", {
        "model_name_or_path": tiny_assets["model"],
        "dataset": tiny_assets["tasks"],
        "output_dir": str(tmp_path / "out"),
        "rewards": [{"name": "train_toy_rewards:length_reward"}],
        "entropy_gate": {"mode": mode, "top_fraction": fraction, "log_tokens_every": 1},
        "loss_type": loss_type,
    })
    trainer = build_trainer(recipe)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    return trainer


def _gated_positions(trainer, completion_mask):
    """Run TRL's loss on a fixed batch and return the completion positions whose hidden state got a gradient."""
    torch.manual_seed(0)
    b, p, c = completion_mask.shape[0], 5, completion_mask.shape[1]
    vocab = trainer.model.config.vocab_size
    inputs = {
        "prompt_ids": torch.randint(5, vocab, (b, p)),
        "prompt_mask": torch.ones(b, p, dtype=torch.long),
        "completion_ids": torch.randint(5, vocab, (b, c)),
        "completion_mask": completion_mask,
        "advantages": torch.tensor([1.0, -1.0, 0.5, -0.5])[:b],
        "num_items_in_batch": completion_mask.sum(),
    }
    captured = {}

    def keep(module, args, output):
        output.retain_grad()
        captured["h"] = output

    handle = trainer.model.model.norm.register_forward_hook(keep)  # final norm output feeds only its own logits
    try:
        trainer.model.zero_grad()
        loss = trainer._compute_loss(trainer.model, inputs)
        loss.backward()
    finally:
        handle.remove()
    grad = captured["h"].grad[:, p - 1 : p + c - 1]  # hidden state at t predicts completion token t
    return grad.abs().sum(-1) > 0


@pytest.mark.slow
def test_per_response_gate_updates_only_top_tokens_of_each_response(tiny_assets, tmp_path):
    trainer = _trainer(tiny_assets, tmp_path, "per_response", 0.25)
    mask = torch.ones(4, 12, dtype=torch.long)
    mask[1, 8:] = 0
    mask[3, 5:] = 0
    moved = _gated_positions(trainer, mask)
    for row in range(4):
        n = int(mask[row].sum())
        assert int(moved[row].sum()) == math.ceil(0.25 * n), (row, moved[row])
        assert not moved[row][mask[row] == 0].any()
    assert trainer._metrics["train"]["entropy_gate/fraction"][-1] == pytest.approx(int(moved.sum()) / int(mask.sum()))


@pytest.mark.slow
def test_batch_gate_updates_only_the_chosen_fraction_of_tokens(tiny_assets, tmp_path):
    trainer = _trainer(tiny_assets, tmp_path, "batch", 0.3, loss_type="dapo")
    mask = torch.ones(4, 10, dtype=torch.long)
    moved = _gated_positions(trainer, mask)
    n = int(mask.sum())
    assert abs(int(moved.sum()) - 0.3 * n) <= 1  # one threshold over the batch: about 30% of all tokens
    per_row = moved.sum(-1)
    assert per_row.sum() == moved.sum()


@pytest.mark.slow
def test_gate_off_updates_every_token(tiny_assets, tmp_path):
    trainer = _trainer(tiny_assets, tmp_path, "off", 0.2)
    mask = torch.ones(2, 6, dtype=torch.long)
    assert _gated_positions(trainer, mask).all()
