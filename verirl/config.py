"""Recipes: one YAML file per training run, mapped onto TRL's configuration dataclasses.

A recipe is a flat YAML mapping. Each key belongs to exactly one of:

* :class:`VerirlArgs` — our fields (trainer, dataset, prompt template, rewards, dynamic sampling, entropy gate, ...);
* ``trl.ModelConfig`` — the model and PEFT/LoRA switches (``model_name_or_path``, ``use_peft``, ``lora_r``, ...);
* the trainer's TRL config — ``SFTConfig``, ``GRPOConfig`` (``grpo`` and ``dapo``) or ``DPOConfig``.

Precedence: dataclass defaults < the trainer's presets (:data:`TRAINER_PRESETS`, e.g. DAPO's clip-higher) <
YAML < command-line overrides. Unknown keys, unknown reward names and reward settings that do not fit the
reward's constructor fail here, at parse time, with a message that says what to change.

The ``rewards:`` list is the single source of TRL's ``reward_weights``; setting ``reward_weights`` directly is an
error.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import inspect
import logging
import os
import re
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

logger = logging.getLogger(__name__)

#: trainer name → (module, TRL config class)
TRAINER_CONFIGS: dict[str, tuple[str, str]] = {
    "sft": ("trl", "SFTConfig"),
    "grpo": ("trl", "GRPOConfig"),
    "dapo": ("trl", "GRPOConfig"),
    "dpo": ("trl", "DPOConfig"),
}

#: settings a trainer applies before the YAML (the YAML and the command line win)
TRAINER_PRESETS: dict[str, dict[str, Any]] = {
    "sft": {},
    "grpo": {},
    # DAPO (Yu et al., 2025): clip-higher, token-level loss, no KL term, truncated completions masked out,
    # dynamic sampling of informative groups.
    "dapo": {
        "loss_type": "dapo",
        "epsilon": 0.2,
        "epsilon_high": 0.28,
        "beta": 0.0,
        "mask_truncated_completions": True,
        "dynamic_sampling": True,
    },
    "dpo": {},
}

ENTROPY_GATE_MODES = ("off", "batch", "per_response")
RL_TRAINERS = ("grpo", "dapo")

#: rewards whose value says how correct a completion is (1.0: every check passed), in order of preference, when a
#: recipe does not name its `functional_reward`
FUNCTIONAL_REWARDS = ("simulation", "equivalence")

#: what makes a group informative for dynamic sampling (`dynamic_sampling_signal`)
DYNAMIC_SAMPLING_SIGNALS = {
    "pass": "the functional pass: at least one scored completion passes and at least one fails (DAPO)",
    "functional": "the functional reward's values (e.g. partial credit) differ among the scored completions",
    "total": "the weighted total of all rewards differs (TRL's zero-std test; shaping rewards count)",
}

#: TRL loss types whose normaliser counts sequences or a fixed length, so rows without loss tokens (padding,
#: unscorable completions) still dilute the step
SEQUENCE_NORMALISED_LOSSES = ("grpo", "sapo", "dr_grpo", "luspo")


class RecipeError(ValueError):
    """A recipe (or an override) that cannot be used; the message says what to change."""


@dataclass
class RewardSpec:
    """One entry of a recipe's ``rewards:`` list."""

    name: str = field(metadata={"help": "registry name (rewards.trl.REWARDS, or `overlong`) or `module:attr` path"})
    weight: float = field(default=1.0, metadata={"help": "weight in TRL's reward_weights"})
    kwargs: dict[str, Any] = field(default_factory=dict, metadata={"help": "settings passed to the reward"})


