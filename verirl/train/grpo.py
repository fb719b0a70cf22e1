"""GRPO and DAPO on TRL's ``GRPOTrainer``, plus what TRL lacks for Verilog RL.

TRL already does the GRPO loop, the loss variants (``grpo``/``dapo``/``dr_grpo``/``bnpo``), clip-higher
(``epsilon_high``), KL and the reference model, ``mask_truncated_completions``, the batch-level entropy mask
(``top_entropy_quantile``), vLLM rollouts and per-reward metrics. :class:`VerirlGRPOTrainer` adds, through the hooks
of :class:`~verirl.train.trl_hooks.GRPOHooks` (the one module that names TRL's private members) and TRL's public
API:

* **unscorable completions are excluded** (:meth:`adjust_rewards`): when the functional reward (or any reward of
  the engine) returns None — a tool crash, the batch deadline, a task fault — every reward of that completion
  becomes NaN, so TRL leaves it out of the group baseline and gives it no advantage, and its tokens leave the loss;
  a group with fewer than two scorable completions gets no advantage at all (``unscorable/*`` metrics);
* **dynamic sampling** (:meth:`generate_and_score`): groups without a signal — by default the functional pass,
  DAPO's ``0 < #correct < #scored`` — are dropped and the batch is refilled with fresh prompts from a seeded,
  resumable stream (:class:`~verirl.train.sampling.RefillStream`) for up to ``max_refill_rounds`` extra generation
  rounds; if it is still short, dropped groups fill the remaining slots with zero advantage and no loss tokens, so
  they neither move the policy nor count in the token normaliser (``dynamic_sampling/padded_fraction``);
* **no optimizer step without a loss token** (:meth:`training_step`): an accumulation window whose micro-batches
  hold no completion token that carries loss (all padding, all unscorable) runs no forward/backward, so Adam's
  moments and the weights stay as they were (``optimizer/skipped_steps``);
* **adaptive sampling**: the first round already draws ``1 / keep_ratio`` times the prompts, with the keep ratio a
  moving average that goes up when the model improves as well as down;
* **per-response entropy gate** (:meth:`get_high_entropy_mask`), gate-fraction metric and a periodic sample of the
  gated tokens written to ``<output_dir>/gated_tokens.jsonl``;
* **timings**: generation, reward and optimisation seconds per step, wall-clock and CPU (``timing/*_cpu_s``: the
  work done, nearly independent of the machine's load; :mod:`verirl.train.timing`);
* **checkpoint state**: the sampling state is saved next to each checkpoint (a callback's ``on_save``) and restored
  by :meth:`train` on resume.

The trainer's settings are its config, :class:`~verirl.train.configs.VerirlGRPOConfig` (saved with every checkpoint
as ``training_args.bin``); without ``reward_funcs`` the trainer builds the config's ``rewards`` list.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from verirl.train.configs import VerirlGRPOConfig
from verirl.train.entropy_gate import gated_token_sample, per_response_mask
from verirl.train.metrics import task_metrics
from verirl.train.sampling import (
    RefillStream,
    SamplingState,
    classify_groups,
    concat_batches,
    extra_groups,
    group_rows,
    mask_unscorable,
    select_rows,
)
from verirl.train.timing import Span, clock
from verirl.train.trl_hooks import GRPOHooks, ScoredRound

logger = logging.getLogger(__name__)

STATE_FILE = "verirl_sampling_state.json"
GATED_TOKENS_FILE = "gated_tokens.jsonl"
TASK_IDS_FILE = "task_ids.jsonl"


class VerirlGRPOTrainer(GRPOHooks):
    """``GRPOTrainer`` with dynamic/adaptive sampling, a per-response entropy gate and extra metrics.

    ``args`` is a :class:`~verirl.train.configs.VerirlGRPOConfig`; ``reward_funcs`` defaults to the rewards its
    ``rewards`` list names (built with their kwargs and the run's reward cache).
    """

    def __init__(self, model, reward_funcs=None, args: VerirlGRPOConfig | None = None, *, callbacks=None,
                 **kwargs):
        if args is None:
            name = model if isinstance(model, str) else getattr(model, "name_or_path", "model")
            args = VerirlGRPOConfig(output_dir=f"{str(name).split('/')[-1]}-GRPO")
        if not isinstance(args, VerirlGRPOConfig):
            raise TypeError(
                f"VerirlGRPOTrainer needs a verirl.train.configs.VerirlGRPOConfig (trl.GRPOConfig plus verirl's "
                f"settings), got {type(args).__name__}; build it with VerirlGRPOConfig(...) or verirl.config."
                f"load_recipe"
            )
        if reward_funcs is None:
            if not args.rewards:
                raise ValueError("VerirlGRPOTrainer: pass reward_funcs or list the rewards in the config's `rewards`")
            from verirl.config import build_rewards

            reward_funcs = build_rewards(args.rewards, cache_path=args.reward_cache_path())
        funcs = reward_funcs if isinstance(reward_funcs, list) else [reward_funcs]
        if args.rewards and len(args.rewards) != len(funcs):
            raise ValueError(f"the config lists {len(args.rewards)} rewards but the trainer got {len(funcs)}")
        self.sampling_state = SamplingState()
        self._refill: RefillStream | None = None
        self._last_gate_log_step = -1
        self._window_backward = False  # a micro-batch of the current accumulation window ran backward
        self._loss_completion_ids: torch.Tensor | None = None  # set only inside compute_loss (gated-token sample)
        callbacks = [SamplingStateCheckpoint(self), *(callbacks or [])]  # first: written before other on_save hooks
        super().__init__(model, reward_funcs=funcs, args=args, callbacks=callbacks, **kwargs)
        names = [spec.name for spec in args.rewards] or list(self.reward_func_names)
        #: the reward whose value says how correct a completion is, and the rewards whose None means "unscorable"
        self.functional_index = args.check_functional_reward(names)
        self.scorability_columns = _scorability_columns(self.reward_funcs, self.functional_index)
        #: TRL's reward weights (the config's reward_weights, equal weights when unset)
        self.weights_per_reward = torch.tensor(args.reward_weights or [1.0] * len(self.reward_funcs),
                                               dtype=torch.float32)

    @property
    def tokenizer(self):
        """The text tokenizer (the processing class itself, or a processor's tokenizer)."""
        return getattr(self.processing_class, "tokenizer", self.processing_class)

    def group_size(self, mode: str) -> int:
        """Completions per prompt in ``mode`` (TRL's ``num_generations`` / ``num_generations_eval``)."""
        if mode == "train":
            return self.args.num_generations
        return self.args.num_generations_eval or self.args.num_generations

    @property
    def mode(self) -> str:
        return "train" if self.model.training else "eval"

    # ------------------------------------------------------------------------------------------ rewards

    def adjust_rewards(self, inputs, rewards_per_func):
        # an unscorable completion (tools could not score its functional level) is excluded, not a failure: every
        # reward of it becomes NaN, so TRL leaves it out of the baseline and zeroes its advantage
        rewards_per_func, unscorable = mask_unscorable(rewards_per_func, self.scorability_columns)
        few_scored = (~unscorable).view(-1, self.group_size(self.mode)).sum(dim=1) < 2
        metrics = self.metrics(self.mode)
        metrics["unscorable/fraction"].append(unscorable.float().mean().item())
        metrics["unscorable/groups_without_baseline"].append(few_scored.float().mean().item())
        for name, value in task_metrics(inputs, rewards_per_func, self.functional_index, self.accelerator).items():
            metrics[name].append(value)
        return rewards_per_func

    def _exclude_unscorable(self, scored: ScoredRound) -> dict[str, Any]:
        """Take the unscorable completions of this process out of the loss; no advantage for baseline-less groups.

        TRL already zeroes the advantage of a row whose rewards are all NaN (what :meth:`adjust_rewards` makes of an
        unscorable completion); here its completion tokens also leave the loss mask (so they count in no
        normaliser, KL or entropy gate), and every row of a group with fewer than two scorable completions gets a
        zero advantage (whatever the aggregation mode). Groups may span processes, so they are counted on every
        process's rewards.
        """
        output = scored.output
        group = self.group_size(self.mode)
        unscorable_all = torch.isnan(scored.rewards).all(dim=1)
        no_baseline_all = ((~unscorable_all).view(-1, group).sum(dim=1) < 2).repeat_interleave(group)
        n_local = output["completion_mask"].size(0)
        local = slice(self.accelerator.process_index * n_local, (self.accelerator.process_index + 1) * n_local)
        device = output["completion_mask"].device
        unscorable, no_baseline = unscorable_all[local].to(device), no_baseline_all[local].to(device)
        if unscorable.any():
            output["completion_mask"] = output["completion_mask"] * (~unscorable).unsqueeze(1).to(
                output["completion_mask"].dtype
            )
        if no_baseline.any():
            output["advantages"] = torch.where(no_baseline, torch.zeros_like(output["advantages"]),
                                               output["advantages"])
        output["num_items_in_batch"] = self._count_loss_tokens(output)
        return output

    def _count_loss_tokens(self, batch: dict[str, Any]) -> torch.Tensor:
        """Completion tokens that carry loss, summed over processes (TRL's ``num_items_in_batch``)."""
        loss_mask = batch["completion_mask"]
        if "tool_mask" in batch:
            loss_mask = loss_mask * batch["tool_mask"]
        return self.accelerator.gather(loss_mask.sum()).sum()

    # ------------------------------------------------------------------------------------------ training step

    def training_step(self, model, inputs, num_items_in_batch):
        phases0 = self.phase_seconds.snapshot()
        start = clock()
        wall0 = start[0]
        model.train()  # as Trainer.training_step does first: TRL's _prepare_inputs generates in train mode only
        if hasattr(self.optimizer, "train") and callable(self.optimizer.train):
            self.optimizer.train()
        prepared = self.prepare_batch(inputs)  # TRL: generate every steps_per_generation, slice the buffer
        boundary = self.accelerator.sync_gradients
        has_loss = self._any_process(_has_loss_tokens(prepared))
        # No forward/backward for a micro-batch without a loss token (padding after the last refill round, all
        # unscorable, all truncated and masked), unless gradients of this window still have to be synchronised.
        # A window of such micro-batches leaves every gradient None, so the optimizer does not step at all (a zero
        # gradient would still move Adam's moments and apply weight decay). The decision is the same on every
        # process, so collective operations stay matched.
        if has_loss or (boundary and self._window_backward):
            self.add_step_time(time.perf_counter() - wall0)  # TRL's step_time covers generation, which ran above
            out = super().training_step(model, prepared, num_items_in_batch)
            self._window_backward = True
        else:
            self.skip_micro_batch(time.perf_counter() - wall0)
            out = torch.zeros((), device=self.args.device)
        metrics = self.metrics("train")
        if boundary:
            metrics["optimizer/skipped_steps"].append(0.0 if self._window_backward else 1.0)
            self._window_backward = False
        total = Span().add_since(start)
        generated = self.phase_seconds.since(phases0, "generate_and_score")
        if generated.wall > 0:
            generation, reward = self.phase_seconds.since(phases0, "generation"), self.phase_seconds.since(phases0, "reward")
            metrics["timing/generation_s"].append(generation.wall)
            metrics["timing/reward_s"].append(reward.wall)
            metrics["timing/generation_cpu_s"].append(generation.cpu)
            metrics["timing/reward_cpu_s"].append(reward.cpu)
        optimization = total.minus(generated)
        metrics["timing/optimization_s"].append(optimization.wall)
        metrics["timing/optimization_cpu_s"].append(optimization.cpu)
        metrics["timing/step_cpu_s"].append(total.cpu)
        return out

    def _any_process(self, flag: bool) -> bool:
        if self.accelerator.num_processes == 1:
            return flag
        t = torch.tensor([int(flag)], device=self.accelerator.device, dtype=torch.long)
        return bool(self.accelerator.reduce(t, reduction="max").item())

    # ------------------------------------------------------------------------------------------ sampling

    def generate_and_score(self, inputs):
        start = clock()
        if self.model.training:
            self._record_ids("ids", inputs)
        try:
            if self.model.training and self.args.dynamic_sampling:
                return self._dynamic_generate(inputs)
            return self._exclude_unscorable(self.score_round(inputs))
        finally:
            self.phase_seconds["generate_and_score"].add_since(start)

    def _refill_stream(self) -> RefillStream:
        if self._refill is None:
            self._refill = RefillStream(len(self.train_dataset), self.args.seed, self.sampling_state)
        return self._refill

    def _draw_groups(self, n_groups: int) -> list[dict[str, Any]]:
        indices = self._refill_stream().draw(
            n_groups, self.accelerator.process_index, self.accelerator.num_processes
        )
        rows = []
        for idx in indices:
            row = self.train_dataset[idx]
            rows.extend(dict(row) for _ in range(self.args.num_generations))
        return rows

    def _max_across_processes(self, value: int) -> int:
        t = torch.tensor([value], device=self.accelerator.device, dtype=torch.long)
        return int(self.accelerator.reduce(t, reduction="max").item()) if self.accelerator.num_processes > 1 else value

    def _sum_across_processes(self, *values: float) -> list[float]:
        t = torch.tensor(values, device=self.accelerator.device, dtype=torch.float64)
        if self.accelerator.num_processes > 1:
            t = self.accelerator.reduce(t, reduction="sum")
        return t.tolist()

    def _score_and_classify(self, inputs: list[dict[str, Any]]):
        """Generate and score one round; return (output, this process's GroupFlags)."""
        start = clock()
        try:
            scored = self.score_round(inputs)
        finally:
            self.phase_seconds["scoring_round"].add_since(start)
        output = self._exclude_unscorable(scored)
        group = self.args.num_generations
        flags = classify_groups(scored.rewards, self.weights_per_reward, group,
                                signal=self.args.dynamic_sampling_signal, functional_index=self.functional_index,
                                aggregation=self.args.multi_objective_aggregation)
        groups_per_process = len(inputs) // group
        first = self.accelerator.process_index * groups_per_process
        local = slice(first, first + groups_per_process)
        return output, type(flags)(**{k: v[local].cpu() for k, v in vars(flags).items()})

    def _record_ids(self, key: str, rows: list[dict[str, Any]]) -> None:
        """Append this batch's task ids (all processes, one entry per group) to task_ids.jsonl."""
        if not self.args.record_task_ids or not rows:
            return
        from accelerate.utils import gather_object

        ids = [str(r.get("id")) for r in rows[:: self.args.num_generations]]
        if self.accelerator.num_processes > 1:
            ids = gather_object(ids)
        if self.accelerator.is_main_process:
            os.makedirs(self.args.output_dir, exist_ok=True)
            with open(os.path.join(self.args.output_dir, TASK_IDS_FILE), "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": self.state.global_step, key: ids}) + "\n")

    def _dynamic_generate(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        start = clock()
        scoring0 = self.phase_seconds["scoring_round"].copy()
        result = self._dynamic_generate_rounds(inputs)
        # time spent in dynamic sampling itself (selection, joining, bookkeeping), not in generating and scoring
        own = Span().add_since(start).minus(self.phase_seconds["scoring_round"].minus(scoring0))
        self.metrics("train")["timing/dynamic_sampling_s"].append(own.wall)
        self.metrics("train")["timing/dynamic_sampling_cpu_s"].append(own.cpu)
        return result

    def _dynamic_generate_rounds(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        settings, group, state = self.args, self.args.num_generations, self.sampling_state
        target = len(inputs) // group
        factor = state.oversample_factor(settings.adaptive_max_factor) if settings.adaptive_sampling else 1.0
        oversampled = self._draw_groups(extra_groups(target, factor))
        self._record_ids("oversampled_ids", oversampled)

        kept: list[dict] = []  # informative groups (as row selections)
        spare: list[dict] = []  # uninformative groups, used only if refilling falls short
        n_kept = n_informative = n_shaping_only = generated = rounds = 0
        spare_rows = 0
        batch = list(inputs) + oversampled
        while True:
            output, group_flags = self._score_and_classify(batch)
            flags = group_flags.informative
            generated += flags.numel()
            n_informative += int(flags.sum())
            n_shaping_only += int(group_flags.shaping_only.sum())
            good = torch.nonzero(flags).view(-1)
            bad = torch.nonzero(~flags).view(-1)
            take = good[: max(0, target - n_kept)]
            if take.numel():
                kept.append(select_rows(output, group_rows(take, group)))
                n_kept += take.numel()
            if bad.numel() and spare_rows < target * group:
                spare.append(select_rows(output, group_rows(bad, group)))
                spare_rows += bad.numel() * group
            # every process must run the same number of rounds (generation and scoring are collective)
            need = self._max_across_processes(target - n_kept)
            if need <= 0 or rounds >= settings.max_refill_rounds:
                break
            rounds += 1
            batch = self._draw_groups(need + (extra_groups(need, factor) if settings.adaptive_sampling else 0))
            self._record_ids("refill_ids", batch)
        informative_total, gen_total, shaping_total = self._sum_across_processes(n_informative, generated,
                                                                                 n_shaping_only)
        state.update_keep_ratio(int(informative_total), int(gen_total), settings.adaptive_ema)

        pad_groups = target - n_kept
        parts = list(kept)
        pad_token_id = self.tokenizer.pad_token_id
        if pad_groups > 0:
            filler = select_rows(concat_batches(spare, pad_token_id), torch.arange(pad_groups * group))
            # padding only keeps the batch shape: no advantage, and no loss token, so it counts in no normaliser
            # (DAPO normalises over the kept groups) and a batch of nothing but padding makes no optimizer step
            filler["advantages"] = torch.zeros_like(filler["advantages"])
            filler["completion_mask"] = torch.zeros_like(filler["completion_mask"])
            parts.append(filler)
        result = concat_batches(parts, pad_token_id)
        result["num_items_in_batch"] = self._count_loss_tokens(result)

        pad_total, target_total = self._sum_across_processes(pad_groups, target)
        metrics = self.metrics("train")
        metrics["dynamic_sampling/keep_ratio"].append(informative_total / max(gen_total, 1.0))
        metrics["dynamic_sampling/keep_ratio_ema"].append(state.keep_ratio_ema)
        metrics["dynamic_sampling/refill_rounds"].append(float(rounds))
        metrics["dynamic_sampling/groups_generated"].append(gen_total)
        metrics["dynamic_sampling/padded_fraction"].append(pad_total / max(target_total, 1.0))
        metrics["dynamic_sampling/shaping_only_fraction"].append(shaping_total / max(gen_total, 1.0))
        if settings.adaptive_sampling:
            metrics["adaptive_sampling/factor"].append(factor)
        return result

    # ------------------------------------------------------------------------------------------ entropy gate

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # the gated-token sample needs the completion ids; TRL's loss calls get_high_entropy_mask without them
        self._loss_completion_ids = inputs["completion_ids"]
        try:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        finally:
            self._loss_completion_ids = None

    def get_high_entropy_mask(self, entropies, mask, threshold):
        start = clock()
        gate = self.args.entropy_gate
        if gate.mode == "per_response":
            gated = per_response_mask(entropies, mask, gate.top_fraction)
        else:
            gated = super().get_high_entropy_mask(entropies, mask, threshold)
        self._log_gate(gated, mask)
        own = Span().add_since(start)
        self.metrics(self.mode)["timing/entropy_gate_s"].append(own.wall)
        self.metrics(self.mode)["timing/entropy_gate_cpu_s"].append(own.cpu)
        return gated

    def _log_gate(self, gated: torch.Tensor, mask: torch.Tensor) -> None:
        mode = self.mode
        totals = torch.stack([gated.sum().float(), mask.sum().float()])
        if self.accelerator.num_processes > 1:
            totals = self.accelerator.reduce(totals, reduction="sum")
        fraction = (totals[0] / totals[1].clamp(min=1.0)).item()
        self.metrics(mode)["entropy_gate/fraction"].append(fraction)
        gate = self.args.entropy_gate
        step = self.state.global_step
        if (
            mode == "train"
            and gate.log_tokens_every
            and step % gate.log_tokens_every == 0
            and step != self._last_gate_log_step
            and self._loss_completion_ids is not None
            and self.accelerator.is_main_process
        ):
            self._last_gate_log_step = step
            sample = gated_token_sample(self._loss_completion_ids, gated, self.tokenizer, gate.log_tokens_count)
            record = {"step": step, "fraction": fraction, "tokens": sample}
            os.makedirs(self.args.output_dir, exist_ok=True)
            with open(os.path.join(self.args.output_dir, GATED_TOKENS_FILE), "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            logger.info("step %d: entropy gate kept %.1f%% of tokens; most gated: %s", step, 100 * fraction,
                        ", ".join(f"{t!r}x{c}" for t, c in sample[:10]))

    # ------------------------------------------------------------------------------------------ checkpoints

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        """Trainer.train, restoring the sampling state saved in the checkpoint it resumes from."""
        checkpoint = resume_from_checkpoint
        if isinstance(checkpoint, bool) and checkpoint:
            checkpoint = get_last_checkpoint(self.args.output_dir)
        if isinstance(checkpoint, str):
            self.restore_sampling_state(checkpoint)
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def restore_sampling_state(self, checkpoint: str) -> None:
        path = os.path.join(checkpoint, STATE_FILE)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            self.sampling_state = SamplingState.from_dict(data.get("sampling", {}))
            self._refill = None
            logger.info("restored sampling state from %s: %s", path, self.sampling_state)


class SamplingStateCheckpoint(TrainerCallback):
    """Writes the trainer's sampling state into every checkpoint folder (``on_save``: the checkpoint is complete)."""

    def __init__(self, trainer: VerirlGRPOTrainer):
        self.trainer = trainer

    def on_save(self, args, state, control, **kwargs):
        if not args.should_save:
            return
        folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
        if not os.path.isdir(folder):  # a hyperparameter-search trial writes elsewhere
            logger.warning("checkpoint folder %s not found: sampling state not saved", folder)
            return
        with open(os.path.join(folder, STATE_FILE), "w", encoding="utf-8") as fh:
            json.dump({"sampling": self.trainer.sampling_state.to_dict()}, fh)


def _has_loss_tokens(batch: dict[str, Any]) -> bool:
    loss_mask = batch["completion_mask"]
    if "tool_mask" in batch:
        loss_mask = loss_mask * batch["tool_mask"]
    return bool(loss_mask.sum().item() > 0)


def _scorability_columns(reward_funcs, functional_index: int | None) -> list[int]:
    """Rewards whose None means "the tools could not score this completion": the reward engine's rewards (their
    None is always an infrastructure or task fault) and the recipe's functional reward."""
    from rewards.trl import VerilogReward

    columns = {i for i, func in enumerate(reward_funcs) if isinstance(func, VerilogReward)}
    if functional_index is not None:
        columns.add(functional_index)
    return sorted(columns)
