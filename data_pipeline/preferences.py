"""DPO preference pairs from scored samples.

For every task, several completions — sampled from a policy (an :mod:`data_pipeline.llm`
backend) or read from a JSONL file of samples — are scored with :class:`rewards.pool.RewardPool`
(simulation against the testbench, or equivalence against the reference). The value of a
completion is the fraction of checks it passes (``detail["pass_fraction"]``, 0 for a completion
that fails before simulation: no code, syntax error, ...). A pair ``(chosen, rejected)`` is
emitted when ``value(chosen) - value(rejected) >= margin``; the best completions are paired with
the worst, at most ``max_pairs_per_prompt`` times, never the same text twice. Completions that
are not scorable (infrastructure faults) are left out, never used as "rejected". By default
(``require_chosen_pass``) the chosen completion must pass every check: a pair of two wrong designs
teaches the policy to prefer one bug over another.

The policy is sampled on the prompt exactly as the DPO recipe will render it
(:func:`data_pipeline.prompting.render_prompt` with the config's ``system_prompt`` and
``prompt_template`` — set them to the DPO recipe's); every pair records these settings under
``rendering`` and the DPO trainer refuses a recipe that renders its prompts differently.

Output rows (JSONL): ``prompt``, ``chosen``, ``rejected`` in TRL's format — plain strings when the
task prompt is a string, chat messages when it is a conversation — plus ``task_id``, ``top``, the two
scores and ``rendering``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter

from .config import PreferenceConfig
from .policy_samples import PolicySampler, map_scored_tasks, parse_task_rows, score_groups
from .prompting import rendering

logger = logging.getLogger(__name__)


def load_completions(path: str) -> dict[str, list[str]]:
    """``task_id → completions`` from a JSONL of samples (``task_id`` or ``id``; ``completion`` or ``text``)."""
    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                task_id = str(row.get("task_id", row.get("id")))
                completion = row.get("completion", row.get("text"))
            except (json.JSONDecodeError, AttributeError):
                raise ValueError(f"{path}:{lineno}: expected a JSON object with task_id and completion") from None
            if completion is None or task_id == "None":
                raise ValueError(f"{path}:{lineno}: needs `task_id` (or `id`) and `completion` (or `text`)")
            out.setdefault(task_id, []).append(completion)
    return out


def completion_value(score) -> float | None:
    """Fraction of checks passed; ``None`` when not scorable."""
    if not score.scorable:
        return None
    fraction = (score.detail or {}).get("pass_fraction")
    if fraction is None:
        return 1.0 if score.passed else 0.0
    return float(fraction)


def make_pairs(task: dict, completions: list, scores: list, cfg: PreferenceConfig) -> list[dict]:
    """Pairs for one task (see module docstring)."""
    graded = []
    seen = set()
    for completion, score in zip(completions, scores):
        value = completion_value(score)
        key = json.dumps(completion, sort_keys=True) if not isinstance(completion, str) else completion
        if value is None or key in seen:
            continue
        seen.add(key)
        graded.append((value, score.reward or 0.0, completion, score))
    graded.sort(key=lambda g: (g[0], g[1]), reverse=True)
    pairs = []
    lo = len(graded) - 1
    for hi in range(len(graded)):
        if len(pairs) >= cfg.max_pairs_per_prompt or hi >= lo:
            break
        chosen, rejected = graded[hi], graded[lo]
        if cfg.require_chosen_pass and not chosen[3].passed:
            break
        if chosen[0] - rejected[0] < cfg.margin:
            break
        pairs.append(_pair_row(task, chosen, rejected, cfg))
        lo -= 1
    return pairs


def _pair_row(task: dict, chosen, rejected, cfg: PreferenceConfig) -> dict:
    prompt = task["prompt"]
    conversational = not isinstance(prompt, str)

    def wrap(completion):
        if conversational and isinstance(completion, str):
            return [{"role": "assistant", "content": completion}]
        return completion

    return {
        "prompt": prompt,
        "chosen": wrap(chosen[2]),
        "rejected": wrap(rejected[2]),
        "task_id": task["id"],
        "top": task.get("top"),  # with task_id, the fields prompt_template may use when the pair is trained on
        "chosen_score": {"pass_fraction": chosen[0], "reward": chosen[1], "failure": chosen[3].failure},
        "rejected_score": {"pass_fraction": rejected[0], "reward": rejected[1], "failure": rejected[3].failure},
        "rendering": rendering(cfg.system_prompt, cfg.prompt_template),
    }


def build_preferences(cfg: PreferenceConfig, *, backend=None, progress: bool | None = None) -> dict:
    """Write preference pairs to ``cfg.output``; returns counts.

    Resumable: prompts are processed in shards of ``batch_size`` under ``<output>.shards/``; a rerun skips
    the shards already committed with the same settings.
    """
    cfg.validate_for_run()
    samples = load_completions(cfg.completions) if cfg.completions else None
    sampler = PolicySampler(cfg.llm, backend=backend, system_prompt=cfg.system_prompt,
                            prompt_template=cfg.prompt_template)

    def process(index: int, batch: list[dict], pool) -> tuple[list[dict], Counter]:
        tasks, counts = parse_task_rows(batch)
        if samples is not None:
            groups = [samples.get(row["id"], []) for row, _ in tasks]
        else:
            groups = sampler.sample([row for row, _ in tasks], cfg.samples_per_prompt, cfg.seed + index * 100_003)
        out: list[dict] = []
        for (row, _), group, group_scores in zip(tasks, groups, score_groups(pool, tasks, groups)):
            counts["completions"] += len(group)
            counts["unscorable"] += sum(1 for s in group_scores if not s.scorable)
            if len(group) < 2:
                counts["too_few_samples"] += 1
                continue
            pairs = make_pairs(row, group, group_scores, cfg)
            if not pairs:
                counts["no_pair_with_margin"] += 1
            out.extend(pairs)
            counts["pairs"] += len(pairs)
        return out, counts

    fingerprint = json.dumps([cfg.completions, cfg.llm and dataclasses.asdict(cfg.llm), cfg.samples_per_prompt,
                              cfg.margin, cfg.max_pairs_per_prompt, cfg.require_chosen_pass, cfg.reward, cfg.seed,
                              sampler.rendering],
                             sort_keys=True, default=str)
    return map_scored_tasks(cfg, process, fingerprint=fingerprint, what="preferences", progress=progress)