@dataclass
class EntropyGateArgs:
    """Entropy-gated token updates (only the highest-entropy tokens carry the policy gradient)."""

    mode: str = field(
        default="off",
        metadata={
            "help": "`off`; `batch`: TRL's top_entropy_quantile (one threshold over all tokens of the batch, "
            "gathered across processes); `per_response`: the top fraction of each response's own tokens"
        },
    )
    top_fraction: float = field(default=0.2, metadata={"help": "fraction of completion tokens that are updated"})
    log_tokens_every: int = field(
        default=10, metadata={"help": "log a sample of gated tokens every N optimizer steps (0: never)"}
    )
    log_tokens_count: int = field(default=32, metadata={"help": "how many gated tokens each sample shows"})

    def __post_init__(self):
        if self.mode not in ENTROPY_GATE_MODES:
            raise RecipeError(f"entropy_gate.mode={self.mode!r}: use one of {', '.join(ENTROPY_GATE_MODES)}")
        if not 0.0 < self.top_fraction <= 1.0:
            raise RecipeError(f"entropy_gate.top_fraction={self.top_fraction}: use a value in (0, 1]")
        if self.log_tokens_every < 0 or self.log_tokens_count < 1:
            raise RecipeError("entropy_gate.log_tokens_every must be >= 0 and log_tokens_count >= 1")


