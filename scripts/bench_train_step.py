#!/usr/bin/env python
"""Step time of plain TRL GRPO vs verirl's trainer, and the overhead of dynamic sampling and entropy gating.

One run, on a tiny model built offline from the procedural curriculum (CPU is fine):

    python scripts/bench_train_step.py --out /tmp/bench_train_step.json

The configurations take turns over ``--rounds`` rounds (each after one warm-up step). Every configuration uses the
same model, tasks, seed and rewards (format + simulation through the reward engine,
plus a cheap reward that is informative for about two thirds of the groups, so dynamic sampling has work to do).
Reported per configuration: lower-quartile (and min, median) step time, generation and reward seconds per step, groups generated per
step. Overheads:

* ``verirl_vs_trl`` — our trainer with every addition off vs plain ``trl.GRPOTrainer``;
* ``gate_*`` — step time with the entropy gate vs without;
* ``dynamic_sampling`` — step time vs what the extra generations alone explain: the no-DS step with its
  generation+reward time scaled by the groups generated per step (target: <= 10%);
* ``*_own_time`` — the time measured inside verirl's own code (``timing/dynamic_sampling_s``,
  ``timing/entropy_gate_s``) as a fraction of the step: robust to a noisy, shared machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time

logger = logging.getLogger("bench_train_step")


def sparse_reward(prompts, completions, completion_ids=None, **kwargs):
    """1.0 for about a quarter of the completions (token-id sum divisible by 4): about 1/3 of groups agree."""
    return [float(sum(ids) % 4 == 0) for ids in completion_ids]


CONFIGS = {
    "trl_plain": {"plain": True},
    "verirl_base": {},
    "gate_per_response": {"entropy_gate": {"mode": "per_response", "top_fraction": 0.2, "log_tokens_every": 0}},
    "gate_batch": {"entropy_gate": {"mode": "batch", "top_fraction": 0.2, "log_tokens_every": 0}},
    "dynamic_sampling": {"dynamic_sampling": True, "max_refill_rounds": 2},
    "ds_adaptive_gate": {"dynamic_sampling": True, "adaptive_sampling": True, "max_refill_rounds": 2,
                             "entropy_gate": {"mode": "per_response", "top_fraction": 0.2, "log_tokens_every": 0}},
}


def build_assets(root: str, n_tasks: int) -> tuple[str, str]:
    from data_pipeline.curriculum import CurriculumConfig, generate_curriculum
    from verirl.models import build_tiny_model

    tasks = generate_curriculum(CurriculumConfig(seed=0, n_train=n_tasks, n_test=4, max_level=2))["train"]
    texts = [t["prompt"] for t in tasks] + [t["reference"] for t in tasks]
    model = build_tiny_model(os.path.join(root, "model"), texts, vocab_size=1024)
    path = os.path.join(root, "tasks.jsonl")
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(t) + "\n" for t in tasks)
    return model, path


def run_config(name: str, spec: dict, model: str, tasks: str, root: str, args) -> dict:
    from verirl.config import recipe_from_dict
    from verirl.train.runner import build_trainer

    spec = dict(spec)
    plain = spec.pop("plain", False)
    data = {
        "trainer": "grpo",
        "model_name_or_path": model,
        "dataset": tasks,
        "output_dir": os.path.join(root, name),
        "rewards": [{"name": "format", "weight": 0.2}, {"name": "simulation"},
                    {"name": f"{__name__}:sparse_reward"}],
        # the tiny model passes no simulation: dynamic sampling tests the sparse reward's pass instead
        "functional_reward": "sparse_reward",
        "use_cpu": True,
        "bf16": False,
        "gradient_checkpointing": False,
        "per_device_train_batch_size": args.batch,
        "num_generations": args.generations,
        "max_completion_length": args.completion_length,
        # every completion has the same length, so each configuration generates the same number of tokens
        "generation_kwargs": {"min_new_tokens": args.completion_length},
        "beta": 0.0,
        "learning_rate": 1e-4,
        "max_steps": args.steps + 1,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": ["none"],
        "seed": 0,
        **spec,
    }
    recipe = recipe_from_dict(data)
    if plain:
        from trl import GRPOTrainer

        from verirl.config import build_rewards
        from verirl.train.data import build_datasets
        from verirl.train.runner import load_tokenizer

        recipe.training.model_init_kwargs = {}
        train_ds, _ = build_datasets(recipe.verirl)
        trainer = GRPOTrainer(model=model, reward_funcs=build_rewards(recipe.verirl.rewards),
                              args=recipe.training, train_dataset=train_ds,
                              processing_class=load_tokenizer(recipe))
    else:
        trainer = build_trainer(recipe)
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    logs = [r for r in trainer.state.log_history if "step_time" in r][1:]  # first step: warm-up
    return {"records": logs, "wall_s": wall}


def _p25(values: list[float]) -> float:
    return statistics.quantiles(values, n=4, method="inclusive")[0] if len(values) > 1 else values[0]


def summarize(records: list[dict]) -> dict:
    """Per-configuration figures: lower quartiles (a busy shared machine only ever adds time) and medians."""

    def col(key, fn=_p25):
        values = [r[key] for r in records if r.get(key) is not None]
        return fn(values) if values else None

    return {
        "step_time_s": col("step_time"),
        "step_time_min_s": col("step_time", min),
        "step_time_median_s": col("step_time", statistics.median),
        "generation_s": col("timing/generation_s"),
        "reward_s": col("timing/reward_s"),
        "optimization_s": col("timing/optimization_s"),
        "dynamic_sampling_s": col("timing/dynamic_sampling_s"),
        "entropy_gate_s": col("timing/entropy_gate_s"),
        "groups_generated": col("dynamic_sampling/groups_generated"),
        "keep_ratio": col("dynamic_sampling/keep_ratio"),
        "gate_fraction": col("entropy_gate/fraction"),
        "steps_measured": len(records),
    }


def overheads(r: dict, target_groups: int) -> dict:
    """Overheads from lower-quartile step times (end to end) and from the instrumented own time."""
    out = {}
    base = r["verirl_base"]
    out["verirl_vs_trl_end_to_end"] = base["step_time_s"] / r["trl_plain"]["step_time_s"] - 1.0
    out["verirl_vs_trl_end_to_end_min"] = base["step_time_min_s"] / r["trl_plain"]["step_time_min_s"] - 1.0
    for name in ("gate_per_response", "gate_batch"):
        out[f"{name}_end_to_end"] = r[name]["step_time_s"] / base["step_time_s"] - 1.0
        out[f"{name}_optimization"] = r[name]["optimization_s"] / base["optimization_s"] - 1.0
        out[f"{name}_own_time"] = (r[name]["entropy_gate_s"] or 0.0) / r[name]["step_time_s"]
    for name in ("dynamic_sampling", "ds_adaptive_gate"):
        ds = r[name]
        gen_score = (base["generation_s"] or 0.0) + (base["reward_s"] or 0.0)
        scale = (ds["groups_generated"] or target_groups) / target_groups
        expected = base["step_time_s"] + gen_score * (scale - 1.0)
        out[f"{name}_beyond_extra_generations_end_to_end"] = ds["step_time_s"] / expected - 1.0
        own = (ds["dynamic_sampling_s"] or 0.0) + (ds["entropy_gate_s"] or 0.0)
        out[f"{name}_own_time"] = own / ds["step_time_s"]
        out[f"{name}_generation_factor"] = scale
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="measured steps per configuration and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds in which the configurations take turns")
    parser.add_argument("--batch", type=int, default=16, help="completions per step")
    parser.add_argument("--generations", type=int, default=4, help="completions per prompt")
    parser.add_argument("--completion-length", type=int, default=32, help="max new tokens")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: least sensitive to load)")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("transformers", "trl", "datasets"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    records: dict[str, list] = {name: [] for name in args.configs}
    with tempfile.TemporaryDirectory(prefix="verirl-bench-") as root:
        model, tasks = build_assets(root, n_tasks=64)
        # configurations take turns, so a slow phase of a shared machine hits all of them alike
        for round_index in range(args.rounds):
            for name in args.configs:
                run = run_config(name, CONFIGS[name], model, tasks, os.path.join(root, str(round_index)), args)
                records[name].extend(run["records"])
    results = {name: summarize(recs) for name, recs in records.items()}
    for name, r in results.items():
        print(f"{name:20s} step p25 {r['step_time_s']:.3f}s (min {r['step_time_min_s']:.3f}s, "
              f"median {r['step_time_median_s']:.3f}s)  "
              f"gen {r['generation_s'] or 0:.3f}s  reward {r['reward_s'] or 0:.3f}s  "
              f"ds-own {r['dynamic_sampling_s'] or 0:.4f}s  gate-own {r['entropy_gate_s'] or 0:.4f}s  "
              f"groups/step {r['groups_generated'] or '-'}  gate {r['gate_fraction'] or '-'}", flush=True)
    report = {"settings": vars(args), "results": results}
    if set(CONFIGS) <= set(results):
        report["overheads"] = overheads(results, args.batch // args.generations)
        for k, v in report["overheads"].items():
            print(f"{k:45s} {v:+.1%}" if "factor" not in k else f"{k:45s} {v:.2f}x")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
