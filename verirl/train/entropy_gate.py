"""Entropy-gated token updates: only the highest-entropy completion tokens carry the policy gradient.

Two ways to choose the tokens (``entropy_gate.mode``):

* ``batch`` — TRL's ``top_entropy_quantile``: one entropy threshold, the ``1 - top_fraction`` quantile of all
  completion tokens of the batch gathered across processes. A long or uncertain response can get many gated
  tokens and a confident one none.
* ``per_response`` — :func:`per_response_mask`: each response keeps the top ``ceil(top_fraction * n)`` of its own
  ``n`` tokens (at least one), so every response with a non-zero advantage moves the policy.

In both modes the mask multiplies TRL's per-token loss and the loss keeps the normaliser of its ``loss_type``
(``grpo``: each sequence's sum over gated tokens divided by its full length, then averaged over sequences;
``dapo``/``bnpo``: sum over gated tokens divided by the number of all completion tokens; ``dr_grpo``: divided by
batch × max_completion_length). The gate therefore scales the policy-gradient magnitude down by about
``top_fraction``; it does not renormalise over the gated tokens, which keeps the learning rate comparable to a run
without the gate at the same fraction of signal per token.
"""

from __future__ import annotations

import math
from collections import Counter

import torch


def per_response_mask(entropies: torch.Tensor, mask: torch.Tensor, top_fraction: float) -> torch.Tensor:
    """Boolean (B, T): the ``ceil(top_fraction * n_i)`` highest-entropy valid tokens of each row ``i``.

    Ties are broken by position (earlier first), so exactly that many tokens are selected in each row that has
    valid tokens.
    """
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    valid = mask.bool()
    n_valid = valid.sum(dim=1)
    k = torch.ceil(n_valid.float() * top_fraction).long().clamp(min=1)
    k = torch.where(n_valid > 0, k, torch.zeros_like(k))
    scores = entropies.detach().float().masked_fill(~valid, -math.inf)
    order = torch.argsort(scores, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.size(1), device=order.device).expand_as(order).contiguous())
    return (ranks < k.unsqueeze(1)) & valid


def gated_token_sample(
    completion_ids: torch.Tensor, gate: torch.Tensor, tokenizer, limit: int
) -> list[tuple[str, int]]:
    """The ``limit`` most frequent gated tokens of a batch as (text, count), for the periodic gate log."""
    ids = completion_ids[gate.bool()].tolist()
    counts = Counter(ids).most_common(limit)
    out = []
    for token_id, count in counts:
        try:
            text = tokenizer.decode([token_id])
            if "\ufffd" in text:  # part of a multi-byte character: show the raw token instead
                text = tokenizer.convert_ids_to_tokens(token_id)
        except (TypeError, ValueError, IndexError, OverflowError):  # cannot decode this id: show the id
            text = f"<{token_id}>"
        out.append((text, int(count)))
    return out