@dataclass
class VerirlArgs:
    """verirl's own recipe fields (everything that is not a TRL field)."""

    trainer: str = field(default="", metadata={"help": "sft, grpo, dapo or dpo"})
    dataset: str = field(
        default="",
        metadata={
            "help": "training data: a JSONL or Parquet file, a folder written by datasets' save_to_disk, or a folder of JSONL "
            "files. RL trainers read the task schema (id, prompt, top, reference, ...); SFT reads "
            "prompt/completion or messages (tasks with a `reference` are turned into prompt/completion); DPO reads "
            "prompt/chosen/rejected"
        },
    )
    dataset_split: str = field(default="train", metadata={"help": "split to read from a DatasetDict folder"})
    eval_dataset: str | None = field(default=None, metadata={"help": "optional evaluation data, same formats"})
    eval_split: float | None = field(
        default=None,
        metadata={
            "help": "hold out training rows for evaluation, chosen by a hash of each row's id (or content): a fraction "
            "in (0, 1) holds out the rows whose hash falls below it (a row keeps its side when the dataset grows or "
            "is reordered), a count >= 1 the rows with the lowest hashes; needs eval_strategy other than `no`, and "
            "excludes eval_dataset"
        },
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "use only the first N training rows"})
    prompt_template: str = field(
        default="{prompt}",
        metadata={"help": "Python format string applied to a task's text prompt; fields: prompt, top, id"},
    )
    system_prompt: str | None = field(default=None, metadata={"help": "system message prepended to every prompt"})
    rewards: list[RewardSpec] = field(
        default_factory=list, metadata={"help": "list of {name, weight, kwargs}; the only place weights are set"}
    )
    functional_reward: str | None = field(
        default=None,
        metadata={
            "help": "the reward (a `name` of the rewards list, or the attribute part of a `module:attr` name) whose "
            "value says how correct a completion is (1.0: passed) and whose None means the tools could not score "
            "it. Default: the first `simulation` or `equivalence` reward. Drives the pass signal of dynamic sampling, "
            "the pass-rate metrics and the exclusion of unscorable completions"
        },
    )
    dynamic_sampling: bool = field(
        default=False,
        metadata={"help": "drop groups that carry no signal and refill the batch with fresh prompts (DAPO)"},
    )
    dynamic_sampling_signal: str = field(
        default="pass",
        metadata={
            "help": "what makes a group informative: `pass` (DAPO: 0 < #passing < #scored, on the functional "
            "reward), `functional` (the functional reward's values differ, e.g. partial credit) or `total` (the "
            "weighted total differs, TRL's zero-std test, so shaping rewards alone keep a group)"
        },
    )
    max_refill_rounds: int = field(
        default=4, metadata={"help": "extra generation rounds per step that dynamic sampling may spend refilling"}
    )
    adaptive_sampling: bool = field(
        default=False,
        metadata={
            "help": "draw 1/keep_ratio times the prompts per step, with the keep ratio tracked as a moving "
            "average that moves both ways (CodeV-R1-style, but able to recover); needs dynamic_sampling"
        },
    )
    adaptive_ema: float = field(default=0.5, metadata={"help": "weight of the newest keep ratio in the average"})
    adaptive_max_factor: float = field(default=4.0, metadata={"help": "cap on the oversampling factor"})
    entropy_gate: EntropyGateArgs = field(default_factory=EntropyGateArgs, metadata={"help": "see EntropyGateArgs"})
    record_task_ids: bool = field(
        default=False,
        metadata={
            "help": "append the task ids of every generation batch (and of its refills) to "
            "<output_dir>/task_ids.jsonl, to audit the data order, e.g. across a resume"
        },
    )
    reward_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "folder of the reward engine's on-disk score cache (default: <output_dir>/reward_cache; one "
            "SQLite file per process); it survives a restart, so a resumed run does not re-simulate. Rewards whose "
            "kwargs set cache_path keep their own"
        },
    )

    def functional_index(self) -> int | None:
        """Position in ``rewards`` of the functional reward (see the ``functional_reward`` field), or None."""
        names = [r.name for r in self.rewards]
        if self.functional_reward:
            wanted = self.functional_reward
            for i, name in enumerate(names):
                if wanted in (name, name.rpartition(":")[2]):
                    return i
            raise RecipeError(
                f"functional_reward={wanted!r} names none of the recipe's rewards ({', '.join(names)}); use one of "
                f"their names"
            )
        for wanted in FUNCTIONAL_REWARDS:
            if wanted in names:
                return names.index(wanted)
        return None

    def _check_eval_split(self) -> None:
        if self.eval_split is None:
            return
        value = self.eval_split
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise RecipeError(f"eval_split={value!r}: use a fraction in (0, 1) or a row count >= 1")
        if value >= 1 and float(value) != int(value):
            raise RecipeError(f"eval_split={value!r}: a count of rows must be a whole number (or use a fraction < 1)")
        if self.eval_dataset:
            raise RecipeError("set either eval_dataset (separate evaluation data) or eval_split (held-out rows)")

    def __post_init__(self):
        if isinstance(self.entropy_gate, dict):
            self.entropy_gate = _build_dataclass(EntropyGateArgs, self.entropy_gate, "entropy_gate")
        self.rewards = [_reward_spec(r, i) for i, r in enumerate(self.rewards or [])]
        if self.trainer not in TRAINER_CONFIGS:
            raise RecipeError(
                f"trainer={self.trainer!r}: set `trainer:` to one of {', '.join(TRAINER_CONFIGS)} in the recipe"
            )
        if not self.dataset:
            raise RecipeError("the recipe has no `dataset:`; set it to a JSONL file or a saved dataset folder")
        rl = self.trainer in RL_TRAINERS
        if rl and not self.rewards:
            raise RecipeError(f"trainer {self.trainer} needs a `rewards:` list, e.g. - {{name: simulation}}")
        if not rl:
            for name in ("rewards", "dynamic_sampling", "adaptive_sampling", "functional_reward"):
                if getattr(self, name):
                    raise RecipeError(f"`{name}` applies to grpo/dapo only; remove it from this {self.trainer} recipe")
            if self.dynamic_sampling_signal != "pass":
                raise RecipeError(
                    f"`dynamic_sampling_signal` applies to grpo/dapo only; remove it from this {self.trainer} recipe"
                )
            if self.record_task_ids:
                raise RecipeError(f"`record_task_ids` applies to grpo/dapo only; remove it from this {self.trainer} recipe")
            if self.entropy_gate.mode != "off":
                raise RecipeError(f"`entropy_gate` applies to grpo/dapo only; remove it from this {self.trainer} recipe")
        if self.adaptive_sampling and not self.dynamic_sampling:
            raise RecipeError("adaptive_sampling needs dynamic_sampling: true (it scales by the keep ratio)")
        if self.dynamic_sampling_signal not in DYNAMIC_SAMPLING_SIGNALS:
            raise RecipeError(
                f"dynamic_sampling_signal={self.dynamic_sampling_signal!r}: use one of "
                f"{', '.join(DYNAMIC_SAMPLING_SIGNALS)}"
            )
        if rl:
            index = self.functional_index()  # raises for a functional_reward that names no reward
            if self.dynamic_sampling and self.dynamic_sampling_signal != "total" and index is None:
                raise RecipeError(
                    f"dynamic_sampling_signal: {self.dynamic_sampling_signal} tests the functional reward, and this "
                    f"recipe has none: add a `simulation` or `equivalence` reward, name the reward that says whether "
                    f"a completion is correct with `functional_reward: NAME`, or set `dynamic_sampling_signal: total`"
                )
        self._check_eval_split()
        if self.max_refill_rounds < 0:
            raise RecipeError("max_refill_rounds must be >= 0")
        if not 0.0 < self.adaptive_ema <= 1.0:
            raise RecipeError("adaptive_ema must be in (0, 1]")
        if self.adaptive_max_factor < 1.0:
            raise RecipeError("adaptive_max_factor must be >= 1")
        try:
            self.prompt_template.format(prompt="", top="", id="")
        except (KeyError, IndexError, ValueError) as exc:
            raise RecipeError(
                f"prompt_template {self.prompt_template!r} is not a valid format string with fields "
                f"{{prompt}}, {{top}}, {{id}}: {exc}"
            ) from None


