"""Dynamic sampling (DAPO) and adaptive sampling (CodeV-R1-style, two-way) building blocks.

Pure functions on tensors and a small state object, so they can be tested without a trainer:

* :func:`mask_unscorable` — a completion whose functional level could not be scored (tool crash, batch deadline,
  task fault) is excluded: its whole reward row becomes NaN, so TRL leaves it out of the group baseline and gives it
  no advantage, whatever the shaping rewards (format, overlong) said;
* :func:`classify_groups` — which groups of ``num_generations`` completions carry a signal. The test is made on a
  named signal (:data:`SIGNALS`): by default the functional *pass* (DAPO keeps a group when
  ``0 < #correct < #scored``), so a group whose completions differ only in shaping rewards is not informative.
  Whether TRL would give a group any advantage at all follows TRL's own ``multi_objective_aggregation``
  (:func:`total_varies`);
* :func:`select_rows` / :func:`concat_batches` — keep the rows of some groups and join the outputs of several
  generation rounds (re-padding prompts on the left and completions on the right);
* :class:`SamplingState` — the refill stream's position and the keep-ratio average; it is saved with every
  checkpoint so a resumed run draws the same refill prompts and oversamples by the same factor.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from verirl.train.configs import DYNAMIC_SAMPLING_SIGNALS as SIGNALS
from verirl.train.trl_hooks import AGGREGATIONS, COMPLETION_KEYS, PROMPT_KEYS, RECOMPUTED_KEYS, ROW_KEYS

#: a completion is correct ("passes") when its functional reward reaches 1.0 (all checks passed)
PASS_THRESHOLD = 1.0 - 1e-6


def mask_unscorable(rewards_per_func: torch.Tensor, columns: list[int] | tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Exclude unscorable completions: ``(masked copy, unscorable flags)``.

    A row is unscorable when every reward is NaN (TRL's own rule) or when any of ``columns`` — the rewards whose
    ``None`` means "the tools could not score this completion" — is NaN. The whole row of an unscorable completion
    becomes NaN, so a format or overlong score cannot turn an infrastructure fault into a plain failure.
    """
    unscorable = torch.isnan(rewards_per_func).all(dim=1)
    if len(columns):
        idx = torch.as_tensor(list(columns), dtype=torch.long, device=rewards_per_func.device)
        unscorable = unscorable | torch.isnan(rewards_per_func.index_select(1, idx)).any(dim=1)
    masked = rewards_per_func.clone()
    masked[unscorable] = torch.nan
    return masked, unscorable


def group_rewards(rewards_per_func: torch.Tensor, weights: torch.Tensor, num_generations: int) -> torch.Tensor:
    """Weighted total reward per completion, shaped (groups, num_generations); NaN where nothing scored it."""
    unscorable = torch.isnan(rewards_per_func).all(dim=1)
    total = (rewards_per_func * weights.to(rewards_per_func.device).unsqueeze(0)).nansum(dim=1)
    total[unscorable] = torch.nan
    return total.view(-1, num_generations)


def total_varies(rewards_per_func: torch.Tensor, weights: torch.Tensor, num_generations: int,
                 aggregation: str = "sum_then_normalize") -> torch.Tensor:
    """Boolean (groups,): True where TRL's advantages differ within the group, for TRL's
    ``multi_objective_aggregation``.

    ``sum_then_normalize`` normalises the weighted total per group, so the group needs totals that differ;
    ``normalize_then_sum`` normalises each reward per group before the weighted sum, so any weighted reward that
    differs among the group's scored completions is enough.
    """
    if aggregation == "sum_then_normalize":
        return informative_groups(group_rewards(rewards_per_func, weights, num_generations))
    if aggregation == "normalize_then_sum":
        groups = rewards_per_func.size(0) // num_generations
        varies = torch.zeros(groups, dtype=torch.bool, device=rewards_per_func.device)
        for k, weight in enumerate(weights.tolist()):
            if weight != 0.0:
                varies |= informative_groups(rewards_per_func[:, k].reshape(-1, num_generations))
        return varies
    raise ValueError(
        f"multi_objective_aggregation={aggregation!r}: verirl's dynamic sampling follows {', '.join(AGGREGATIONS)}; "
        f"this TRL option is new to it (see verirl/train/trl_hooks.py)"
    )


def informative_groups(grouped: torch.Tensor, atol: float = 1e-6) -> torch.Tensor:
    """Boolean (groups,): True where at least two scored completions of the group got different values."""
    valid = ~torch.isnan(grouped)
    big = torch.where(valid, grouped, torch.full_like(grouped, -math.inf)).max(dim=1).values
    small = torch.where(valid, grouped, torch.full_like(grouped, math.inf)).min(dim=1).values
    spread = big - small
    return (valid.sum(dim=1) >= 2) & (spread > atol)


