"""verirl's trainer settings as subclasses of TRL's configs (as open-r1 does): one config object per run.

* :class:`VerirlSFTConfig` (``trl.SFTConfig``), :class:`VerirlDPOConfig` (``trl.DPOConfig``) and
  :class:`VerirlGRPOConfig` (``trl.GRPOConfig``, trainers ``grpo`` and ``dapo``) add verirl's fields to TRL's:
  the data fields of every trainer (:class:`DataFields`: dataset, prompt rendering, held-out rows) and, for
  GRPO, the rewards, dynamic/adaptive sampling and the entropy gate.
* Every field carries its help text once; ``__post_init__`` rejects bad combinations with a message that says what
  to change (:class:`~verirl.errors.RecipeError`, a ``ValueError``).
* They are TRL configs: Trainer saves them with every checkpoint (``training_args.bin``), and ``trl.TrlParser``
  (``transformers.HfArgumentParser``) parses them: nested settings (``rewards``, ``entropy_gate``) are accepted
  as YAML/JSON text on a command line, as TRL does for its own dict-valued fields.
* TRL's own keys work: ``reward_weights`` is accepted when it agrees with the ``rewards`` list (which stays the
  single source of weights: after parsing each :class:`RewardSpec` carries its weight and ``reward_weights`` is
  their list), and ``top_entropy_quantile`` alone is the batch-mode entropy gate.

Recipes (``verirl.config.load_recipe``) add trainer presets (DAPO) and ``key=value`` overrides on top.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from trl import DPOConfig, GRPOConfig, SFTConfig

from data_pipeline.prompting import DEFAULT_TEMPLATE, PromptError, check_template
from data_pipeline.yaml_loader import parse_scalar
from verirl.errors import RecipeError

logger = logging.getLogger("verirl.config")

ENTROPY_GATE_MODES = ("off", "batch", "per_response")
DEFAULT_TOP_FRACTION = 0.2

#: rewards whose value says how correct a completion is (1.0: every check passed), in order of preference, when a
#: recipe does not name its `functional_reward`
FUNCTIONAL_REWARDS = ("simulation", "equivalence")

#: what makes a group informative for dynamic sampling (`dynamic_sampling_signal`)
DYNAMIC_SAMPLING_SIGNALS = {
    "pass": "the functional pass: at least one scored completion passes and at least one fails (DAPO)",
    "functional": "the functional reward's values (e.g. partial credit) differ among the scored completions",
    "total": "the aggregated reward differs (TRL's zero-std test; shaping rewards count)",
}

#: TRL loss types whose normaliser counts sequences or a fixed length, so rows without loss tokens (padding,
#: unscorable completions) still dilute the step
SEQUENCE_NORMALISED_LOSSES = ("grpo", "sapo", "dr_grpo", "luspo")


def _help(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING):
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


def _from_text(value: Any, name: str) -> Any:
    """A nested setting given as YAML/JSON text (a command line through ``TrlParser``) → its value."""
    if isinstance(value, str):
        parsed = parse_scalar(value)
        if isinstance(parsed, str):
            raise RecipeError(f"{name}={value!r}: expected a YAML/JSON mapping or list")
        return parsed
    return value


# --------------------------------------------------------------------------------------------- nested settings


@dataclass
class RewardSpec:
    """One entry of a recipe's ``rewards:`` list."""

    name: str = _help("registry name (rewards.trl.REWARDS) or `module:attr` path")
    weight: float | None = _help(
        "weight in TRL's reward_weights (default: the matching entry of reward_weights, else 1.0)", None
    )
    kwargs: dict[str, Any] = _help("settings passed to the reward", factory=dict)  # noqa: RUF009

    @classmethod
    def parse(cls, entry: Any, index: int) -> RewardSpec:
        if isinstance(entry, RewardSpec):
            spec = RewardSpec(entry.name, entry.weight, dict(entry.kwargs))
        elif isinstance(entry, str):
            spec = RewardSpec(name=entry)
        elif isinstance(entry, dict):
            unknown = set(entry) - {"name", "weight", "kwargs"}
            if unknown:
                raise RecipeError(
                    f"rewards[{index}]: unknown key(s) {sorted(unknown)}; an entry is {{name, weight, kwargs}} — "
                    f"put reward settings under `kwargs:`"
                )
            if "name" not in entry:
                raise RecipeError(f"rewards[{index}]: missing `name:` (e.g. simulation)")
            spec = RewardSpec(name=str(entry["name"]), weight=entry.get("weight"), kwargs=entry.get("kwargs") or {})
        else:
            raise RecipeError(f"rewards[{index}]: expected a mapping {{name, weight, kwargs}}, got {entry!r}")
        if spec.weight is not None and (not isinstance(spec.weight, (int, float)) or isinstance(spec.weight, bool)):
            raise RecipeError(f"rewards[{index}] ({spec.name}): weight must be a number, got {spec.weight!r}")
        if not isinstance(spec.kwargs, dict):
            raise RecipeError(f"rewards[{index}] ({spec.name}): kwargs must be a mapping, got {spec.kwargs!r}")
        if spec.weight is not None:
            spec.weight = float(spec.weight)
        return spec