@dataclass
class Recipe:
    """A parsed recipe: our fields, TRL's ModelConfig and the trainer's TRL config."""

    verirl: VerirlArgs
    model: Any  # trl.ModelConfig
    training: Any  # trl.SFTConfig | trl.GRPOConfig | trl.DPOConfig
    source: str | None = None
    data: dict[str, Any] | None = None  # the mapping parsed: the YAML with the overrides merged in (before presets)
    overrides: dict[str, Any] | None = None  # the command-line (or caller's) overrides alone

    @property
    def trainer(self) -> str:
        return self.verirl.trainer


# --------------------------------------------------------------------------------------------------- parsing


def parse_overrides(tokens: list[str]) -> dict[str, Any]:
    """Turn ``--key value``, ``--key=value``, ``key=value`` and ``--flag`` tokens into a dict.

    Values are read as YAML scalars/collections (``1e-5`` → float, ``true`` → bool, ``[a, b]`` → list).
    Dotted keys (``entropy_gate.mode=batch``) set a field of a nested mapping.
    """
    out: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("--"):
            body = tok[2:]
            if "=" in body:
                key, raw = body.split("=", 1)
            elif i + 1 < len(tokens) and not tokens[i + 1].startswith("--") and not _KEY_EQ.match(tokens[i + 1]):
                key, raw = body, tokens[i + 1]
                i += 1
            else:
                key, raw = body, "true"
        elif "=" in tok:
            key, raw = tok.split("=", 1)
        else:
            raise RecipeError(f"override {tok!r}: write it as --key value or key=value")
        key = key.replace("-", "_")
        if not key:
            raise RecipeError(f"override {tok!r} has an empty key")
        _set_dotted(out, key, _parse_value(raw))
        i += 1
    return out


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that reads `1e-5` as a float (YAML 1.1 needs a dot: `1.0e-5`)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

_KEY_EQ = re.compile(r"^[A-Za-z_][\w.]*=")


def _parse_value(raw: str) -> Any:
    if raw == "":
        return ""
    try:
        return yaml.load(raw, Loader=_YamlLoader)
    except yaml.YAMLError:
        return raw