def functional_signal(rewards_per_func: torch.Tensor, functional_index: int, num_generations: int,
                      signal: str = "pass") -> torch.Tensor:
    """(groups, num_generations): 1.0/0.0 pass flags (``pass``) or the functional reward itself (``functional``);
    NaN where the completion is unscorable."""
    values = rewards_per_func[:, functional_index]
    if signal == "pass":
        values = torch.where(torch.isnan(values), values, (values >= PASS_THRESHOLD).to(values.dtype))
    elif signal != "functional":
        raise ValueError(f"functional_signal: signal must be 'pass' or 'functional', got {signal!r}")
    return values.reshape(-1, num_generations)


@dataclass
class GroupFlags:
    """Per-group verdicts of one generation round (boolean tensors of shape (groups,))."""

    informative: torch.Tensor  # kept by dynamic sampling
    total_varies: torch.Tensor  # TRL's advantages differ within the group (its aggregation of the rewards)
    shaping_only: torch.Tensor  # the total differs while correctness does not
    few_scored: torch.Tensor  # fewer than two scorable completions: no baseline, no advantage


def classify_groups(rewards_per_func: torch.Tensor, weights: torch.Tensor, num_generations: int, *,
                    signal: str = "pass", functional_index: int | None = None,
                    aggregation: str = "sum_then_normalize") -> GroupFlags:
    """Which groups carry a signal, tested on ``signal`` (see :data:`SIGNALS`); ``rewards_per_func`` is masked.

    A group is informative when its signal varies *and* TRL's advantages vary within it (:func:`total_varies`
    under TRL's ``aggregation``; otherwise they are all equal). ``shaping_only`` marks the groups whose advantages
    vary while correctness (the pass) does not — one bare module among failures, one completion in the overlong
    window: the default signal drops them, and with ``signal: total`` they are kept and counted.
    """
    if signal not in SIGNALS:
        raise ValueError(f"unknown dynamic-sampling signal {signal!r}; use one of {', '.join(SIGNALS)}")
    varies = total_varies(rewards_per_func, weights, num_generations, aggregation)
    scored = ~torch.isnan(rewards_per_func).all(dim=1)
    few_scored = scored.view(-1, num_generations).sum(dim=1) < 2
    if functional_index is None:
        if signal != "total":
            raise ValueError(f"dynamic-sampling signal {signal!r} needs a functional reward")
        return GroupFlags(varies, varies, torch.zeros_like(varies), few_scored)
    correct_varies = informative_groups(functional_signal(rewards_per_func, functional_index, num_generations))
    if signal == "total":
        informative = varies
    else:
        own = functional_signal(rewards_per_func, functional_index, num_generations, signal)
        informative = informative_groups(own) & varies
    return GroupFlags(informative, varies, varies & ~correct_varies, few_scored)


def group_rows(group_indices: list[int] | torch.Tensor, num_generations: int) -> torch.Tensor:
    """Row indices of the given groups (each group is ``num_generations`` consecutive rows)."""
    idx = torch.as_tensor(group_indices, dtype=torch.long).view(-1, 1)
    return (idx * num_generations + torch.arange(num_generations).view(1, -1)).view(-1)


def select_rows(batch: dict, rows: torch.Tensor) -> dict:
    """The rows ``rows`` of every per-row tensor of a generation output (other entries are dropped)."""
    out = {}
    for key, value in batch.items():
        if key in RECOMPUTED_KEYS:
            continue
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"dynamic sampling supports text-only generation outputs; got non-tensor entry {key!r}. "
                f"Disable dynamic_sampling for this dataset"
            )
        if key not in PROMPT_KEYS + COMPLETION_KEYS + ROW_KEYS:
            raise ValueError(f"dynamic sampling does not know how to batch {key!r}; disable dynamic_sampling")
        out[key] = value.index_select(0, rows.to(value.device))
    return out


def _pad_to(t: torch.Tensor, width: int, value: float, left: bool) -> torch.Tensor:
    extra = width - t.size(1)
    if extra <= 0:
        return t
    pad = torch.full((t.size(0), extra), value, dtype=t.dtype, device=t.device)
    return torch.cat([pad, t] if left else [t, pad], dim=1)


def concat_batches(batches: list[dict], pad_token_id: int) -> dict:
    """Join generation outputs row-wise: prompts re-padded on the left, completions on the right."""
    batches = [b for b in batches if b and b["prompt_ids"].size(0) > 0]
    if not batches:
        raise ValueError("concat_batches: nothing to join")
    if len(batches) == 1:
        return dict(batches[0])
    keys = set(batches[0])
    for b in batches[1:]:
        if set(b) != keys:
            raise ValueError(f"concat_batches: outputs differ in keys ({sorted(keys)} vs {sorted(b)})")
    out = {}
    for key in keys:
        parts = [b[key] for b in batches]
        if key in ROW_KEYS or parts[0].dim() == 1:
            out[key] = torch.cat(parts, dim=0)
            continue
        widths = {p.size(1) for p in parts}
        if len(widths) == 1:  # nothing to re-pad (also per-sequence values such as a sequence-level ratio)
            out[key] = torch.cat(parts, dim=0)
            continue
        width = max(widths)
        left = key in PROMPT_KEYS
        if key in ("prompt_ids", "completion_ids"):
            value = pad_token_id
        elif key in ("tool_mask", "importance_sampling_ratio"):
            value = 1
        else:
            value = 0
        out[key] = torch.cat([_pad_to(p, width, value, left) for p in parts], dim=0)
    return _trim_padding(out, pad_token_id)


