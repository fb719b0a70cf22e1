"""Recipes: one YAML file per training run, parsed into TRL configuration dataclasses.

A recipe is a flat YAML mapping. Each key belongs to exactly one of:

* the trainer's config — :class:`~verirl.train.configs.VerirlSFTConfig`, :class:`~verirl.train.configs.VerirlGRPOConfig`
  (``grpo`` and ``dapo``) or :class:`~verirl.train.configs.VerirlDPOConfig`: TRL's ``SFTConfig`` / ``GRPOConfig`` /
  ``DPOConfig`` plus verirl's fields (dataset, prompt rendering, rewards, dynamic sampling, entropy gate, ...);
* ``trl.ModelConfig`` — the model and PEFT/LoRA switches (``model_name_or_path``, ``use_peft``, ``lora_r``, ...).

Parsing follows TRL's parser conventions (``trl.TrlParser``): the values become the parser's defaults and are
converted by each field's type (a quoted ``"1e-5"`` for a float field is a float), and TRL's own keys work. YAML is
read with :mod:`data_pipeline.yaml_loader` (``1e-5`` is a float, in training and data recipes alike).

Precedence: dataclass defaults < the trainer's presets (:data:`TRAINER_PRESETS`, e.g. DAPO's clip-higher) <
YAML < command-line overrides. Unknown keys, unknown reward names and reward settings that do not fit the
reward's constructor fail here, at parse time, with a message that says what to change.

The ``rewards:`` list is the single source of TRL's ``reward_weights``: a recipe may also give
``reward_weights``, which must then agree with it (see :class:`~verirl.train.configs.VerirlGRPOConfig`).
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
from dataclasses import dataclass
from typing import Any

import yaml

from data_pipeline.yaml_loader import load_yaml as _load_yaml_text
from data_pipeline.yaml_loader import parse_scalar
from verirl.errors import RecipeError

__all__ = ["RL_TRAINERS", "TRAINERS", "TRAINER_PRESETS", "Recipe", "RecipeError", "build_rewards", "load_recipe",
           "parse_overrides", "recipe_from_dict", "validate_reward_spec"]

logger = logging.getLogger(__name__)

#: the trainers a recipe can name
TRAINERS = ("sft", "grpo", "dapo", "dpo")
RL_TRAINERS = ("grpo", "dapo")

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


@dataclass
class Recipe:
    """A parsed recipe: TRL's ModelConfig and the trainer's config (a TRL config subclass with verirl's fields)."""

    model: Any  # trl.ModelConfig
    training: Any  # VerirlSFTConfig | VerirlGRPOConfig | VerirlDPOConfig
    source: str | None = None
    data: dict[str, Any] | None = None  # the mapping parsed: the YAML with the overrides merged in (before presets)
    overrides: dict[str, Any] | None = None  # the command-line (or caller's) overrides alone

    @property
    def trainer(self) -> str:
        return self.training.trainer


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
        _set_dotted(out, key, parse_scalar(raw))
        i += 1
    return out


_KEY_EQ = re.compile(r"^[A-Za-z_][\w.]*=")


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
            data = _load_yaml_text(fh) or {}
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

    from verirl.train.configs import CONFIG_CLASSES, RL_FIELDS

    where = f"recipe {source!r}" if source else "recipe"
    if overrides:
        where += f" with the overrides {', '.join(_override_text(k, v) for k, v in overrides.items())}"
    data = dict(data)
    given = copy.deepcopy(data)
    trainer = data.get("trainer")
    if trainer not in TRAINERS:
        raise RecipeError(f"{where}: `trainer: {trainer}` — set `trainer:` to one of {', '.join(TRAINERS)}")
    if not data.get("dataset"):
        raise RecipeError(f"{where}: the recipe has no `dataset:`; set it to a JSONL file or a saved dataset folder")
    if trainer in RL_TRAINERS and not data.get("rewards"):
        raise RecipeError(f"{where}: trainer {trainer} needs a `rewards:` list, e.g. - {{name: simulation}}")
    data = _merge(TRAINER_PRESETS[trainer], data)
    config_cls = CONFIG_CLASSES[trainer]
    _check_keys(data, config_cls, ModelConfig, RL_FIELDS, trainer, where, overrides)
    deferred = _defer_device_fields(data, config_cls) if check_only else {}
    try:
        training, model_args = _parse_with_trl(data, config_cls, ModelConfig)
    except RecipeError as exc:
        raise RecipeError(f"{where}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{where}: {exc}") from None
    for key, value in deferred.items():
        setattr(training, key, value)
    if validate_rewards:
        for spec in getattr(training, "rewards", []):
            validate_reward_spec(spec)
    return Recipe(model=model_args, training=training, source=source, data=given,
                  overrides=dict(overrides) if overrides else None)


def _check_keys(data: dict, config_cls, model_cls, rl_fields, trainer: str, where: str,
                overrides: dict[str, Any] | None = None) -> None:
    """Unknown keys are errors that suggest the closest known key; a mistyped command-line override is blamed on
    the command line."""
    known = _field_names(config_cls) | _field_names(model_cls)
    unknown = [key for key in data if key not in known]
    for key in unknown:
        if key in rl_fields:
            raise RecipeError(f"{where}: `{key}` applies to grpo/dapo only; remove it from this {trainer} recipe")
    if unknown:
        def hint(key: str) -> str:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            return f"`{key}`" + (f" (did you mean `{close[0]}`?)" if close else "")

        fields = (f"keys are fields of {config_cls.__name__} (trl.{config_cls.__mro__[2].__name__} plus verirl's) or "
                  f"trl.ModelConfig")
        typed = [k for k in unknown if overrides and k in overrides]
        if typed:  # the command line is at fault, not the file
            raise RecipeError(
                f"command-line override(s) {', '.join(hint(k) for k in typed)}: unknown key for trainer {trainer}; "
                f"fix the spelling on the command line ({fields})"
            )
        raise RecipeError(
            f"{where}: unknown key(s) {', '.join(hint(k) for k in unknown)} for trainer {trainer}; remove them or fix "
            f"the spelling ({fields})"
        )


def _override_text(key: str, value: Any) -> str:
    """``key=value`` as typed (a nested mapping as dotted keys), values cut at 40 characters."""
    if isinstance(value, dict) and value:
        return ", ".join(_override_text(f"{key}.{k}", v) for k, v in value.items())
    text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    return f"{key}={text if len(text) <= 40 else text[:37] + '...'}"


def _parse_with_trl(data: dict, config_cls, model_cls):
    """TRL's parser conventions: the recipe's values become the parser's defaults (``TrlParser`` does this for a
    ``--config`` file), so string values are converted by each field's type, then the dataclasses are built."""
    from trl import TrlParser

    parser = TrlParser((config_cls, model_cls))
    left = parser.set_defaults_with_config(**data)
    if left:  # not expected: keys were checked above
        raise RecipeError(f"unknown recipe keys {left[::2]}")
    return parser.parse_args_into_dataclasses(args=[])


_DEVICE_FIELDS = ("bf16", "fp16", "tf32")


def _defer_device_fields(data: dict, config_cls) -> dict[str, Any]:
    """TrainingArguments rejects bf16/fp16/tf32 on a machine without the hardware; a check-only parse validates
    everything else and keeps the requested values on the returned object (popped from ``data``)."""
    deferred = {k: data.pop(k) for k in _DEVICE_FIELDS if k in data}
    if "bf16" in _field_names(config_cls):
        data["bf16"] = False
        deferred.setdefault("bf16", not deferred.get("fp16", False))  # TRL's default: bf16 unless fp16
    return deferred


def _field_names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.init}


# --------------------------------------------------------------------------------------------------- rewards


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
    from rewards.trl import REWARDS as registry

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
    from rewards import trl as reward_trl

    if ":" in name or name not in reward_trl.REWARDS:
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


def validate_reward_spec(spec) -> None:
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


def build_rewards(specs: list, *, cache_path: str | None = None) -> list:
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
            if registry is not None:  # the engine's own rewards are built the engine's way
                from rewards.trl import build_reward

                func = build_reward(spec.name, **kwargs)
            else:
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
