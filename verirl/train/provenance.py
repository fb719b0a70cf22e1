"""The run record: what a training run actually ran, saved next to the model as ``<output_dir>/verirl_run.json``.

Written by :class:`RunRecordCallback` (every trainer built by :func:`verirl.train.runner.build_trainer` has it) when
training begins, and completed when it ends. It holds

* ``recipe``: the recipe as run — the YAML mapping with the command-line overrides merged in (reload it with
  ``verirl train --config``); ``recipe_file`` and ``overrides`` say where each part came from;
* ``resolved``: every setting after defaults and presets (TRL's ``ModelConfig``, and the trainer's config — TRL's
  fields and verirl's — as ``to_dict()`` gives it, which hides tokens);
* ``base_model``: the ``model_name_or_path`` trained from, and ``base_model_origin``, the Hub id at the start of a
  chain of verirl runs (an RL run from an SFT run's folder names the SFT run's base model), or None when the chain
  starts at a local folder that no run record describes;
* ``versions`` (verirl, TRL, Transformers, torch, ...), ``tools`` (Icarus, Yosys), ``command`` (the command line),
  ``world_size``, ``started``/``finished`` (UTC), ``start_step``/``global_step``; a resumed run keeps the records of
  the earlier parts under ``previous``.

``verirl push`` reads it (:func:`read_run_record`) for the model card's base model, recipe and versions.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import re
import shlex
import sys
from typing import Any

logger = logging.getLogger(__name__)

RUN_RECORD = "verirl_run.json"
RECORD_FORMAT = 1
#: packages whose versions decide what a run did
VERSIONED_PACKAGES = ("verirl", "trl", "transformers", "torch", "accelerate", "peft", "datasets", "deepspeed",
                      "vllm")


class RunRecordError(ValueError):
    """A run record that exists but cannot be read; the message names the file."""


def package_versions() -> dict[str, str | None]:
    """Installed versions of :data:`VERSIONED_PACKAGES` (None: not installed) and Python's."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    if out["verirl"] is None:  # running from a checkout that is not installed
        import verirl

        out["verirl"] = getattr(verirl, "__version__", None)
    out["python"] = sys.version.split()[0]
    return out


def _tool_versions() -> dict[str, Any]:
    try:
        from rewards.toolchain import tool_versions

        return tool_versions()
    except Exception as exc:  # noqa: BLE001 - a record must not fail over a version probe
        logger.debug("tool version probe failed: %s", exc)
        return {}


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (enums by value, dataclasses as dicts, anything else as its text)."""
    import enum

    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


#: option/key names whose values are credentials (not tokenizer settings such as pad_token or max_tokens)
_SECRET_KEY = re.compile(r"(^|[-_.])(hub|hf|auth|access|api|wandb|bearer)[-_]?(token|key)$|^-*token$|secret|password|passwd"
                         r"|credential", re.IGNORECASE)
REDACTED = "<redacted>"


def _redact(value: Any) -> Any:
    """``value`` with the values of secret-looking keys (``hub_token``, ``api_key``, ...) replaced."""
    if isinstance(value, dict):
        return {k: (REDACTED if _SECRET_KEY.search(str(k)) and v not in (None, "") else _redact(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def _redact_argv(argv: list[str]) -> list[str]:
    """The command line with the values of secret-looking options hidden (``--hub_token X``, ``hub_token=X``)."""
    out: list[str] = []
    hide_next = False
    for tok in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        name, eq, _ = tok.partition("=")
        if _SECRET_KEY.search(name):
            if eq:
                out.append(f"{name}={REDACTED}")
                continue
            hide_next = tok.startswith("-")
        out.append(tok)
    return out


def looks_local(path: str) -> bool:
    """Whether a ``model_name_or_path`` names a local folder rather than a Hub id (``name`` or ``org/name``)."""
    return (os.path.isdir(os.path.expanduser(path)) or path.startswith((".", "/", "~")) or path.count("/") > 1
            or (os.sep != "/" and os.sep in path))


def base_model_origin(model_name_or_path: str | None) -> str | None:
    """The Hub id a model descends from: itself when it is not a local folder; for a local folder written by a verirl
    run, that run's origin; None for a local folder no run record describes (or that does not exist)."""
    seen: set[str] = set()
    path = model_name_or_path
    while path and looks_local(path):
        if not os.path.isdir(os.path.expanduser(path)):
            return None
        real = os.path.realpath(os.path.expanduser(path))
        if real in seen:  # a record that names its own folder
            return None
        seen.add(real)
        try:
            record = read_run_record(real, search_parents=False)
        except RunRecordError:
            return None
        if record is None:
            return None
        path = record.get("base_model")
    return path or None


