"""Load a recipe's dataset and shape it for the trainer.

* RL (grpo/dapo): rows in the task schema; the text prompt goes through ``prompt_template`` and becomes a chat
  (optional system message + user message). All other task columns stay, because the rewards read them.
* SFT: ``messages`` or ``prompt``/``completion`` rows pass through (text prompts are templated the same way);
  task rows with a ``reference`` become prompt/completion pairs whose completion is the reference in a
  ```` ```verilog ```` block.
* DPO: ``prompt``/``chosen``/``rejected`` rows; the prompt is templated and chosen/rejected become assistant turns.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from typing import Any

from verirl.config import VerirlArgs

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


def _chat(args: VerirlArgs, prompt: Any, row: dict[str, Any]) -> list[dict[str, str]]:
    if isinstance(prompt, list):
        messages = [dict(m) for m in prompt]
        if args.system_prompt and not any(m.get("role") == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": args.system_prompt})
        return messages
    if not isinstance(prompt, str):
        raise DatasetError(f"row {row.get('id', '?')}: `prompt` must be text or chat messages, got {type(prompt)}")
    text = args.prompt_template.format(prompt=prompt, top=row.get("top", ""), id=row.get("id", ""))
    messages = [{"role": "user", "content": text}]
    if args.system_prompt:
        messages.insert(0, {"role": "system", "content": args.system_prompt})
    return messages


def _to_dataset(rows: list[dict[str, Any]]):
    from datasets import Dataset

    # nested free-form dicts (files, metadata) differ in keys between rows; Arrow would merge them into one
    # struct with None holes, so they travel as JSON text and the reward engine's task loader decodes them
    for row in rows:
        for key in ("files", "metadata"):
            if isinstance(row.get(key), dict):
                row[key] = json.dumps(row[key], sort_keys=True)
    return Dataset.from_list(rows)


def rl_dataset(args: VerirlArgs, rows: list[dict[str, Any]]):
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


def sft_dataset(args: VerirlArgs, rows: list[dict[str, Any]]):
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


def dpo_dataset(args: VerirlArgs, rows: list[dict[str, Any]]):
    out = []
    for i, row in enumerate(rows):
        missing = [k for k in ("prompt", "chosen", "rejected") if k not in row]
        if missing:
            raise DatasetError(f"{args.dataset}: DPO row {i} lacks {missing}; preference pairs need prompt/chosen/rejected")
        pair = {"prompt": _chat(args, row["prompt"], row)}
        for key in ("chosen", "rejected"):
            value = row[key]
            pair[key] = [{"role": "assistant", "content": value}] if isinstance(value, str) else value
        out.append(pair)
    return _to_dataset(out)


BUILDERS = {"grpo": rl_dataset, "dapo": rl_dataset, "sft": sft_dataset, "dpo": dpo_dataset}


def build_datasets(args: VerirlArgs):
    """(train_dataset, eval_dataset or None) for the recipe's trainer."""
    rows = load_rows(args.dataset, args.dataset_split)
    if args.max_train_samples is not None:
        rows = rows[: args.max_train_samples]
    if not rows:
        raise DatasetError(f"dataset {args.dataset!r} is empty")
    builder = BUILDERS[args.trainer]
    train = builder(args, rows)
    evals = None
    if args.eval_dataset:
        evals = builder(args, load_rows(args.eval_dataset, args.dataset_split))
    logger.info("loaded %d training rows from %s", len(train), args.dataset)
    return train, evals
