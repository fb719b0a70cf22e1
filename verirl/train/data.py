"""Load a recipe's dataset and shape it for the trainer.

* RL (grpo/dapo): rows in the task schema; the text prompt goes through ``prompt_template`` and becomes a chat
  (optional system message + user message). All other task columns stay, because the rewards read them.
* SFT: ``messages`` or ``prompt``/``completion`` rows pass through (text prompts are templated the same way);
  task rows with a ``reference`` become prompt/completion pairs whose completion is the reference in a
  ```` ```verilog ```` block.
* DPO: ``prompt``/``chosen``/``rejected`` rows; the prompt is templated and chosen/rejected become assistant turns.
  Pairs written by ``verirl data preferences`` record how their prompts were rendered when they were sampled
  (``rendering``); a recipe whose ``system_prompt``/``prompt_template`` differ is refused, because the pairs would
  be trained on prompts the policy never saw.

Prompts are rendered by :func:`data_pipeline.prompting.render_prompt`, the function the preference sampler uses.
``eval_split`` holds training rows out for evaluation, chosen by a hash of each row's id (see :func:`split_rows`).
The free-form task columns (``files``, ``metadata``) are ``datasets.Json`` features: each row keeps its own mapping
and the trainer and rewards read it as the row had it, with nothing to decode.

``args`` is the trainer's config (:class:`verirl.train.configs.DataFields`: dataset, dataset_split, eval_dataset,
eval_split, max_train_samples, prompt_template, system_prompt, trainer).
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
from typing import Any

from data_pipeline.prompting import PromptError, render_prompt, rendering

logger = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset that cannot be used for this trainer; the message says what is wrong."""


def _read_jsonl(path: str) -> list[dict[str, Any]]:
    from rewards.task import iter_jsonl

    return [row for _, row in iter_jsonl(path, DatasetError)]


def load_rows(path: str, split: str = "train") -> list[dict[str, Any]]:
    """Rows of a JSONL or Parquet file, a folder of JSONL files, or a folder written by ``save_to_disk``."""
    if os.path.isfile(path):
        if path.endswith(".parquet"):
            from datasets import Dataset

            return [dict(r) for r in Dataset.from_parquet(path)]
        return _read_jsonl(path)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "dataset_dict.json")) or os.path.exists(
            os.path.join(path, "dataset_info.json")
        ):
            from datasets import DatasetDict, load_from_disk

            ds = load_from_disk(path)
            if isinstance(ds, DatasetDict):
                if split not in ds:
                    raise DatasetError(f"dataset {path!r} has splits {list(ds)}, not {split!r}; set dataset_split")
                ds = ds[split]
            return [dict(r) for r in ds]
        candidates = [os.path.join(path, f"{split}.jsonl")]
        files = [c for c in candidates if os.path.isfile(c)] or sorted(glob.glob(os.path.join(path, "*.jsonl")))
        if not files:
            raise DatasetError(f"dataset folder {path!r} holds no {split}.jsonl, no *.jsonl and no saved dataset")
        rows = []
        for f in files:
            rows.extend(_read_jsonl(f))
        return rows
    raise DatasetError(f"dataset {path!r} does not exist; set `dataset:` to a JSONL file or dataset folder")


def _chat(args, prompt: Any, row: dict[str, Any]) -> list[dict[str, str]]:
    try:
        return render_prompt(prompt, row, system_prompt=args.system_prompt, prompt_template=args.prompt_template)
    except PromptError as exc:
        raise DatasetError(f"{args.dataset}: {exc}") from None


#: task columns whose mappings differ in keys from row to row
FREE_FORM_COLUMNS = ("files", "metadata")


def _to_dataset(rows: list[dict[str, Any]]):
    """A ``datasets.Dataset`` of the rows; free-form columns are ``Json`` features (Arrow would merge their
    mappings into one struct with None holes)."""
    from datasets import Dataset, Features, Json

    free = [key for key in FREE_FORM_COLUMNS if any(key in row for row in rows)]
    if not free:
        return Dataset.from_list(rows)
    others = Dataset.from_list([{k: v for k, v in row.items() if k not in free} for row in rows]).features
    return Dataset.from_list(rows, features=Features({**others, **{key: Json() for key in free}}))


def rl_dataset(args, rows: list[dict[str, Any]]):
    out = []
    for i, row in enumerate(rows):
        missing = [k for k in ("id", "prompt", "top") if k not in row]
        if missing:
            raise DatasetError(
                f"{args.dataset}: row {i} lacks task field(s) {missing}; RL needs the task schema "
                f"(see docs/architecture.md)"
            )
        row = dict(row)
        row["prompt"] = _chat(args, row["prompt"], row)
        out.append(row)
    return _to_dataset(out)


def _fenced(code: str) -> str:
    return f"```verilog\n{code.strip()}\n```"