def _set_dotted(target: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        nxt = target.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise RecipeError(f"override {key!r}: {p!r} is not a mapping")
        target = nxt
    target[parts[-1]] = value


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "model_init_kwargs":
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise RecipeError(f"recipe {path!r} does not exist; pass --config PATH/TO/RECIPE.yaml")
    with open(path, encoding="utf-8") as fh:
        try:
            data = yaml.load(fh, Loader=_YamlLoader) or {}
        except yaml.YAMLError as exc:
            raise RecipeError(f"recipe {path!r} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {path!r} must be a YAML mapping of settings, not {type(data).__name__}")
    return data


def load_recipe(
    path: str | os.PathLike | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    *,
    check_only: bool = False,
    validate_rewards: bool = True,
) -> Recipe:
    """Parse a recipe (YAML file and/or overrides) into a :class:`Recipe`.

    ``check_only=True`` validates a recipe on a machine that cannot run it (e.g. a bf16 GPU recipe on a CPU-only
    machine): device checks of ``TrainingArguments`` are skipped, every other check runs.
    """
    data = load_yaml(path) if path is not None else {}
    extra: dict[str, Any] = {}
    if overrides:
        extra = parse_overrides(list(overrides)) if isinstance(overrides, list) else dict(overrides)
        data = _merge(data, extra)
    return recipe_from_dict(data, source=os.fspath(path) if path else None, check_only=check_only,
                            validate_rewards=validate_rewards, overrides=extra or None)


def recipe_from_dict(
    data: dict[str, Any], *, source: str | None = None, check_only: bool = False, validate_rewards: bool = True,
    overrides: dict[str, Any] | None = None,
) -> Recipe:
    """Parse a recipe mapping; ``overrides`` (already merged into ``data``) are named in errors about them."""
    from trl import ModelConfig

    where = f"recipe {source!r}" if source else "recipe"
    if overrides:
        where += f" with the overrides {', '.join(_override_text(k, v) for k, v in overrides.items())}"
    data = dict(data)
    given = copy.deepcopy(data)
    trainer = data.get("trainer")
    if trainer not in TRAINER_CONFIGS:
        raise RecipeError(f"{where}: `trainer: {trainer}` — set `trainer:` to one of {', '.join(TRAINER_CONFIGS)}")
    if "reward_weights" in data:
        raise RecipeError(
            f"{where}: `reward_weights` is set from the `rewards:` list; remove it and give each reward a `weight:`"
        )
    if "top_entropy_quantile" in data:
        raise RecipeError(
            f"{where}: set the entropy gate with `entropy_gate: {{mode: batch, top_fraction: F}}` instead of "
            f"`top_entropy_quantile` (verirl sets TRL's field from it)"
        )
    data = _merge(TRAINER_PRESETS[trainer], data)

    module_name, class_name = TRAINER_CONFIGS[trainer]
    config_cls = getattr(importlib.import_module(module_name), class_name)
    ours = _field_names(VerirlArgs)
    model_fields = _field_names(ModelConfig)
    train_fields = _field_names(config_cls)

    ours_kw, model_kw, train_kw, unknown = {}, {}, {}, []
    for key, value in data.items():
        placed = False
        if key in ours:
            ours_kw[key] = value
            placed = True
        else:
            if key in model_fields:
                model_kw[key] = value
                placed = True
            if key in train_fields:
                train_kw[key] = value
                placed = True
        if not placed:
            unknown.append(key)
    if unknown:
        vocab = sorted(ours | model_fields | train_fields)

        def hint(key: str) -> str:
            close = difflib.get_close_matches(key, vocab, n=1)
            return f"`{key}`" + (f" (did you mean `{close[0]}`?)" if close else "")

        typed = [k for k in unknown if overrides and k in overrides]
        if typed:  # the command line is at fault, not the file
            raise RecipeError(
                f"command-line override(s) {', '.join(hint(k) for k in typed)}: unknown key for trainer {trainer}; "
                f"fix the spelling on the command line (keys are VerirlArgs fields, trl.ModelConfig fields or "
                f"trl.{class_name} fields)"
            )
        raise RecipeError(
            f"{where}: unknown key(s) {', '.join(hint(k) for k in unknown)} for trainer {trainer}; remove them or fix "
            f"the spelling (keys are VerirlArgs fields, trl.ModelConfig fields or trl.{class_name} fields)"
        )

    try:
        args = VerirlArgs(**ours_kw)
    except TypeError as exc:
        raise RecipeError(f"{where}: {exc}") from None
    except RecipeError as exc:
        raise RecipeError(f"{where}: {exc}") from None

    if args.trainer in RL_TRAINERS:
        train_kw["reward_weights"] = [float(r.weight) for r in args.rewards]
        if args.entropy_gate.mode != "off":
            train_kw["top_entropy_quantile"] = float(args.entropy_gate.top_fraction)
    model_args = _build_dataclass(ModelConfig, model_kw, where)
    training = _build_training(config_cls, train_kw, where, check_only=check_only)
    if args.trainer in RL_TRAINERS:
        _tie_overlong(args, training, where)
    if validate_rewards:
        for spec in args.rewards:
            validate_reward_spec(spec)
    if args.eval_split is not None and _strategy(training.eval_strategy) == "no":
        raise RecipeError(
            f"{where}: eval_split holds rows out for evaluation but eval_strategy is `no`; set eval_strategy: steps "
            f"and eval_steps: N (or remove eval_split)"
        )
    if args.trainer in RL_TRAINERS:
        _check_rl(args, training, where)
    return Recipe(verirl=args, model=model_args, training=training, source=source, data=given,
                  overrides=dict(overrides) if overrides else None)


def _override_text(key: str, value: Any) -> str:
    """``key=value`` as typed (a nested mapping as dotted keys), values cut at 40 characters."""
    if isinstance(value, dict) and value:
        return ", ".join(_override_text(f"{key}.{k}", v) for k, v in value.items())
    text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    return f"{key}={text if len(text) <= 40 else text[:37] + '...'}"


def _strategy(value: Any) -> str:
    return str(getattr(value, "value", value))


def _tie_overlong(args: VerirlArgs, training: Any, where: str) -> None:
    """The overlong reward's length is the recipe's max_completion_length (it follows command-line overrides)."""
    limit = training.max_completion_length
    for spec in args.rewards:
        if spec.name != "overlong":
            continue
        given = spec.kwargs.get("max_completion_len")
        if given is None:
            spec.kwargs = {**spec.kwargs, "max_completion_len": limit}  # a copy: the caller's mapping stays as it was
        elif given != limit:
            raise RecipeError(
                f"{where}: the overlong reward's max_completion_len ({given}) differs from max_completion_length "
                f"({limit}); remove max_completion_len from its kwargs, it follows max_completion_length"
            )
        cache = spec.kwargs.get("soft_punish_cache")
        if isinstance(cache, (int, float)) and not isinstance(cache, bool) and not 0 <= cache < limit:
            raise RecipeError(
                f"{where}: the overlong reward's soft_punish_cache ({cache}) must be below max_completion_length "
                f"({limit}); it is the window before the limit in which the penalty grows"
            )


def _check_rl(args: VerirlArgs, training: Any, where: str) -> None:
    updates_per_rollout = training.num_iterations * training.steps_per_generation / training.gradient_accumulation_steps
    if training.epsilon_high is not None and training.epsilon_high != training.epsilon and updates_per_rollout <= 1:
        logger.warning(
            "%s: epsilon_high=%s (clip-higher) has no effect: with num_iterations=1 and steps_per_generation <= "
            "gradient_accumulation_steps every rollout gets one optimizer step, so the policy ratio stays 1. Set "
            "steps_per_generation to a multiple of gradient_accumulation_steps (DAPO: several mini-batch updates per "
            "rollout) or num_iterations > 1",
            where, training.epsilon_high,
        )
    save_steps = training.save_steps
    if (
        updates_per_rollout > 1
        and float(updates_per_rollout).is_integer()
        and _strategy(training.save_strategy) == "steps"
        and isinstance(save_steps, (int, float)) and save_steps >= 1
        and save_steps % updates_per_rollout
    ):
        logger.warning(
            "%s: save_steps=%s puts checkpoints inside a rollout (%d optimizer steps each): a run resumed from one "
            "generates that rollout again with the current policy instead of continuing it; use a multiple of %d",
            where, save_steps, int(updates_per_rollout), int(updates_per_rollout),
        )
    if args.dynamic_sampling and training.loss_type in SEQUENCE_NORMALISED_LOSSES:
        logger.warning(
            "%s: dynamic_sampling with loss_type=%s: padded groups and unscorable completions carry no loss tokens, "
            "but this loss averages over sequences (or a fixed length), so they still shrink the step; loss_type "
            "dapo or bnpo normalise over the tokens that count",
            where, training.loss_type,
        )
    if args.dynamic_sampling and training.num_generations < 2:
        raise RecipeError(f"{where}: dynamic_sampling needs num_generations >= 2 (a group of one has no variance)")
    if args.dynamic_sampling:
        local = training.per_device_train_batch_size * training.steps_per_generation
        if local % training.num_generations:
            raise RecipeError(
                f"{where}: dynamic_sampling keeps or drops whole groups on each process, so "
                f"per_device_train_batch_size*steps_per_generation ({local}) must be a multiple of "
                f"num_generations ({training.num_generations}); change one of them"
            )


def _field_names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.init}


