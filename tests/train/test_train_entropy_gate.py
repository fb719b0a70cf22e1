"""The entropy gate updates exactly the chosen tokens — the highest-entropy ones, recomputed here from a fresh forward
pass — and only in the policy term: with beta > 0 the KL term still reaches every token."""

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


def test_per_response_mask_ignores_entropy_of_padding():
    # padding positions with the highest entropy must not take a slot
    ent = torch.tensor([[0.1, 0.2, 9.0, 9.0], [0.3, 0.1, 0.2, 9.0]])
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0]])
    assert per_response_mask(ent, mask, 0.3).tolist() == [[False, True, False, False], [True, False, False, False]]


def _trainer(tiny_assets, tmp_path, mode, fraction, loss_type="grpo", beta=0.0):
    from verirl.config import load_recipe
    from verirl.train import build_trainer

    recipe = load_recipe("recipes/tiny/grpo.yaml", {
        "model_name_or_path": tiny_assets["model"],
        "dataset": tiny_assets["tasks"],
        "output_dir": str(tmp_path / "out"),
        "rewards": [{"name": "train_toy_rewards:length_reward"}],
        "entropy_gate": {"mode": mode, "top_fraction": fraction, "log_tokens_every": 1},
        "loss_type": loss_type,
        "beta": beta,
    })
    trainer = build_trainer(recipe)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    return trainer


def _batch(trainer, completion_mask, prompt_len=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    b, c = completion_mask.shape
    vocab = trainer.model.config.vocab_size
    return {
        "prompt_ids": torch.randint(5, vocab, (b, prompt_len), generator=gen),
        "prompt_mask": torch.ones(b, prompt_len, dtype=torch.long),
        "completion_ids": torch.randint(5, vocab, (b, c), generator=gen),
        "completion_mask": completion_mask,
        "advantages": torch.tensor([1.0, -1.0, 0.5, -0.5, 0.8, -0.3])[:b],
        "num_items_in_batch": completion_mask.sum(),
        # a reference that differs from the policy, so the KL term has a gradient at every token
        "ref_per_token_logps": -5.0 - 2.0 * torch.rand(b, c, generator=gen),
    }


def _fresh_entropies(trainer, inputs):
    """Entropy of every completion position, from our own forward pass (not the trainer's)."""
    p = inputs["prompt_ids"].size(1)
    c = inputs["completion_ids"].size(1)
    with torch.no_grad():
        logits = trainer.model(
            input_ids=torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1),
            attention_mask=torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1),
        ).logits[:, p - 1 : p + c - 1].float() / trainer.temperature
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def _position_grads(trainer, inputs):
    """|d loss / d hidden| at each completion position (the final norm's output at t feeds only token t's logits)."""
    captured = {}

    def keep(module, args, output):
        output.retain_grad()
        captured["h"] = output

    handle = trainer.model.model.norm.register_forward_hook(keep)
    try:
        trainer.model.zero_grad()
        loss = trainer._compute_loss(trainer.model, dict(inputs))
        loss.backward()
    finally:
        handle.remove()
    p = inputs["prompt_ids"].size(1)
    c = inputs["completion_ids"].size(1)
    return captured["h"].grad[:, p - 1 : p + c - 1].detach().clone()


def _policy_and_kl_positions(trainer, inputs):
    """Positions the policy term moves (the gradient changes with the advantages) and the KL term moves."""
    full = _position_grads(trainer, inputs)
    kl_only = _position_grads(trainer, {**inputs, "advantages": torch.zeros_like(inputs["advantages"])})
    policy = (full - kl_only).abs().sum(-1) > 0
    kl = kl_only.abs().sum(-1) > 0
    return policy, kl


MASK = torch.ones(6, 12, dtype=torch.long)
MASK[1, 8:] = 0
MASK[3, 5:] = 0
MASK[5, 1:] = 0  # a one-token response still gets its one token


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.25, 0.5])
def test_per_response_gate_updates_exactly_the_top_entropy_tokens_of_each_response(tiny_assets, tmp_path, fraction):
    trainer = _trainer(tiny_assets, tmp_path, "per_response", fraction, beta=0.05)
    inputs = _batch(trainer, MASK.clone())
    entropies = _fresh_entropies(trainer, inputs)
    policy, kl = _policy_and_kl_positions(trainer, inputs)
    for row in range(MASK.size(0)):
        valid = MASK[row].bool()
        k = math.ceil(fraction * int(valid.sum()))
        scores = entropies[row].masked_fill(~valid, -math.inf)
        expected = torch.zeros_like(valid)
        expected[torch.topk(scores, k).indices] = True
        assert torch.equal(policy[row], expected), (row, policy[row], expected)
        assert torch.equal(kl[row], valid), row  # beta > 0: the KL term is not gated
    n_valid = int(MASK.sum())
    assert trainer._metrics["train"]["entropy_gate/fraction"][-1] == pytest.approx(int(policy.sum()) / n_valid)


@pytest.mark.slow
@pytest.mark.parametrize("loss_type", ["dapo", "grpo"])
def test_batch_gate_updates_exactly_the_tokens_above_the_batch_quantile(tiny_assets, tmp_path, loss_type):
    trainer = _trainer(tiny_assets, tmp_path, "batch", 0.3, loss_type=loss_type, beta=0.05)
    inputs = _batch(trainer, MASK.clone(), seed=1)
    entropies = _fresh_entropies(trainer, inputs)
    valid = MASK.bool()
    threshold = torch.quantile(entropies[valid], 0.7)
    expected = (entropies >= threshold) & valid
    policy, kl = _policy_and_kl_positions(trainer, inputs)
    assert torch.equal(policy, expected)
    assert torch.equal(kl, valid)
    # one threshold for the batch: some responses get more than their share, others fewer
    per_row = policy.sum(-1).float() / valid.sum(-1)
    assert per_row.max() > per_row.min()


@pytest.mark.slow
def test_gate_off_updates_every_token(tiny_assets, tmp_path):
    trainer = _trainer(tiny_assets, tmp_path, "off", 0.2, beta=0.05)
    inputs = _batch(trainer, MASK.clone())
    policy, kl = _policy_and_kl_positions(trainer, inputs)
    assert torch.equal(policy, MASK.bool()) and torch.equal(kl, MASK.bool())
