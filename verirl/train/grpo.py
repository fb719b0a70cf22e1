"""GRPO and DAPO on TRL's ``GRPOTrainer``, plus what TRL lacks for Verilog RL.

TRL already does the GRPO loop, the loss variants (``grpo``/``dapo``/``dr_grpo``/``bnpo``), clip-higher
(``epsilon_high``), KL and the reference model, ``mask_truncated_completions``, the batch-level entropy mask
(``top_entropy_quantile``), vLLM rollouts and per-reward metrics. :class:`VerirlGRPOTrainer` adds, by overriding
a few hooks:

* **dynamic sampling** (:meth:`_generate_and_score_completions`): groups whose rewards all agree are dropped and
  the batch is refilled with fresh prompts from a seeded, resumable stream (:class:`~verirl.train.sampling.RefillStream`)
  for up to ``max_refill_rounds`` extra generation rounds; if it is still short, dropped groups fill the remaining
  slots with zero advantage (logged as ``dynamic_sampling/padded_fraction``);
* **adaptive sampling**: the first round already draws ``1 / keep_ratio`` times the prompts, with the keep ratio a
  moving average that goes up when the model improves as well as down;
* **per-response entropy gate** (:meth:`get_high_entropy_mask`), gate-fraction metric and a periodic sample of the
  gated tokens written to ``<output_dir>/gated_tokens.jsonl``;
* **timings**: generation, reward and optimisation seconds per step;
* **checkpoint state**: the sampling state is saved next to each checkpoint and restored on resume.
"""

from __future__ import annotations

import json
import logging
import os
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
    concat_batches,
    extra_groups,
    group_rewards,
    group_rows,
    informative_groups,
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
        self._gen_seconds = 0.0
        self._reward_seconds = 0.0
        self._gen_score_seconds = 0.0
        self._round_seconds = 0.0
        self._last_rewards_per_func: torch.Tensor | None = None
        self._gate_completion_ids: torch.Tensor | None = None
        self._last_gate_log_step = -1

    # ------------------------------------------------------------------------------------------ timings

    def _generate(self, prompts):
        start = time.perf_counter()
        try:
            return super()._generate(prompts)
        finally:
            self._gen_seconds += time.perf_counter() - start

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        start = time.perf_counter()
        inputs = [_decode_row(row) for row in inputs]
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._reward_seconds += time.perf_counter() - start
        self._last_rewards_per_func = rewards_per_func
        mode = "train" if self.model.training else "eval"
        for name, value in task_metrics(
            inputs, rewards_per_func, self.reward_func_names, self.accelerator
        ).items():
            self._metrics[mode][name].append(value)
        return rewards_per_func

    def training_step(self, model, inputs, num_items_in_batch):
        gen0, rew0, gs0 = self._gen_seconds, self._reward_seconds, self._gen_score_seconds
        start = time.perf_counter()
        out = super().training_step(model, inputs, num_items_in_batch)
        total = time.perf_counter() - start
        gen_score = self._gen_score_seconds - gs0
        metrics = self._metrics["train"]
        if gen_score > 0:
            metrics["timing/generation_s"].append(self._gen_seconds - gen0)
            metrics["timing/reward_s"].append(self._reward_seconds - rew0)
        metrics["timing/optimization_s"].append(total - gen_score)
        return out

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
        """Generate and score one round; return (output, local informative flags per group)."""
        start = time.perf_counter()
        output = super()._generate_and_score_completions(inputs)
        self._round_seconds += time.perf_counter() - start
        g = self.num_generations
        grouped = group_rewards(self._last_rewards_per_func, self.reward_weights, g)
        flags = informative_groups(grouped)
        groups_per_process = len(inputs) // g
        start = self.accelerator.process_index * groups_per_process
        return output, flags[start : start + groups_per_process].cpu()

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
        start = time.perf_counter()
        if self.model.training:
            self._record_ids("ids", inputs)
        try:
            if self.model.training and self.verirl_args.dynamic_sampling:
                return self._dynamic_generate(inputs)
            return super()._generate_and_score_completions(inputs)
        finally:
            self._gen_score_seconds += time.perf_counter() - start

    def _dynamic_generate(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        start = time.perf_counter()
        self._round_seconds = 0.0
        result = self._dynamic_generate_rounds(inputs)
        # time spent in dynamic sampling itself (selection, joining, bookkeeping), not in generating and scoring
        own = time.perf_counter() - start - self._round_seconds
        self._metrics["train"]["timing/dynamic_sampling_s"].append(own)
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
        n_kept = n_informative = generated = rounds = 0
        spare_rows = 0
        batch = first
        while True:
            output, flags = self._score_round(batch)
            generated += flags.numel()
            n_informative += int(flags.sum())
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
        informative_total, gen_total = self._sum_across_processes(n_informative, generated)
        state.update_keep_ratio(int(informative_total), int(gen_total), va.adaptive_ema)

        pad_groups = target - n_kept
        parts = list(kept)
        if pad_groups > 0:
            filler = select_rows(concat_batches(spare, self._tokenizer.pad_token_id), torch.arange(pad_groups * g))
            filler["advantages"] = torch.zeros_like(filler["advantages"])  # no signal: no policy gradient
            parts.append(filler)
        result = concat_batches(parts, self._tokenizer.pad_token_id)
        loss_mask = result["completion_mask"]
        if "tool_mask" in result:
            loss_mask = loss_mask * result["tool_mask"]
        result["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()

        pad_total, target_total = self._sum_across_processes(pad_groups, target)
        m = self._metrics["train"]
        m["dynamic_sampling/keep_ratio"].append(informative_total / max(gen_total, 1.0))
        m["dynamic_sampling/keep_ratio_ema"].append(state.keep_ratio_ema)
        m["dynamic_sampling/refill_rounds"].append(float(rounds))
        m["dynamic_sampling/groups_generated"].append(gen_total)
        m["dynamic_sampling/padded_fraction"].append(pad_total / max(target_total, 1.0))
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
        start = time.perf_counter()
        gate = self.verirl_args.entropy_gate
        if gate.mode == "per_response":
            gated = per_response_mask(entropies, mask, gate.top_fraction)
        else:
            gated = super().get_high_entropy_mask(entropies, mask, threshold)
        self._log_gate(gated, mask)
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["timing/entropy_gate_s"].append(time.perf_counter() - start)
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