def _build_dataclass(cls, kwargs: dict, where: str):
    names = _field_names(cls)
    unknown = [k for k in kwargs if k not in names]
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {unknown} in {cls.__name__}; valid keys: {sorted(names)}")
    try:
        return cls(**kwargs)
    except RecipeError:
        raise
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{where}: {cls.__name__}: {exc}") from None


_DEVICE_FIELDS = ("bf16", "fp16", "tf32")


def _build_training(config_cls, kwargs: dict, where: str, *, check_only: bool):
    deferred = {}
    if check_only:
        # TrainingArguments rejects bf16/fp16/tf32 on a machine without the hardware; a check-only parse
        # validates everything else and keeps the requested values on the returned object.
        deferred = {k: kwargs.pop(k) for k in _DEVICE_FIELDS if k in kwargs}
        if "bf16" in _field_names(config_cls):
            kwargs["bf16"] = False  # TRL's default (bf16 unless fp16) is restored below
            deferred.setdefault("bf16", None)
    try:
        cfg = config_cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{where}: {config_cls.__name__}: {exc}") from None
    for key, value in deferred.items():
        if key == "bf16" and value is None:
            value = not deferred.get("fp16", False)
        setattr(cfg, key, value)
    return cfg


def _reward_spec(entry: Any, index: int) -> RewardSpec:
    if isinstance(entry, RewardSpec):
        spec = entry
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
        spec = RewardSpec(name=str(entry["name"]), weight=entry.get("weight", 1.0), kwargs=entry.get("kwargs") or {})
    else:
        raise RecipeError(f"rewards[{index}]: expected a mapping {{name, weight, kwargs}}, got {entry!r}")
    if not isinstance(spec.weight, (int, float)) or isinstance(spec.weight, bool):
        raise RecipeError(f"rewards[{index}] ({spec.name}): weight must be a number, got {spec.weight!r}")
    if not isinstance(spec.kwargs, dict):
        raise RecipeError(f"rewards[{index}] ({spec.name}): kwargs must be a mapping, got {spec.kwargs!r}")
    spec.weight = float(spec.weight)
    return spec


