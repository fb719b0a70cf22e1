#!/usr/bin/env python
"""Step time of plain TRL GRPO vs verirl's trainer, and the overhead of dynamic sampling and entropy gating.

One run, on a tiny model built offline from the procedural curriculum (CPU is fine):

    python scripts/bench_train_step.py --out /tmp/bench_train_step.json

Steps last several seconds (a 4-layer, 256-wide model; 128-token completions; 16 completions per step), so that
the effects measured are larger than the step-to-step noise of a machine. The configurations take turns within
each of ``--rounds`` rounds (each run: one warm-up step, then ``--steps`` measured steps), so a slow phase of a shared
machine hits all of them alike; every configuration uses the same model, tasks, seed and rewards (format +
simulation through the reward engine, plus a cheap reward that is informative for about two thirds of the groups,
so dynamic sampling has work to do). Every completion has the same length, so each configuration generates the same
tokens per group.

Reported per configuration: median step time, generation, reward and optimisation seconds per step, groups
generated per step. Overheads are paired by round (a configuration against the base run of the same round) and
reported as the mean over rounds with a 90% interval (Student t over the rounds' log-ratios); an interval that
contains 0 is noise-sized:

* ``verirl_vs_trl`` — our trainer with every addition off vs plain ``trl.GRPOTrainer``;
* ``gate_*`` — step time with the entropy gate vs without, and beyond what its own measured work explains (TRL
  computes token entropies in every configuration; the gate's extra work is choosing the tokens,
  ``timing/entropy_gate_s``);
* ``dynamic_sampling*`` — step time beyond what its extra work explains, two ways: ``beyond_its_generation_rounds``
  (the base step plus the extra generation and scoring time it measured, rounds and all, plus the time inside dynamic
  sampling itself, ``timing/dynamic_sampling_cpu_s``: does it cost anything besides generating more?) and
  ``beyond_group_scaled_generation`` (the base step's generation and scoring scaled by the groups generated: also
  charges the fixed cost of each extra generation call, which a refill round of a few groups pays in full).
  Target: within 10%.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
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


def build_assets(root: str, n_tasks: int, args) -> tuple[str, str]:
    from data_pipeline.curriculum import CurriculumConfig, generate_curriculum
    from verirl.models import build_tiny_model

    tasks = generate_curriculum(CurriculumConfig(seed=0, n_train=n_tasks, n_test=4, max_level=2))["train"]
    texts = [t["prompt"] for t in tasks] + [t["reference"] for t in tasks]
    model = build_tiny_model(os.path.join(root, "model"), texts, vocab_size=2048, hidden_size=args.hidden,
                             num_heads=args.hidden // 64, num_layers=args.layers)
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
        train_ds, _ = build_datasets(recipe.training)
        trainer = GRPOTrainer(model=model, reward_funcs=build_rewards(recipe.training.rewards),
                              args=recipe.training, train_dataset=train_ds,
                              processing_class=load_tokenizer(recipe))
    else:
        trainer = build_trainer(recipe)
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    clock = StepClock()
    trainer.add_callback(clock.callback)
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    logs = [r for r in trainer.state.log_history if "step_time" in r]
    for record, (step_wall, step_cpu) in zip(logs, clock.steps):
        record["bench/step_wall_s"], record["bench/step_cpu_s"] = step_wall, step_cpu
    return {"records": logs[1:], "wall_s": wall}  # first step: warm-up


def cpu_seconds() -> float:
    """CPU of this process (all threads) and of the tool processes it waited for (the reward engine's)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class StepClock:
    """A trainer callback: (wall, CPU) seconds of every optimizer step, generation included, for any trainer."""

    def __init__(self):
        from transformers import TrainerCallback

        self.steps: list[tuple[float, float]] = []
        self._start = (0.0, 0.0)
        clock = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                clock._start = (time.perf_counter(), cpu_seconds())

            def on_step_end(self, args, state, control, **kwargs):
                clock.steps.append((time.perf_counter() - clock._start[0], cpu_seconds() - clock._start[1]))

        self.callback = _Callback()


def per_round(records: list[dict], key: str) -> float | None:
    """Median of ``key`` over one run's measured steps (``None`` when it was not logged)."""
    values = [r[key] for r in records if r.get(key) is not None]
    return statistics.median(values) if values else None


#: figure -> logged key. CPU seconds are the primary measure (the work done; a shared machine's load inflates wall time
#: far more than CPU time); wall-clock figures are reported beside them.
KEYS = {"step_cpu_s": "bench/step_cpu_s", "step_time_s": "bench/step_wall_s",
        "generation_cpu_s": "timing/generation_cpu_s", "reward_cpu_s": "timing/reward_cpu_s",
        "optimization_cpu_s": "timing/optimization_cpu_s", "dynamic_sampling_cpu_s": "timing/dynamic_sampling_cpu_s",
        "entropy_gate_cpu_s": "timing/entropy_gate_cpu_s", "generation_s": "timing/generation_s",
        "optimization_s": "timing/optimization_s",
        "groups_generated": "dynamic_sampling/groups_generated", "keep_ratio": "dynamic_sampling/keep_ratio",
        "gate_fraction": "entropy_gate/fraction"}


def summarize(rounds: list[list[dict]]) -> dict:
    """A configuration's figures: per round (median of its measured steps), and their median over rounds."""
    by_round = [{name: per_round(recs, key) for name, key in KEYS.items()} for recs in rounds]
    out = {name: (statistics.median([r[name] for r in by_round if r[name] is not None])
                  if any(r[name] is not None for r in by_round) else None) for name in KEYS}
    out["rounds"] = by_round
    out["steps_measured"] = sum(len(recs) for recs in rounds)
    return out


# two-sided 90% Student t quantiles by degrees of freedom
_T90 = {1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 6: 1.943, 7: 1.895, 8: 1.860, 9: 1.833, 10: 1.812}


def interval(ratios: list[float]) -> dict:
    """Mean relative change over rounds with a 90% interval (t over log-ratios): ``{mean, low, high}``."""
    logs = [math.log(r) for r in ratios if r and r > 0]
    if not logs:
        return {"mean": None, "low": None, "high": None, "rounds": 0}
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return {"mean": math.exp(mean) - 1, "low": None, "high": None, "rounds": 1}
    half = _T90.get(len(logs) - 1, 1.645) * statistics.stdev(logs) / math.sqrt(len(logs))
    return {"mean": math.exp(mean) - 1, "low": math.exp(mean - half) - 1, "high": math.exp(mean + half) - 1,
            "rounds": len(logs)}


def overheads(r: dict, target_groups: int, measure: str = "cpu") -> dict:
    """Paired per-round overheads (each configuration against the base run of the same round), on CPU seconds
    (``measure="cpu"``) or wall-clock seconds (``"wall"``)."""
    step = "step_cpu_s" if measure == "cpu" else "step_time_s"
    suffix = "_cpu_s" if measure == "cpu" else "_s"
    out = {}
    base = r["verirl_base"]["rounds"]

    def paired(name: str, explained) -> list[float]:
        ratios = []
        for b, x in zip(base, r[name]["rounds"]):
            if b[step] and x[step]:
                ratios.append(x[step] / explained(b, x))
        return ratios

    def get(row: dict, key: str) -> float:
        return row.get(key + suffix) or 0.0

    if "trl_plain" in r:
        trl = r["trl_plain"]["rounds"]
        out["verirl_vs_trl"] = interval([b[step] / t[step] for b, t in zip(base, trl) if b[step] and t[step]])
    for name in ("gate_per_response", "gate_batch"):
        if name in r:
            out[f"{name}_end_to_end"] = interval(paired(name, lambda b, x: b[step]))
            # TRL computes token entropies in every configuration: the gate's own work is choosing the tokens
            out[f"{name}_beyond_its_work"] = interval(paired(name, lambda b, x: b[step] + get(x, "entropy_gate")))
    for name in ("dynamic_sampling", "ds_adaptive_gate"):
        if name not in r:
            continue

        def own(x):
            return get(x, "dynamic_sampling") + get(x, "entropy_gate")

        def group_scaled(b, x):
            # the base step with its generation and scoring scaled by the groups generated
            scale = (x["groups_generated"] or target_groups) / target_groups
            return b[step] + (get(b, "generation") + get(b, "reward")) * (scale - 1.0) + own(x)

        def rounds_run(b, x):
            # the base step with the generation and scoring this configuration measured (its refill rounds, each
            # with the fixed cost of a generation call, included)
            gen_score = get(x, "generation") + get(x, "reward") - get(b, "generation") - get(b, "reward")
            return b[step] + gen_score + own(x)

        out[f"{name}_end_to_end"] = interval(paired(name, lambda b, x: b[step]))
        out[f"{name}_beyond_its_generation_rounds"] = interval(paired(name, rounds_run))
        out[f"{name}_beyond_group_scaled_generation"] = interval(paired(name, group_scaled))
        out[f"{name}_generation_factor"] = (r[name]["groups_generated"] or target_groups) / target_groups
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="measured steps per configuration and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds in which the configurations take turns")
    parser.add_argument("--batch", type=int, default=16, help="completions per step")
    parser.add_argument("--generations", type=int, default=4, help="completions per prompt")
    parser.add_argument("--completion-length", type=int, default=128, help="new tokens per completion")
    parser.add_argument("--hidden", type=int, default=256, help="model width (a multiple of 64)")
    parser.add_argument("--layers", type=int, default=4, help="model layers")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: least sensitive to load)")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    import torch

    if "verirl_base" not in args.configs:
        parser.error("--configs must include verirl_base (every overhead is measured against it)")
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("transformers", "trl", "datasets", "rewards"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    rounds: dict[str, list] = {name: [] for name in args.configs}
    with tempfile.TemporaryDirectory(prefix="verirl-bench-") as root:
        model, tasks = build_assets(root, n_tasks=64, args=args)
        # configurations take turns, so a slow phase of a shared machine hits all of them alike
        for round_index in range(args.rounds):
            order = args.configs if round_index % 2 == 0 else list(reversed(args.configs))
            for name in order:
                run = run_config(name, CONFIGS[name], model, tasks, os.path.join(root, str(round_index)), args)
                rounds[name].append(run["records"])
    results = {name: summarize(recs) for name, recs in rounds.items()}
    for name, r in results.items():
        print(f"{name:20s} step {r['step_cpu_s']:.2f}s cpu ({r['step_time_s']:.2f}s wall)  "
              f"gen {r['generation_cpu_s'] or 0:.2f}s  reward {r['reward_cpu_s'] or 0:.2f}s  "
              f"opt {r['optimization_cpu_s'] or 0:.2f}s  ds-own {r['dynamic_sampling_cpu_s'] or 0:.4f}s  "
              f"gate-own {r['entropy_gate_cpu_s'] or 0:.4f}s  groups/step {r['groups_generated'] or '-'}  "
              f"gate {r['gate_fraction'] or '-'}", flush=True)
    report = {"settings": vars(args), "results": results, "load": os.getloadavg()}
    for measure in ("cpu", "wall"):
        report[f"overheads_{measure}"] = found = overheads(results, args.batch // args.generations, measure)
        print(f"overheads on {measure} time over {args.rounds} rounds (mean [90% interval]; an interval containing 0 "
              "is noise-sized):")
        for k, v in found.items():
            if not isinstance(v, dict):
                print(f"  {k:45s} {v:.2f}x")
            elif v["low"] is None:
                print(f"  {k:45s} " + (f"{v['mean']:+.1%} (one round: no interval)" if v["mean"] is not None else "-"))
            else:
                print(f"  {k:45s} {v['mean']:+.1%} [{v['low']:+.1%}, {v['high']:+.1%}]")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