@dataclass
class EntropyGateArgs:
    """Entropy-gated token updates (only the highest-entropy tokens carry the policy gradient)."""

    mode: str = _help(
        "`off`; `batch`: TRL's top_entropy_quantile (one threshold over all tokens of the batch, gathered across "
        "processes); `per_response`: the top fraction of each response's own tokens", "off"
    )
    top_fraction: float | None = _help(
        f"fraction of completion tokens that are updated; it is TRL's top_entropy_quantile (default: "
        f"top_entropy_quantile when set below 1, else {DEFAULT_TOP_FRACTION})", None
    )
    log_tokens_every: int = _help("log a sample of gated tokens every N optimizer steps (0: never)", 10)
    log_tokens_count: int = _help("how many gated tokens each sample shows", 32)

    def __post_init__(self):
        if self.mode not in ENTROPY_GATE_MODES:
            raise RecipeError(f"entropy_gate.mode={self.mode!r}: use one of {', '.join(ENTROPY_GATE_MODES)}")
        if self.top_fraction is not None and not 0.0 < self.top_fraction <= 1.0:
            raise RecipeError(f"entropy_gate.top_fraction={self.top_fraction}: use a value in (0, 1]")
        if self.log_tokens_every < 0 or self.log_tokens_count < 1:
            raise RecipeError("entropy_gate.log_tokens_every must be >= 0 and log_tokens_count >= 1")

    @classmethod
    def parse(cls, value: Any) -> EntropyGateArgs:
        value = _from_text(value, "entropy_gate")
        if value is None:
            return cls()
        if isinstance(value, cls):
            return dataclasses.replace(value)
        if not isinstance(value, dict):
            raise RecipeError(f"entropy_gate: expected a mapping {{mode, top_fraction, ...}}, got {value!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise RecipeError(f"entropy_gate: unknown key(s) {unknown}; valid keys: {sorted(names)}")
        return cls(**value)


def _serializable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
        return [dataclasses.asdict(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------- data fields


@dataclass
class DataFields:
    """Fields every verirl trainer config has: where the data comes from and how prompts are rendered."""

    trainer: str = _help("which verirl trainer this config is for: sft, grpo, dapo or dpo "
                         "(`dapo` presets are applied by verirl.config.load_recipe)", "")
    dataset: str = _help(
        "training data: a JSONL or Parquet file, a folder written by datasets' save_to_disk, or a folder of JSONL "
        "files. RL trainers read the task schema (id, prompt, top, reference, ...); SFT reads prompt/completion or "
        "messages (tasks with a `reference` are turned into prompt/completion); DPO reads prompt/chosen/rejected. "
        "Needed when the trainer loads its own data (recipes); not when datasets are passed to the trainer", ""
    )
    dataset_split: str = _help("split to read from a DatasetDict folder", "train")
    eval_dataset: str | None = _help("optional evaluation data, same formats", None)
    eval_split: float | None = _help(
        "hold out training rows for evaluation, chosen by a hash of each row's id (or content): a fraction in (0, 1) "
        "holds out the rows whose hash falls below it (a row keeps its side when the dataset grows or is "
        "reordered), a count >= 1 the rows with the lowest hashes; needs eval_strategy other than `no`, and "
        "excludes eval_dataset", None
    )
    max_train_samples: int | None = _help("use only the first N training rows", None)
    prompt_template: str = _help(
        "Python format string applied to a task's text prompt; fields: prompt, top, id", DEFAULT_TEMPLATE
    )
    system_prompt: str | None = _help("system message prepended to every prompt", None)

    def _check_data_fields(self, trainers: tuple[str, ...]) -> None:
        if not self.trainer:
            self.trainer = trainers[0]
        if self.trainer not in trainers:
            raise RecipeError(
                f"trainer={self.trainer!r} does not use {type(self).__name__}; it serves {', '.join(trainers)}"
            )
        if self.eval_split is not None:
            value = self.eval_split
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise RecipeError(f"eval_split={value!r}: use a fraction in (0, 1) or a row count >= 1")
            if value >= 1 and float(value) != int(value):
                raise RecipeError(
                    f"eval_split={value!r}: a count of rows must be a whole number (or use a fraction < 1)"
                )
            if self.eval_dataset:
                raise RecipeError("set either eval_dataset (separate evaluation data) or eval_split (held-out rows)")
            if str(getattr(self.eval_strategy, "value", self.eval_strategy)) == "no":
                raise RecipeError(
                    "eval_split holds rows out for evaluation but eval_strategy is `no`; set eval_strategy: steps "
                    "and eval_steps: N (or remove eval_split)"
                )
        try:
            check_template(self.prompt_template)
        except PromptError as exc:
            raise RecipeError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        """TrainingArguments.to_dict with verirl's nested settings as plain mappings (logged as JSON)."""
        return {k: _serializable(v) for k, v in super().to_dict().items()}


@dataclass
class VerirlSFTConfig(DataFields, SFTConfig):
    """``trl.SFTConfig`` plus verirl's data fields."""

    def __post_init__(self):
        self._check_data_fields(("sft",))
        super().__post_init__()


@dataclass
class VerirlDPOConfig(DataFields, DPOConfig):
    """``trl.DPOConfig`` plus verirl's data fields (pairs must have been sampled with this prompt rendering)."""

    def __post_init__(self):
        self._check_data_fields(("dpo",))
        super().__post_init__()


# --------------------------------------------------------------------------------------------- GRPO / DAPO


@dataclass
class VerirlGRPOConfig(DataFields, GRPOConfig):
    """``trl.GRPOConfig`` plus verirl's rewards, dynamic/adaptive sampling and entropy gate (trainers grpo, dapo)."""

    rewards: list[RewardSpec] | str | None = _help(  # noqa: RUF009
        "list of {name, weight, kwargs}; the one place rewards and their weights are set (reward_weights is "
        "derived from it). Empty: the reward functions are passed to the trainer directly", None
    )
    functional_reward: str | None = _help(
        "the reward (a `name` of the rewards list, or the attribute part of a `module:attr` name) whose value says "
        "how correct a completion is (1.0: passed) and whose None means the tools could not score it. Default: the "
        "first `simulation` or `equivalence` reward. Drives the pass signal of dynamic sampling, the pass-rate "
        "metrics and the exclusion of unscorable completions", None
    )
    dynamic_sampling: bool = _help(
        "drop groups that carry no signal and refill the batch with fresh prompts (DAPO)", False
    )
    dynamic_sampling_signal: str = _help(
        "what makes a group informative: `pass` (DAPO: 0 < #passing < #scored, on the functional reward), "
        "`functional` (the functional reward's values differ, e.g. partial credit) or `total` (the aggregated "
        "reward differs, TRL's zero-std test, so shaping rewards alone keep a group)", "pass"
    )
    max_refill_rounds: int = _help("extra generation rounds per step that dynamic sampling may spend refilling", 4)
    adaptive_sampling: bool = _help(
        "draw 1/keep_ratio times the prompts per step, with the keep ratio tracked as a moving average that moves "
        "both ways (CodeV-R1-style, but able to recover); needs dynamic_sampling", False
    )
    adaptive_ema: float = _help("weight of the newest keep ratio in the average", 0.5)
    adaptive_max_factor: float = _help("cap on the oversampling factor", 4.0)
    entropy_gate: EntropyGateArgs | str | None = _help(  # noqa: RUF009
        "{mode, top_fraction, log_tokens_every, log_tokens_count}; see EntropyGateArgs. `top_entropy_quantile` "
        "alone selects mode `batch`", None
    )
    record_task_ids: bool = _help(
        "append the task ids of every generation batch (and of its refills) to <output_dir>/task_ids.jsonl, to "
        "audit the data order, e.g. across a resume", False
    )
    reward_cache_dir: str | None = _help(
        "folder of the reward engine's on-disk score cache (default: <output_dir>/reward_cache; one SQLite file per "
        "process); it survives a restart, so a resumed run does not re-simulate. Rewards whose kwargs set "
        "cache_path keep their own", None
    )

    def __post_init__(self):
        self._check_data_fields(("grpo", "dapo"))
        self.rewards = [RewardSpec.parse(r, i) for i, r in enumerate(_from_text(self.rewards, "rewards") or [])]
        self._resolve_reward_weights()
        self._resolve_entropy_gate()
        super().__post_init__()
        self._check_sampling()
        self._tie_overlong()
        self._warn_about_updates_per_rollout()

    # -- the rewards list is the single source of weights

    def _resolve_reward_weights(self) -> None:
        if not self.rewards:
            return
        given = self.reward_weights
        if given is not None:
            if len(given) != len(self.rewards):
                raise RecipeError(
                    f"reward_weights has {len(given)} values but `rewards:` lists {len(self.rewards)} rewards; give "
                    f"each reward its `weight:` and remove reward_weights"
                )
            for i, (spec, weight) in enumerate(zip(self.rewards, given, strict=True)):
                if spec.weight is None:
                    spec.weight = float(weight)
                elif spec.weight != float(weight):
                    raise RecipeError(
                        f"rewards[{i}] ({spec.name}) has weight {spec.weight} but reward_weights[{i}] is {weight}; "
                        f"set each weight in one place (the reward's `weight:`)"
                    )
        for spec in self.rewards:
            if spec.weight is None:
                spec.weight = 1.0
        self.reward_weights = [spec.weight for spec in self.rewards]

    # -- entropy gate: one value, TRL's top_entropy_quantile

    def _resolve_entropy_gate(self) -> None:
        gate = EntropyGateArgs.parse(self.entropy_gate)
        quantile = self.top_entropy_quantile
        if gate.mode == "off":  # a top_fraction given with mode off is ignored (switching a recipe's gate off)
            if quantile < 1.0:  # TRL's key alone: its batch-level gate
                gate = dataclasses.replace(gate, mode="batch", top_fraction=quantile)
        elif gate.top_fraction is None:
            gate.top_fraction = quantile if quantile < 1.0 else DEFAULT_TOP_FRACTION
        elif quantile < 1.0 and quantile != gate.top_fraction:
            raise RecipeError(
                f"entropy_gate.top_fraction={gate.top_fraction} but top_entropy_quantile={quantile}; set the "
                f"fraction in one place"
            )
        if gate.mode != "off":
            self.top_entropy_quantile = float(gate.top_fraction)
        self.entropy_gate = gate

    # -- dynamic sampling, functional reward

    def functional_index(self, names: list[str] | None = None) -> int | None:
        """Position of the functional reward (see ``functional_reward``) among ``names`` (default: the recipe's
        reward names), or None. A name matches a reward's name or the attribute part of a ``module:attr`` name."""
        names = [r.name for r in self.rewards] if names is None else list(names)
        if self.functional_reward:
            wanted = self.functional_reward
            for i, name in enumerate(names):
                if wanted in (name, name.rpartition(":")[2]):
                    return i
            raise RecipeError(
                f"functional_reward={wanted!r} names none of the rewards ({', '.join(names)}); use one of their "
                f"names"
            )
        for wanted in FUNCTIONAL_REWARDS:
            if wanted in names:
                return names.index(wanted)
        return None

    def check_functional_reward(self, names: list[str]) -> int | None:
        """The functional reward's index among ``names``; an error when the sampling signal needs one and there is
        none."""
        index = self.functional_index(names)
        if self.dynamic_sampling and self.dynamic_sampling_signal != "total" and index is None:
            raise RecipeError(
                f"dynamic_sampling_signal: {self.dynamic_sampling_signal} tests the functional reward, and the "
                f"reward list ({', '.join(names)}) has none: add a `simulation` or `equivalence` reward, name the "
                f"reward that says whether a completion is correct with `functional_reward: NAME`, or set "
                f"`dynamic_sampling_signal: total`"
            )
        return index

    def _check_sampling(self) -> None:
        if self.dynamic_sampling_signal not in DYNAMIC_SAMPLING_SIGNALS:
            raise RecipeError(
                f"dynamic_sampling_signal={self.dynamic_sampling_signal!r}: use one of "
                f"{', '.join(DYNAMIC_SAMPLING_SIGNALS)}"
            )
        if self.adaptive_sampling and not self.dynamic_sampling:
            raise RecipeError("adaptive_sampling needs dynamic_sampling: true (it scales by the keep ratio)")
        if self.max_refill_rounds < 0:
            raise RecipeError("max_refill_rounds must be >= 0")
        if not 0.0 < self.adaptive_ema <= 1.0:
            raise RecipeError("adaptive_ema must be in (0, 1]")
        if self.adaptive_max_factor < 1.0:
            raise RecipeError("adaptive_max_factor must be >= 1")
        if self.rewards:
            self.check_functional_reward([r.name for r in self.rewards])
        if self.dynamic_sampling:
            if self.num_generations < 2:
                raise RecipeError("dynamic_sampling needs num_generations >= 2 (a group of one has no variance)")
            local = self.per_device_train_batch_size * self.steps_per_generation
            if local % self.num_generations:
                raise RecipeError(
                    f"dynamic_sampling keeps or drops whole groups on each process, so "
                    f"per_device_train_batch_size*steps_per_generation ({local}) must be a multiple of "
                    f"num_generations ({self.num_generations}); change one of them"
                )
            if self.loss_type in SEQUENCE_NORMALISED_LOSSES:
                logger.warning(
                    "dynamic_sampling with loss_type=%s: padded groups and unscorable completions carry no loss "
                    "tokens, but this loss averages over sequences (or a fixed length), so they still shrink the "
                    "step; loss_type dapo or bnpo normalise over the tokens that count", self.loss_type,
                )

    def _tie_overlong(self) -> None:
        """The overlong reward's length is max_completion_length (it follows command-line overrides)."""
        limit = self.max_completion_length
        for spec in self.rewards:
            if spec.name != "overlong":
                continue
            given = spec.kwargs.get("max_completion_len")
            if given is None:
                spec.kwargs = {**spec.kwargs, "max_completion_len": limit}
            elif given != limit:
                raise RecipeError(
                    f"the overlong reward's max_completion_len ({given}) differs from max_completion_length "
                    f"({limit}); remove max_completion_len from its kwargs, it follows max_completion_length"
                )
            cache = spec.kwargs.get("soft_punish_cache")
            if isinstance(cache, (int, float)) and not isinstance(cache, bool) and not 0 <= cache < limit:
                raise RecipeError(
                    f"the overlong reward's soft_punish_cache ({cache}) must be below max_completion_length "
                    f"({limit}); it is the window before the limit in which the penalty grows"
                )

    def _warn_about_updates_per_rollout(self) -> None:
        updates = self.num_iterations * self.steps_per_generation / self.gradient_accumulation_steps
        if self.epsilon_high is not None and self.epsilon_high != self.epsilon and updates <= 1:
            logger.warning(
                "epsilon_high=%s (clip-higher) has no effect: with num_iterations=1 and steps_per_generation <= "
                "gradient_accumulation_steps every rollout gets one optimizer step, so the policy ratio stays 1. Set "
                "steps_per_generation to a multiple of gradient_accumulation_steps (DAPO: several mini-batch updates "
                "per rollout) or num_iterations > 1", self.epsilon_high,
            )
        save_steps = self.save_steps
        if (
            updates > 1
            and float(updates).is_integer()
            and str(getattr(self.save_strategy, "value", self.save_strategy)) == "steps"
            and isinstance(save_steps, (int, float)) and save_steps >= 1
            and save_steps % updates
        ):
            logger.warning(
                "save_steps=%s puts checkpoints inside a rollout (%d optimizer steps each): a run resumed from one "
                "generates that rollout again with the current policy instead of continuing it; use a multiple of "
                "%d", save_steps, int(updates), int(updates),
            )

    # -- where the reward engine keeps its scores

    def reward_cache_path(self) -> str:
        """This process's on-disk score cache (one SQLite file per rank)."""
        folder = self.reward_cache_dir or os.path.join(self.output_dir, "reward_cache")
        rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0)
        return os.path.join(folder, f"scores.rank{rank}.sqlite")


#: trainer name → its config class
CONFIG_CLASSES: dict[str, type] = {
    "sft": VerirlSFTConfig,
    "grpo": VerirlGRPOConfig,
    "dapo": VerirlGRPOConfig,
    "dpo": VerirlDPOConfig,
}

#: verirl's fields that only GRPO/DAPO have (a recipe of another trainer that sets one is told so)
RL_FIELDS = tuple(
    f.name for f in dataclasses.fields(VerirlGRPOConfig)
    if f.name not in {g.name for g in dataclasses.fields(GRPOConfig)} | {g.name for g in dataclasses.fields(DataFields)}
)