def sft_dataset(args, rows: list[dict[str, Any]]):
    out = []
    for i, row in enumerate(rows):
        if "messages" in row:
            out.append({"messages": row["messages"]})
        elif "prompt" in row and "completion" in row:
            completion = row["completion"]
            if isinstance(completion, str):
                completion = [{"role": "assistant", "content": completion}]
            out.append({"prompt": _chat(args, row["prompt"], row), "completion": completion})
        elif "prompt" in row and row.get("reference"):
            out.append({
                "prompt": _chat(args, row["prompt"], row),
                "completion": [{"role": "assistant", "content": _fenced(row["reference"])}],
            })
        else:
            raise DatasetError(
                f"{args.dataset}: SFT row {i} needs `messages`, `prompt`+`completion`, or a task with `reference`"
            )
    return _to_dataset(out)


def dpo_dataset(args, rows: list[dict[str, Any]]):
    out = []
    ours = rendering(args.system_prompt, args.prompt_template)
    for i, row in enumerate(rows):
        missing = [k for k in ("prompt", "chosen", "rejected") if k not in row]
        if missing:
            raise DatasetError(f"{args.dataset}: DPO row {i} lacks {missing}; preference pairs need prompt/chosen/rejected")
        sampled = row.get("rendering")
        if isinstance(sampled, dict) and rendering(sampled.get("system_prompt"), sampled.get("prompt_template")) != ours:
            raise DatasetError(
                f"{args.dataset}: DPO row {i} was sampled with system_prompt={sampled.get('system_prompt')!r}, "
                f"prompt_template={sampled.get('prompt_template')!r}, but this recipe renders prompts with "
                f"system_prompt={ours['system_prompt']!r}, prompt_template={ours['prompt_template']!r}; set the "
                f"recipe's system_prompt/prompt_template to the pairs' (or rebuild the pairs with `verirl data "
                f"preferences` using the recipe's)"
            )
        fields = {"id": row.get("id", row.get("task_id", "")), "top": row.get("top", "")}
        pair = {"prompt": _chat(args, row["prompt"], fields)}
        for key in ("chosen", "rejected"):
            value = row[key]
            pair[key] = [{"role": "assistant", "content": value}] if isinstance(value, str) else value
        out.append(pair)
    return _to_dataset(out)


BUILDERS = {"grpo": rl_dataset, "dapo": rl_dataset, "sft": sft_dataset, "dpo": dpo_dataset}


def _row_key(row: dict[str, Any]) -> str:
    for key in ("id", "task_id"):
        if row.get(key) is not None:
            return f"{key}:{row[key]}"
    return "row:" + json.dumps(row, sort_keys=True, default=str)


def _unit_hash(row: dict[str, Any]) -> float:
    """A number in [0, 1) that depends on the row's id (or content) only."""
    return int(hashlib.sha256(_row_key(row).encode()).hexdigest()[:16], 16) / 2.0**64


def split_rows(rows: list[dict[str, Any]], eval_split: float, source: str = "dataset"):
    """(train_rows, eval_rows) for ``eval_split``, by a hash of each row's id (``id``/``task_id``, else content).

    A fraction ``f < 1`` holds out every row whose hash is below ``f`` (at least one row): a row's side depends on
    its own id only, so it stays held out when the dataset grows or is reordered, and the count is about ``f * n``.
    A count ``N >= 1`` holds out the ``N`` rows with the lowest hashes (exactly ``N``; independent of row order).
    """
    n = len(rows)
    hashes = [_unit_hash(r) for r in rows]
    order = sorted(range(n), key=lambda i: (hashes[i], i))
    if eval_split < 1:
        held = {i for i in range(n) if hashes[i] < eval_split} or set(order[:1])
    else:
        held = set(order[: int(eval_split)])
    if len(held) >= n:
        raise DatasetError(
            f"{source}: eval_split={eval_split} holds out {len(held)} of its {n} rows and leaves none to train on; "
            f"lower eval_split"
        )
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def build_datasets(args):
    """(train_dataset, eval_dataset or None) for the recipe's trainer."""
    rows = load_rows(args.dataset, args.dataset_split)
    if not rows:
        raise DatasetError(f"dataset {args.dataset!r} is empty")
    eval_rows = None
    if args.eval_split is not None:
        rows, eval_rows = split_rows(rows, args.eval_split, args.dataset)
    elif args.eval_dataset:
        eval_rows = load_rows(args.eval_dataset, args.dataset_split)
    if args.max_train_samples is not None:
        rows = rows[: args.max_train_samples]
    builder = BUILDERS[args.trainer]
    train = builder(args, rows)
    evals = builder(args, eval_rows) if eval_rows is not None else None
    logger.info("loaded %d training rows from %s%s", len(train), args.dataset,
                f" ({len(evals)} held out for evaluation)" if args.eval_split is not None else "")
    return train, evals
