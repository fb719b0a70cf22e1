"""GRPO and DAPO on TRL's ``GRPOTrainer``, plus what TRL lacks for Verilog RL.

TRL already does the GRPO loop, the loss variants (``grpo``/``dapo``/``dr_grpo``/``bnpo``), clip-higher
(``epsilon_high``), KL and the reference model, ``mask_truncated_completions``, the batch-level entropy mask
(``top_entropy_quantile``), vLLM rollouts and per-reward metrics. :class:`VerirlGRPOTrainer` adds, by overriding
a few hooks:

* **unscorable completions are excluded** (:meth:`_calculate_rewards`): when the functional reward (or any reward
  of the engine) returns None — a tool crash, the batch deadline, a task fault — every reward of that completion
  becomes NaN, so TRL leaves it out of the group baseline and gives it no advantage, and its tokens leave the loss;
  a group with fewer than two scorable completions gets no advantage at all (``unscorable/*`` metrics);
* **dynamic sampling** (:meth:`_generate_and_score_completions`): groups without a signal — by default the
  functional pass, DAPO's ``0 < #correct < #scored`` — are dropped and the batch is refilled with fresh prompts from
  a seeded, resumable stream (:class:`~verirl.train.sampling.RefillStream`) for up to ``max_refill_rounds`` extra
  generation rounds; if it is still short, dropped groups fill the remaining slots with zero advantage and no loss
  tokens, so they neither move the policy nor count in the token normaliser (``dynamic_sampling/padded_fraction``);
* **no optimizer step without a loss token** (:meth:`training_step`): an accumulation window whose micro-batches
  hold no completion token that carries loss (all padding, all unscorable) runs no forward/backward, so Adam's
  moments and the weights stay as they were (``optimizer/skipped_steps``);
* **adaptive sampling**: the first round already draws ``1 / keep_ratio`` times the prompts, with the keep ratio a
  moving average that goes up when the model improves as well as down;
* **per-response entropy gate** (:meth:`get_high_entropy_mask`), gate-fraction metric and a periodic sample of the
  gated tokens written to ``<output_dir>/gated_tokens.jsonl``;
* **timings**: generation, reward and optimisation seconds per step, wall-clock and CPU (``timing/*_cpu_s``: the
  work done, nearly independent of the machine's load);
* **checkpoint state**: the sampling state is saved next to each checkpoint and restored on resume.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import time
from typing import Any

import torch
from trl import GRPOTrainer

from verirl.config import EntropyGateArgs, VerirlArgs
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

logger = logging.getLogger(__name__)

STATE_FILE = "verirl_sampling_state.json"
GATED_TOKENS_FILE = "gated_tokens.jsonl"
TASK_IDS_FILE = "task_ids.jsonl"


class VerirlGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` with dynamic/adaptive sampling, a per-response entropy gate and extra metrics."""

    def __init__(self, *args, verirl_args: VerirlArgs | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if verirl_args is None:  # used from Python without a recipe: TRL's behaviour, no additions
            verirl_args = VerirlArgs(trainer="grpo", dataset="<in memory>",
                                     rewards=[{"name": n} for n in self.reward_func_names])
            if self.top_entropy_quantile < 1.0:
                verirl_args.entropy_gate = EntropyGateArgs(mode="batch", top_fraction=self.top_entropy_quantile)
        self.verirl_args = verirl_args
        if len(verirl_args.rewards) != len(self.reward_funcs):
            raise ValueError(
                f"the recipe lists {len(verirl_args.rewards)} rewards but the trainer got {len(self.reward_funcs)}"
            )
        #: the reward whose value says how correct a completion is, and the rewards whose None means "unscorable"
        self.functional_index = verirl_args.functional_index()
        self.scorability_columns = _scorability_columns(self.reward_funcs, self.functional_index)
        if verirl_args.dynamic_sampling and verirl_args.dynamic_sampling_signal != "total" and (
            self.functional_index is None
        ):
            raise ValueError("dynamic_sampling_signal pass/functional needs a functional reward (functional_reward)")
        gate = verirl_args.entropy_gate
        if gate.mode != "off" and abs(self.top_entropy_quantile - gate.top_fraction) > 1e-9:
            raise ValueError(
                f"entropy_gate.top_fraction={gate.top_fraction} but GRPOConfig.top_entropy_quantile="
                f"{self.top_entropy_quantile}; build the config with verirl.config (it sets one from the other)"
            )
        if gate.mode == "off" and self.top_entropy_quantile < 1.0:
            raise ValueError("GRPOConfig.top_entropy_quantile < 1 needs entropy_gate.mode: batch in the recipe")
        if verirl_args.dynamic_sampling:
            local = self.args.per_device_train_batch_size * self.args.steps_per_generation
            if local % self.num_generations:
                raise ValueError(
                    f"dynamic sampling needs per_device_train_batch_size*steps_per_generation ({local}) to be a "
                    f"multiple of num_generations ({self.num_generations})"
                )
        self.sampling_state = SamplingState()
        self._refill: RefillStream | None = None
        # (wall, CPU) seconds spent generating, scoring, in both, and in this step's generation rounds
        self._gen_seconds = _Span()
        self._reward_seconds = _Span()
        self._gen_score_seconds = _Span()
        self._round_seconds = _Span()
        self._last_rewards_per_func: torch.Tensor | None = None
        self._last_unscorable: torch.Tensor | None = None  # all processes, one flag per completion
        self._last_few_scored: torch.Tensor | None = None  # all processes, one flag per group
        self._gate_completion_ids: torch.Tensor | None = None
        self._last_gate_log_step = -1
        self._prepared_inputs: dict[str, Any] | None = None
        self._window_backward = False  # a micro-batch of the current accumulation window ran backward

    # ------------------------------------------------------------------------------------------ timings

    def _generate(self, prompts):
        start = _clock()
        try:
            return super()._generate(prompts)
        finally:
            self._gen_seconds.add_since(start)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        start = _clock()
        inputs = [_decode_row(row) for row in inputs]
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._reward_seconds.add_since(start)
        # an unscorable completion (tools could not score its functional level) is excluded, not a failure: every
        # reward of it becomes NaN, so TRL leaves it out of the baseline and zeroes its advantage
        rewards_per_func, unscorable = mask_unscorable(rewards_per_func, self.scorability_columns)
        mode = "train" if self.model.training else "eval"
        g = self.num_generations if mode == "train" else self.num_generations_eval
        few_scored = (~unscorable).view(-1, g).sum(dim=1) < 2
        self._last_rewards_per_func = rewards_per_func
        self._last_unscorable = unscorable
        self._last_few_scored = few_scored
        metrics = self._metrics[mode]
        metrics["unscorable/fraction"].append(unscorable.float().mean().item())
        metrics["unscorable/groups_without_baseline"].append(few_scored.float().mean().item())
        for name, value in task_metrics(inputs, rewards_per_func, self.functional_index, self.accelerator).items():
            metrics[name].append(value)
        return rewards_per_func

    def _exclude_unscorable(self, output: dict[str, Any], n_local: int) -> dict[str, Any]:
        """Take the unscorable completions of this process out of the loss; no advantage for baseline-less groups.

        TRL already zeroes the advantage of a row whose rewards are all NaN; here its completion tokens also leave
        the loss mask (so they count in no normaliser, KL or entropy gate), and every row of a group with fewer than
        two scorable completions gets a zero advantage (whatever the aggregation mode).
        """
        if self._last_unscorable is None:
            return output
        g = self.num_generations if self.model.training else self.num_generations_eval
        start = self.accelerator.process_index * n_local
        device = output["completion_mask"].device
        unscorable = self._last_unscorable[start : start + n_local].to(device)
        no_baseline = self._last_few_scored.repeat_interleave(g)[start : start + n_local].to(device)
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

    def _prepare_inputs(self, generation_batch):
        if self._prepared_inputs is not None:  # prepared (generated, sliced) by training_step already
            prepared, self._prepared_inputs = self._prepared_inputs, None
            return prepared
        return super()._prepare_inputs(generation_batch)

    def training_step(self, model, inputs, num_items_in_batch):
        gen0, rew0, gs0 = self._gen_seconds.copy(), self._reward_seconds.copy(), self._gen_score_seconds.copy()
        start = _clock()
        wall0 = start[0]
        model.train()  # as Trainer.training_step does first: TRL's _prepare_inputs generates in train mode only
        if hasattr(self.optimizer, "train") and callable(self.optimizer.train):
            self.optimizer.train()
        prepared = self._prepare_inputs(inputs)  # TRL: generate every steps_per_generation, slice the buffer
        boundary = self.accelerator.sync_gradients
        has_loss = self._any_process(self._has_loss_tokens(prepared))
        # No forward/backward for a micro-batch without a loss token (padding after the last refill round, all
        # unscorable, all truncated and masked), unless gradients of this window still have to be synchronised.
        # A window of such micro-batches leaves every gradient None, so the optimizer does not step at all (a zero
        # gradient would still move Adam's moments and apply weight decay). The decision is the same on every
        # process, so collective operations stay matched.
        if has_loss or (boundary and self._window_backward):
            # TRL's step_time covers generation, which now happened above, before its training_step
            self._current_train_step_time += time.perf_counter() - wall0
            self._prepared_inputs = prepared
            try:
                out = super().training_step(model, inputs, num_items_in_batch)
            finally:
                self._prepared_inputs = None
            self._window_backward = True
        else:
            out = self._skip_micro_batch(wall0)
        if boundary:
            self._metrics["train"]["optimizer/skipped_steps"].append(0.0 if self._window_backward else 1.0)
            self._window_backward = False
        total = _Span().add_since(start)
        gen_score = self._gen_score_seconds.minus(gs0)
        metrics = self._metrics["train"]
        if gen_score.wall > 0:
            gen, rew = self._gen_seconds.minus(gen0), self._reward_seconds.minus(rew0)
            metrics["timing/generation_s"].append(gen.wall)
            metrics["timing/reward_s"].append(rew.wall)
            metrics["timing/generation_cpu_s"].append(gen.cpu)
            metrics["timing/reward_cpu_s"].append(rew.cpu)
        optimization = total.minus(gen_score)
        metrics["timing/optimization_s"].append(optimization.wall)
        metrics["timing/optimization_cpu_s"].append(optimization.cpu)
        metrics["timing/step_cpu_s"].append(total.cpu)
        return out

    def _skip_micro_batch(self, start: float) -> torch.Tensor:
        """TRL's per-micro-batch bookkeeping without the forward/backward (see :meth:`training_step`)."""
        self._step += 1
        self._current_train_step_time += time.perf_counter() - start
        if self._step % self.current_gradient_accumulation_steps == 0:
            self._metrics["train"]["step_time"].append(self._current_train_step_time)
            self._current_train_step_time = 0.0
        return torch.zeros((), device=self.args.device)

    @staticmethod
    def _has_loss_tokens(batch: dict[str, Any]) -> bool:
        loss_mask = batch["completion_mask"]
        if "tool_mask" in batch:
            loss_mask = loss_mask * batch["tool_mask"]
        return bool(loss_mask.sum().item() > 0)

    def _any_process(self, flag: bool) -> bool:
        if self.accelerator.num_processes == 1:
            return flag
        t = torch.tensor([int(flag)], device=self.accelerator.device, dtype=torch.long)
        return bool(self.accelerator.reduce(t, reduction="max").item())

    # ------------------------------------------------------------------------------------------ sampling

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
            rows.extend(dict(row) for _ in range(self.num_generations))
        return rows

    def _max_across_processes(self, value: int) -> int:
        t = torch.tensor([value], device=self.accelerator.device, dtype=torch.long)
        return int(self.accelerator.reduce(t, reduction="max").item()) if self.accelerator.num_processes > 1 else value

    def _sum_across_processes(self, *values: float) -> list[float]:
        t = torch.tensor(values, device=self.accelerator.device, dtype=torch.float64)
        if self.accelerator.num_processes > 1:
            t = self.accelerator.reduce(t, reduction="sum")
        return t.tolist()

    def _score_round(self, inputs: list[dict[str, Any]]):
        """Generate and score one round; return (output, this process's GroupFlags)."""
        start = _clock()
        output = self._exclude_unscorable(super()._generate_and_score_completions(inputs), len(inputs))
        self._round_seconds.add_since(start)
        g = self.num_generations
        flags = classify_groups(self._last_rewards_per_func, self.reward_weights, g,
                                signal=self.verirl_args.dynamic_sampling_signal,
                                functional_index=self.functional_index)
        groups_per_process = len(inputs) // g
        start = self.accelerator.process_index * groups_per_process
        local = slice(start, start + groups_per_process)
        return output, type(flags)(**{k: v[local].cpu() for k, v in vars(flags).items()})

    def _record_ids(self, key: str, rows: list[dict[str, Any]]) -> None:
        """Append this batch's task ids (all processes, one entry per group) to task_ids.jsonl."""
        if not self.verirl_args.record_task_ids or not rows:
            return
        from accelerate.utils import gather_object

        ids = [str(r.get("id")) for r in rows[:: self.num_generations]]
        if self.accelerator.num_processes > 1:
            ids = gather_object(ids)
        if self.accelerator.is_main_process:
            os.makedirs(self.args.output_dir, exist_ok=True)
            with open(os.path.join(self.args.output_dir, TASK_IDS_FILE), "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": self.state.global_step, key: ids}) + "\n")

    def _generate_and_score_completions(self, inputs):
        start = _clock()
        if self.model.training:
            self._record_ids("ids", inputs)
        try:
            if self.model.training and self.verirl_args.dynamic_sampling:
                return self._dynamic_generate(inputs)
            return self._exclude_unscorable(super()._generate_and_score_completions(inputs), len(inputs))
        finally:
            self._gen_score_seconds.add_since(start)

    def _dynamic_generate(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        start = _clock()
        self._round_seconds = _Span()
        result = self._dynamic_generate_rounds(inputs)
        # time spent in dynamic sampling itself (selection, joining, bookkeeping), not in generating and scoring
        own = _Span().add_since(start).minus(self._round_seconds)
        self._metrics["train"]["timing/dynamic_sampling_s"].append(own.wall)
        self._metrics["train"]["timing/dynamic_sampling_cpu_s"].append(own.cpu)
        return result

    def _dynamic_generate_rounds(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        va, g, state = self.verirl_args, self.num_generations, self.sampling_state
        target = len(inputs) // g
        factor = state.oversample_factor(va.adaptive_max_factor) if va.adaptive_sampling else 1.0
        oversampled = self._draw_groups(extra_groups(target, factor))
        self._record_ids("oversampled_ids", oversampled)
        first = list(inputs) + oversampled

        kept: list[dict] = []  # informative groups (as row selections)
        spare: list[dict] = []  # uninformative groups, used only if refilling falls short
        n_kept = n_informative = n_shaping_only = generated = rounds = 0
        spare_rows = 0
        batch = first
        while True:
            output, group_flags = self._score_round(batch)
            flags = group_flags.informative
            generated += flags.numel()
            n_informative += int(flags.sum())
            n_shaping_only += int(group_flags.shaping_only.sum())
            good = torch.nonzero(flags).view(-1)
            bad = torch.nonzero(~flags).view(-1)
            take = good[: max(0, target - n_kept)]
            if take.numel():
                kept.append(select_rows(output, group_rows(take, g)))
                n_kept += take.numel()
            if bad.numel() and spare_rows < target * g:
                spare.append(select_rows(output, group_rows(bad, g)))
                spare_rows += bad.numel() * g
            # every process must run the same number of rounds (generation and scoring are collective)
            need = self._max_across_processes(target - n_kept)
            if need <= 0 or rounds >= va.max_refill_rounds:
                break
            rounds += 1
            batch = self._draw_groups(need + (extra_groups(need, factor) if va.adaptive_sampling else 0))
            self._record_ids("refill_ids", batch)
        informative_total, gen_total, shaping_total = self._sum_across_processes(n_informative, generated,
                                                                                 n_shaping_only)
        state.update_keep_ratio(int(informative_total), int(gen_total), va.adaptive_ema)

        pad_groups = target - n_kept
        parts = list(kept)
        if pad_groups > 0:
            filler = select_rows(concat_batches(spare, self._tokenizer.pad_token_id), torch.arange(pad_groups * g))
            # padding only keeps the batch shape: no advantage, and no loss token, so it counts in no normaliser
            # (DAPO normalises over the kept groups) and a batch of nothing but padding makes no optimizer step
            filler["advantages"] = torch.zeros_like(filler["advantages"])
            filler["completion_mask"] = torch.zeros_like(filler["completion_mask"])
            parts.append(filler)
        result = concat_batches(parts, self._tokenizer.pad_token_id)
        result["num_items_in_batch"] = self._count_loss_tokens(result)

        pad_total, target_total = self._sum_across_processes(pad_groups, target)
        m = self._metrics["train"]
        m["dynamic_sampling/keep_ratio"].append(informative_total / max(gen_total, 1.0))
        m["dynamic_sampling/keep_ratio_ema"].append(state.keep_ratio_ema)
        m["dynamic_sampling/refill_rounds"].append(float(rounds))
        m["dynamic_sampling/groups_generated"].append(gen_total)
        m["dynamic_sampling/padded_fraction"].append(pad_total / max(target_total, 1.0))
        m["dynamic_sampling/shaping_only_fraction"].append(shaping_total / max(gen_total, 1.0))
        if va.adaptive_sampling:
            m["adaptive_sampling/factor"].append(factor)
        return result

    # ------------------------------------------------------------------------------------------ entropy gate

    def _compute_loss(self, model, inputs):
        self._gate_completion_ids = inputs["completion_ids"]
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._gate_completion_ids = None

    def get_high_entropy_mask(self, entropies, mask, threshold):
        start = _clock()
        gate = self.verirl_args.entropy_gate
        if gate.mode == "per_response":
            gated = per_response_mask(entropies, mask, gate.top_fraction)
        else:
            gated = super().get_high_entropy_mask(entropies, mask, threshold)
        self._log_gate(gated, mask)
        mode = "train" if self.model.training else "eval"
        own = _Span().add_since(start)
        self._metrics[mode]["timing/entropy_gate_s"].append(own.wall)
        self._metrics[mode]["timing/entropy_gate_cpu_s"].append(own.cpu)
        return gated

    def _log_gate(self, gated: torch.Tensor, mask: torch.Tensor) -> None:
        mode = "train" if self.model.training else "eval"
        totals = torch.stack([gated.sum().float(), mask.sum().float()])
        if self.accelerator.num_processes > 1:
            totals = self.accelerator.reduce(totals, reduction="sum")
        fraction = (totals[0] / totals[1].clamp(min=1.0)).item()
        self._metrics[mode]["entropy_gate/fraction"].append(fraction)
        gate = self.verirl_args.entropy_gate
        step = self.state.global_step
        if (
            mode == "train"
            and gate.log_tokens_every
            and step % gate.log_tokens_every == 0
            and step != self._last_gate_log_step
            and self._gate_completion_ids is not None
            and self.accelerator.is_main_process
        ):
            self._last_gate_log_step = step
            sample = gated_token_sample(self._gate_completion_ids, gated, self._tokenizer, gate.log_tokens_count)
            record = {"step": step, "fraction": fraction, "tokens": sample}
            os.makedirs(self.args.output_dir, exist_ok=True)
            with open(os.path.join(self.args.output_dir, GATED_TOKENS_FILE), "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            logger.info("step %d: entropy gate kept %.1f%% of tokens; most gated: %s", step, 100 * fraction,
                        ", ".join(f"{t!r}x{c}" for t, c in sample[:10]))

    # ------------------------------------------------------------------------------------------ checkpoints

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = os.path.join(self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}")
            with open(os.path.join(folder, STATE_FILE), "w", encoding="utf-8") as fh:
                json.dump({"sampling": self.sampling_state.to_dict()}, fh)

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is not None:
            path = os.path.join(checkpoint, STATE_FILE)
            if os.path.exists(path):
                with open(path, encoding="utf-8") as fh:
                    data = json.load(fh)
                self.sampling_state = SamplingState.from_dict(data.get("sampling", {}))
                self._refill = None
                logger.info("restored sampling state from %s: %s", path, self.sampling_state)


def _clock() -> tuple[float, float]:
    """(wall, CPU) seconds now. CPU counts every thread of this process and the tool processes it has waited for
    (the reward engine's), so it measures work: on a shared machine it barely moves with the load, wall time does."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), time.process_time() + children.ru_utime + children.ru_stime


class _Span:
    """Accumulated (wall, CPU) seconds."""

    __slots__ = ("cpu", "wall")

    def __init__(self, wall: float = 0.0, cpu: float = 0.0):
        self.wall, self.cpu = wall, cpu

    def add_since(self, start: tuple[float, float]) -> _Span:
        wall, cpu = _clock()
        self.wall += wall - start[0]
        self.cpu += cpu - start[1]
        return self

    def minus(self, other: _Span) -> _Span:
        return _Span(self.wall - other.wall, self.cpu - other.cpu)

    def copy(self) -> _Span:
        return _Span(self.wall, self.cpu)


def _scorability_columns(reward_funcs, functional_index: int | None) -> list[int]:
    """Rewards whose None means "the tools could not score this completion": the reward engine's rewards (their
    None is always an infrastructure or task fault) and the recipe's functional reward."""
    from rewards.trl import VerilogReward

    columns = {i for i, func in enumerate(reward_funcs) if isinstance(func, VerilogReward)}
    if functional_index is not None:
        columns.add(functional_index)
    return sorted(columns)


def _decode_row(row: dict[str, Any]) -> dict[str, Any]:
    """Undo verirl.train.data's JSON transport of the free-form ``files``/``metadata`` columns."""
    out = dict(row)
    for key in ("files", "metadata"):
        value = out.get(key)
        if isinstance(value, str):
            try:
                out[key] = json.loads(value) if value else {}
            except ValueError:
                pass
    return out


def build_grpo_trainer(recipe, *, model, tokenizer, train_dataset, eval_dataset, callbacks, peft_config,
                       quantization_config, reward_funcs) -> VerirlGRPOTrainer:
    """The GRPO/DAPO trainer of a parsed recipe."""
    return VerirlGRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=recipe.training,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
        peft_config=peft_config,
        quantization_config=quantization_config,
        verirl_args=recipe.verirl,
    )