# --------------------------------------------------------------------------------------------------- rewards


def _overlong_factory(max_completion_len: int, soft_punish_cache: int):
    """DAPO's soft overlong punishment (TRL's implementation)."""
    from trl.rewards import get_soft_overlong_punishment

    return get_soft_overlong_punishment(max_completion_len=max_completion_len, soft_punish_cache=soft_punish_cache)


#: rewards verirl provides on top of the reward engine's registry (they need TRL, so they cannot live in rewards/)
EXTRA_REWARDS: dict[str, Any] = {"overlong": _overlong_factory}


def reward_registry() -> dict[str, Any]:
    """Name → reward class/factory: the reward engine's ``rewards.trl.REWARDS`` plus :data:`EXTRA_REWARDS`."""
    registry: dict[str, Any] = {}
    try:
        from rewards.trl import REWARDS
    except ImportError as exc:  # the reward engine is part of this repository; say what is wrong
        logger.warning("rewards.trl could not be imported (%s); only %s are available", exc, list(EXTRA_REWARDS))
    else:
        registry.update(REWARDS)
    registry.update(EXTRA_REWARDS)
    return registry


def resolve_reward_target(name: str):
    """The class, factory or reward function a reward name points to."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise RecipeError(f"reward {name!r}: cannot import module {module_name!r} ({exc})") from None
        target = getattr(module, attr, None)
        if target is None:
            raise RecipeError(f"reward {name!r}: module {module_name!r} has no attribute {attr!r}")
        return target
    registry = reward_registry()
    if name not in registry:
        close = difflib.get_close_matches(name, list(registry), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise RecipeError(
            f"unknown reward {name!r}{hint}; use one of {sorted(registry)} or a plug-in path `package.module:attr`"
        )
    return registry[name]


def _is_reward_function(target) -> bool:
    if inspect.isclass(target):
        return False
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return "completions" in params or "completion_ids" in params


def _registry_arguments(name: str, target) -> tuple[dict[str, inspect.Parameter], dict[str, Any]] | None:
    """Accepted kwargs and their type hints for a reward of the engine's registry (None: not a registry reward)."""
    try:
        from rewards import trl as reward_trl
    except ImportError:
        return None
    if ":" in name or name not in getattr(reward_trl, "REWARDS", {}):
        return None
    params = reward_trl.reward_arguments(name)
    hints: dict[str, Any] = {}
    for klass in reversed(inspect.getmro(target)):
        init = klass.__dict__.get("__init__")
        if init is not None:
            try:
                hints.update(typing.get_type_hints(init))
            except (NameError, TypeError, AttributeError):  # unresolvable annotations: names are still checked
                logger.debug("cannot resolve the annotations of %s", klass)
    return params, hints