def _trim_padding(batch: dict, pad_token_id: int) -> dict:
    """Drop the columns that are padding in every row: left prompt columns no row attends to, and right completion
    columns that hold the pad token, outside every mask, in every row. Rows joined from several rounds are padded to
    the widest round's width; without this the forward and backward passes would run over columns no kept row
    needs (a batch generated in one round is only padded to its own widest row)."""
    mask = batch.get("prompt_mask")
    if mask is not None and mask.size(1):
        used = torch.nonzero(mask.bool().any(dim=0)).view(-1)
        start = int(used[0]) if used.numel() else mask.size(1)
        if start > 0:
            for key in PROMPT_KEYS:
                if key in batch:
                    batch[key] = batch[key][:, start:]
    ids, cmask = batch.get("completion_ids"), batch.get("completion_mask")
    if ids is not None and cmask is not None and ids.size(1):
        padding = (ids == pad_token_id).all(dim=0) & ~cmask.bool().any(dim=0)
        content = torch.nonzero(~padding).view(-1)
        end = int(content[-1]) + 1 if content.numel() else 0
        if end < ids.size(1):
            for key in COMPLETION_KEYS:
                value = batch.get(key)
                if isinstance(value, torch.Tensor) and value.dim() == 2 and value.size(1) == ids.size(1):
                    batch[key] = value[:, :end]
    return batch


@dataclass
class SamplingState:
    """What dynamic/adaptive sampling carries from step to step (saved in checkpoints)."""

    keep_ratio_ema: float = 1.0  # moving average of the fraction of informative groups
    refill_epoch: int = 0  # pass over the dataset the refill stream is in
    refill_cursor: int = 0  # position in that pass's permutation
    groups_generated: int = 0
    groups_kept: int = 0

    def update_keep_ratio(self, kept: int, generated: int, ema: float) -> None:
        """Blend the newest keep ratio into the average; it moves up as well as down."""
        if generated <= 0:
            return
        ratio = kept / generated
        self.keep_ratio_ema = (1.0 - ema) * self.keep_ratio_ema + ema * ratio
        self.groups_generated += generated
        self.groups_kept += kept

    def oversample_factor(self, max_factor: float) -> float:
        """How many prompts to draw per needed prompt: 1 / keep ratio, capped at ``max_factor``."""
        return float(min(max_factor, 1.0 / max(self.keep_ratio_ema, 1.0 / max_factor)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SamplingState:
        return cls(**{k: data[k] for k in asdict(cls()) if k in data})


def extra_groups(needed_groups: int, factor: float) -> int:
    """Groups to draw on top of ``needed_groups`` so that ``factor`` times as many are generated."""
    return max(0, math.ceil(needed_groups * factor - 1e-9) - needed_groups)


class RefillStream:
    """A seeded, resumable stream of dataset indices for refill prompts, disjoint across processes per draw.

    Every process holds the same state; in one draw of ``n`` prompts, process ``r`` of ``world`` takes the
    positions ``[cursor + r*n, cursor + (r+1)*n)`` of the current permutation, and the cursor advances by
    ``n*world``. A new permutation (seed + epoch) starts when the current one runs out.
    """

    def __init__(self, dataset_size: int, seed: int, state: SamplingState):
        if dataset_size <= 0:
            raise ValueError("RefillStream: the training dataset is empty")
        self.size = dataset_size
        self.seed = seed
        self.state = state
        self._perm: torch.Tensor | None = None
        self._perm_epoch = -1

    def _permutation(self) -> torch.Tensor:
        if self._perm is None or self._perm_epoch != self.state.refill_epoch:
            gen = torch.Generator().manual_seed(self.seed * 1000003 + 7919 + self.state.refill_epoch)
            self._perm = torch.randperm(self.size, generator=gen)
            self._perm_epoch = self.state.refill_epoch
        return self._perm

    def draw(self, n: int, rank: int, world: int) -> list[int]:
        out: list[int] = []
        if n <= 0:
            return out
        total = n * world
        positions = []
        for _ in range(total):
            perm = self._permutation()
            positions.append(int(perm[self.state.refill_cursor]))
            self.state.refill_cursor += 1
            if self.state.refill_cursor >= self.size:
                self.state.refill_cursor = 0
                self.state.refill_epoch += 1
        out = positions[rank * n : (rank + 1) * n]
        return out