def run_record(recipe, *, start_step: int = 0, argv: list[str] | None = None) -> dict[str, Any]:
    """The record of a run of ``recipe`` starting at ``start_step`` (a resumed run starts past 0)."""
    argv = list(sys.argv if argv is None else argv)
    training = recipe.training
    base = recipe.model.model_name_or_path
    return {
        "format": RECORD_FORMAT,
        "trainer": recipe.trainer,
        "recipe": _redact(_jsonable(getattr(recipe, "data", None))),
        "recipe_file": recipe.source,
        "overrides": _redact(_jsonable(getattr(recipe, "overrides", None))),
        "base_model": base,
        "base_model_revision": recipe.model.model_revision,
        "base_model_origin": base_model_origin(base),
        "resolved": {
            "model": _redact(_jsonable(recipe.model)),
            "training": _redact(_jsonable(training.to_dict() if hasattr(training, "to_dict") else training)),
        },
        "versions": package_versions(),
        "tools": _tool_versions(),
        "command": shlex.join(_redact_argv([os.path.basename(argv[0]) if argv else "python", *argv[1:]])),
        "world_size": int(os.environ.get("WORLD_SIZE", "1") or 1),
        "started": _now(),
        "start_step": start_step,
        "finished": None,
        "global_step": None,
    }


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _write(path: str, record: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2, sort_keys=False)
        fh.write("\n")
    os.replace(tmp, path)


def write_run_record(recipe, output_dir: str, *, start_step: int = 0, argv: list[str] | None = None) -> str:
    """Write the record of a run starting now into ``output_dir``; a resumed run (``start_step > 0``) keeps the
    earlier records under ``previous``. Returns the file's path."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, RUN_RECORD)
    record = run_record(recipe, start_step=start_step, argv=argv)
    if start_step > 0:
        try:
            earlier = read_run_record(output_dir, search_parents=False)
        except RunRecordError as exc:
            logger.warning("%s; the earlier parts of this run are not kept in the new record", exc)
            earlier = None
        if earlier:
            earlier.pop("_path", None)
            record["previous"] = earlier.pop("previous", []) + [earlier]
    _write(path, record)
    return path


def finish_run_record(output_dir: str, global_step: int) -> None:
    """Mark the record in ``output_dir`` finished at ``global_step``."""
    try:
        record = read_run_record(output_dir, search_parents=False)
    except RunRecordError as exc:
        logger.warning("%s; not marking it finished", exc)
        return
    if record is None:
        return
    record.pop("_path", None)
    record["finished"] = _now()
    record["global_step"] = global_step
    _write(os.path.join(output_dir, RUN_RECORD), record)


def read_run_record(folder: str, *, search_parents: bool = True) -> dict[str, Any] | None:
    """The run record describing the model in ``folder`` (or, for a ``checkpoint-N`` folder, its run's); None when
    there is none. Raises :class:`RunRecordError` for a record that is not valid JSON."""
    candidates = [folder]
    if search_parents:
        candidates.append(os.path.dirname(os.path.abspath(folder)))
    for candidate in candidates:
        path = os.path.join(candidate, RUN_RECORD)
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as fh:
                record = json.load(fh)
        except (OSError, ValueError) as exc:
            raise RunRecordError(f"run record {path} cannot be read: {exc}") from None
        if not isinstance(record, dict):
            raise RunRecordError(f"run record {path} is not a JSON object")
        record["_path"] = path
        return record
    return None


def run_record_callback(recipe):
    """A ``transformers.TrainerCallback`` that writes the run record when training begins and completes it at the
    end (main process only)."""
    from transformers import TrainerCallback

    class RunRecordCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                write_run_record(recipe, args.output_dir, start_step=state.global_step)

        def on_train_end(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                finish_run_record(args.output_dir, state.global_step)

    return RunRecordCallback()