def validate_reward_spec(spec: RewardSpec) -> None:
    """Check that ``spec.kwargs`` fit the reward's constructor (names, required ones, simple types)."""
    target = resolve_reward_target(spec.name)
    if _is_reward_function(target):
        if spec.kwargs:
            raise RecipeError(
                f"reward {spec.name!r} is a plain reward function and takes no kwargs; remove `kwargs:` or point to "
                f"a class/factory"
            )
        return
    registry = _registry_arguments(spec.name, target)
    if registry is not None:
        params, hints = registry
        has_var_kw = False
    else:
        try:
            sig = inspect.signature(target)
        except (TypeError, ValueError):
            return
        params = {n: p for n, p in sig.parameters.items() if n != "self"}
        has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        try:
            hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
        except (NameError, TypeError, AttributeError):  # unresolvable annotations: names were checked, not types
            hints = {}
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in spec.kwargs if k not in accepted]
    if unknown and not has_var_kw:
        hint_texts = []
        for k in unknown:
            close = difflib.get_close_matches(k, accepted, n=1)
            hint_texts.append(k + (f" (did you mean {close[0]}?)" if close else ""))
        raise RecipeError(
            f"reward {spec.name!r}: unknown kwargs {', '.join(hint_texts)}; it accepts {accepted or 'no kwargs'}"
        )
    missing = [
        n for n, p in params.items()
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in spec.kwargs
    ]
    if missing:
        raise RecipeError(f"reward {spec.name!r}: missing required kwargs {missing}; add them under `kwargs:`")
    for key, value in spec.kwargs.items():
        expected = hints.get(key)
        if expected is not None and not _fits(value, expected):
            raise RecipeError(
                f"reward {spec.name!r}: kwargs {key}={value!r} does not fit its type {_type_name(expected)}"
            )


def _fits(value: Any, expected: Any) -> bool:
    origin = typing.get_origin(expected)
    if expected is Any:
        return True
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_fits(value, a) for a in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected in (bool, str):
        return isinstance(value, expected)
    if origin in (list, tuple, typing.Sequence):
        return isinstance(value, (list, tuple))
    if origin is dict or expected is dict:
        return isinstance(value, dict)
    return True  # complex annotations: accept, the constructor checks


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def build_rewards(specs: list[RewardSpec], *, cache_path: str | None = None) -> list:
    """Instantiate the recipe's rewards, in order (their weights are already TRL's ``reward_weights``).

    ``cache_path`` (the reward engine's on-disk score cache) is given to rewards whose constructor accepts
    ``cache_path``, unless the recipe sets it.
    """
    funcs = []
    for spec in specs:
        target = resolve_reward_target(spec.name)
        if _is_reward_function(target):
            funcs.append(target)
            continue
        kwargs = dict(spec.kwargs)
        registry = _registry_arguments(spec.name, target)
        if registry is not None:
            accepts_cache = "cache_path" in registry[0]
        else:
            try:
                accepts_cache = "cache_path" in inspect.signature(target).parameters
            except (TypeError, ValueError):
                accepts_cache = False
        if cache_path is not None and accepts_cache and "cache_path" not in kwargs:
            kwargs["cache_path"] = cache_path
        try:
            func = target(**kwargs)
        except (TypeError, ValueError) as exc:  # the engine's ConfigError is a ValueError
            raise RecipeError(f"reward {spec.name!r} with kwargs {spec.kwargs}: {exc}") from None
        if not hasattr(func, "__name__"):
            raise RecipeError(f"reward {spec.name!r} built an object without __name__; TRL logs rewards by name")
        if ":" not in spec.name and func.__name__ != spec.name:
            # TRL logs a reward under its __name__: a registry reward is logged under the name the recipe gives it
            # (TRL's overlong penalty calls itself soft_overlong_punishment_reward)
            try:
                func.__name__ = spec.name
            except (AttributeError, TypeError):
                raise RecipeError(f"reward {spec.name!r} built {func!r}, whose __name__ cannot be set to the recipe's "
                                  "name") from None
        funcs.append(func)
    return funcs
