"""TRL's private surface, named in this one module.

verirl's GRPO trainer needs a few steps of ``trl.GRPOTrainer`` for which TRL has no public hook. This is the only
verirl module that names them: :class:`GRPOHooks` overrides them and forwards to hook methods with public names
(``adjust_rewards``, ``generate_and_score``, ``score_round``, ``prepare_batch``, ``metrics``,
``skip_micro_batch``), which :class:`verirl.train.grpo.VerirlGRPOTrainer` uses. Everything else verirl does
with TRL goes through public API: ``compute_loss``, ``get_high_entropy_mask``, ``training_step``, ``train``,
``log``, callbacks and the config.

``tests/train/test_trl_canary.py`` checks every entry below against the installed TRL (presence, parameters, the
output keys of a generation round, the bookkeeping :meth:`GRPOHooks.skip_micro_batch` repeats, the aggregation
options), so a TRL upgrade that moves one fails with a message that names it, and checks that no other verirl
module names a private member of TRL's or Transformers' trainers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from trl import GRPOTrainer

from verirl.train.timing import Phases, clock

logger = logging.getLogger(__name__)

#: private methods of ``trl.GRPOTrainer`` that verirl overrides or calls: name → (parameters after ``self``, why)
PRIVATE_METHODS: dict[str, tuple[tuple[str, ...], str]] = {
    "_generate": (("prompts",), "generation seconds per step (timing/generation_s)"),
    "_calculate_rewards": (
        ("inputs", "prompts", "completions", "completion_ids_list"),
        ("unscorable completions are masked (NaN rows) before TRL computes advantages; the reward matrix of the "
         "round is what dynamic sampling classifies"),
    ),
    "_generate_and_score_completions": (("inputs",), "dynamic sampling: several generation rounds per batch"),
    "_prepare_inputs": (("generation_batch",), "a micro-batch is generated before deciding to skip it"),
}

#: private attributes of ``trl.GRPOTrainer`` that verirl reads or writes: name → why
PRIVATE_ATTRIBUTES: dict[str, str] = {
    "_metrics": "verirl's metrics are logged with TRL's ({mode: {name: [values]}}, averaged per logging step)",
    "_step": "TRL's micro-step counter (drives when TRL generates); advanced for a skipped micro-batch",
    "_current_train_step_time": "TRL's step_time accumulator; generation time is added when it runs first",
}

#: internals of the libraries under TRL that verirl touches: (owner, name) → why
LIBRARY_INTERNALS: dict[tuple[str, str], str] = {
    ("accelerate.state.PartialState", "_shared_state"): "multi-process CPU runs train on `cpu`, not `cpu:0`",
    ("transformers.TrainingArguments", "_setup_devices"): "the cached device of the training arguments",
}

#: keys of a generation round's output (``_generate_and_score_completions``), by how dynamic sampling re-batches
#: them: prompt-aligned tensors (left-padded), completion-aligned tensors (right-padded), one value per row, and
#: values the trainer recomputes after re-batching
PROMPT_KEYS = ("prompt_ids", "prompt_mask")
COMPLETION_KEYS = (
    "completion_ids",
    "completion_mask",
    "old_per_token_logps",
    "ref_per_token_logps",
    "sampling_per_token_logps",
    "importance_sampling_ratio",
    "tool_mask",
)
ROW_KEYS = ("advantages",)
RECOMPUTED_KEYS = ("num_items_in_batch",)
#: output keys of vision-language models, which dynamic sampling refuses (text-only generation)
MULTIMODAL_KEYS = ("pixel_values", "image_grid_thw", "pixel_attention_mask", "spatial_shapes", "image_sizes",
                   "token_type_ids", "mm_token_type_ids", "image_position_ids", "num_images", "num_tiles")

#: TRL's ``GRPOTrainer.training_step``, statement by statement (``ast.unparse``), as
#: :meth:`GRPOHooks.skip_micro_batch` repeats its bookkeeping for a micro-batch that runs no forward/backward
TRAINING_STEP_STATEMENTS = (
    "time_before = time.perf_counter()",
    "output = super().training_step(model, inputs, num_items_in_batch)",
    "self._step += 1",
    "time_after = time.perf_counter()",
    "self._current_train_step_time += time_after - time_before",
    ("if self._step % self.current_gradient_accumulation_steps == 0:\n"
     "    self._metrics['train']['step_time'].append(self._current_train_step_time)\n"
     "    self._current_train_step_time = 0.0"),
    "return output",
)

#: values of ``GRPOConfig.multi_objective_aggregation`` that ``verirl.train.sampling.total_varies`` follows
AGGREGATIONS = ("sum_then_normalize", "normalize_then_sum")


class PreparedBatch(dict):
    """A micro-batch already generated and sliced by TRL (``prepare_batch``): TRL does not prepare it again."""


@dataclass
class ScoredRound:
    """One generation round: TRL's output for this process and the reward matrix of every process's completions
    (after :meth:`GRPOHooks.adjust_rewards`; rows in TRL's gathered order)."""

    output: dict[str, Any]
    rewards: torch.Tensor


class GRPOHooks(GRPOTrainer):
    """``GRPOTrainer`` whose private steps call hook methods with public names."""

    def __init__(self, *args, **kwargs):
        #: (wall, CPU) seconds spent in TRL's generation (``generation``) and reward calculation (``reward``), and
        #: in the subclass's phases, cumulative
        self.phase_seconds = Phases()
        self._verirl_round_rewards: list[torch.Tensor] | None = None  # set only inside score_round
        super().__init__(*args, **kwargs)

    # -------------------------------------------------------------------------------------- hooks

    def adjust_rewards(self, inputs: list[dict[str, Any]], rewards_per_func: torch.Tensor) -> torch.Tensor:
        """TRL's reward matrix (every process's completions × reward functions, None as NaN) for ``inputs`` (this
        process's rows), before TRL turns it into advantages. Override to change it."""
        return rewards_per_func

    def generate_and_score(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        """One generation batch → TRL's training inputs. Override to generate several rounds."""
        return self.score_round(inputs).output

    def score_round(self, inputs: list[dict[str, Any]]) -> ScoredRound:
        """Generate and score ``inputs`` once with TRL; the output and the reward matrix it was built from."""
        captured: list[torch.Tensor] = []
        self._verirl_round_rewards = captured
        try:
            output = super()._generate_and_score_completions(inputs)
        finally:
            self._verirl_round_rewards = None
        if len(captured) != 1:
            raise RuntimeError(
                f"trl.GRPOTrainer._generate_and_score_completions computed rewards {len(captured)} times for one "
                f"batch (verirl expects once); this TRL version changed it: update verirl/train/trl_hooks.py"
            )
        return ScoredRound(output, captured[0])

    def prepare_batch(self, generation_batch: Any) -> PreparedBatch:
        """TRL's micro-batch preparation (generating every ``steps_per_generation`` steps, then slicing)."""
        return PreparedBatch(super()._prepare_inputs(generation_batch))

    def metrics(self, mode: str) -> dict[str, list[float]]:
        """TRL's metric store for ``mode`` (``train``/``eval``): lists of values averaged per logging step."""
        return self._metrics[mode]

    def add_step_time(self, seconds: float) -> None:
        """Count ``seconds`` into TRL's ``step_time`` of the current optimizer step."""
        self._current_train_step_time += seconds

    def skip_micro_batch(self, seconds: float) -> None:
        """TRL's per-micro-batch bookkeeping of ``training_step`` for a micro-batch that runs no forward/backward."""
        self._step += 1
        self._current_train_step_time += seconds
        if self._step % self.current_gradient_accumulation_steps == 0:
            self._metrics["train"]["step_time"].append(self._current_train_step_time)
            self._current_train_step_time = 0.0

    # -------------------------------------------------------------------------------------- TRL's private steps

    def _generate(self, prompts):
        start = clock()
        try:
            return super()._generate(prompts)
        finally:
            self.phase_seconds["generation"].add_since(start)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        start = clock()
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self.phase_seconds["reward"].add_since(start)
        rewards = self.adjust_rewards(inputs, rewards)
        if self._verirl_round_rewards is not None:
            self._verirl_round_rewards.append(rewards)
        return rewards

    def _generate_and_score_completions(self, inputs):
        return self.generate_and_score(inputs)

    def _prepare_inputs(self, generation_batch):
        if isinstance(generation_batch, PreparedBatch):  # prepared by prepare_batch already
            return generation_batch
        return super()._prepare_inputs(generation_batch)


def use_plain_cpu_device(training) -> None:
    """Train CPU processes on the device ``cpu``, not ``cpu:0``.

    accelerate gives every rank of a multi-process CPU run ``torch.device("cpu", 0)``, and Transformers loads a
    checkpoint's optimizer state with that device as ``map_location`` when there are several processes; torch only
    restores storages tagged exactly ``cpu``, so resuming failed with "don't know how to restore data location of
    torch.storage.UntypedStorage (tagged with cpu:0)". The process state (shared by every Accelerator built later)
    and the training arguments' cached device are reset to plain ``cpu``; nothing else changes.
    """
    device = getattr(training, "device", None)
    if not isinstance(device, torch.device) or device.type != "cpu" or device.index is None:
        return
    from accelerate.state import PartialState

    plain = torch.device("cpu")
    if PartialState._shared_state.get("device") is not None:
        PartialState._shared_state["device"] = plain
    training.__dict__["_setup_devices"] = plain  # TrainingArguments.device reads this cached property
    logger.debug("training device %s -> %s", device, plain)
