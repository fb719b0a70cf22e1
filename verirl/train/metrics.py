"""Training metrics verirl adds to TRL's: pass rate per task level, and a JSON-lines metrics log.

Pass rate per level: a completion passes when its functional reward (the recipe's ``functional_reward``, by
default its ``simulation`` or ``equivalence`` reward) reaches 1.0 — all tests passed. Unscorable completions count
neither as passes nor as failures. The level is the task's ``metadata.level`` (or ``metadata.difficulty``); tasks
without one count under ``unknown``. The metrics are ``pass_rate/all`` and ``pass_rate/level_<L>``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import defaultdict

from transformers import TrainerCallback

from verirl.train.sampling import PASS_THRESHOLD

logger = logging.getLogger(__name__)


def task_level(row: dict) -> str:
    meta = row.get("metadata") or {}
    for key in ("level", "difficulty"):
        value = meta.get(key) if isinstance(meta, dict) else None
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):  # not a difficulty estimate dict
            return str(value)
    return "unknown"


def task_metrics(inputs: list[dict], rewards_per_func, functional_index: int | None, accelerator) -> dict[str, float]:
    """Pass rate overall and per level for one generation batch (all processes).

    ``rewards_per_func`` is TRL's gathered (all processes) reward matrix, ``functional_index`` the column of the
    functional reward (None: no pass rate); ``inputs`` are this process's rows. Every process must call this (it
    gathers).
    """
    index = functional_index
    if index is None:
        return {}
    from accelerate.utils import gather_object

    n_local = len(inputs)
    start = accelerator.process_index * n_local
    values = rewards_per_func[start : start + n_local, index].tolist()
    pairs = [(task_level(row), v) for row, v in zip(inputs, values, strict=True)]
    if accelerator.num_processes > 1:
        pairs = gather_object(pairs)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for level, value in pairs:
        if value is None or math.isnan(value):
            continue  # not scorable: neither a pass nor a fail
        passed = int(value >= PASS_THRESHOLD)
        for key in ("all", f"level_{level}"):
            counts[key][0] += passed
            counts[key][1] += 1
    return {f"pass_rate/{k}": p / n for k, (p, n) in counts.items() if n}


class JsonlMetricsCallback(TrainerCallback):
    """Appends every logged metrics dict (with the step) to ``<output_dir>/metrics.jsonl`` on the main process."""

    def __init__(self, path: str | None = None):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        path = self.path or os.path.join(args.output_dir, "metrics.jsonl")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        record = {"step": state.global_step, **{k: v for k, v in logs.items() if _jsonable(v)}}
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def _jsonable(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (int, str, bool)) or value is None


def read_metrics(path: str) -> list[dict]:
    """The records of a ``metrics.jsonl`` file."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
