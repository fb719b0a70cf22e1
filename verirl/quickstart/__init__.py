"""``verirl quickstart``: curriculum → tiny model → SFT (adaptive stop) → DAPO with simulation rewards → held-out
pass@k (by parameters and by family) → report.

Runs on a laptop-class CPU with no download: the tasks come from :mod:`data_pipeline.curriculum`, the tokenizer and
the model are built from scratch (:mod:`verirl.models.tiny`), both trainers are verirl's own
(:func:`verirl.train.runner.train`), the rewards are real Icarus simulations in the reward engine's sandbox. The
held-out splits hold parameter combinations and whole families never seen in training, and the SFT and RL
checkpoints are evaluated with the same sampling settings. See docs/quickstart.md.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time

from verirl.quickstart.config import QuickstartConfig, from_args
from verirl.quickstart.config import add_arguments as _add_config_arguments

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_config_arguments(parser)


def _progress(**kwargs):
    from tqdm.auto import tqdm

    return tqdm(**kwargs)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask; the machine's count where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_torch_threads(n: int) -> int:
    """``--torch-threads``: ``n`` itself, or for 0 one thread per usable core."""
    return n if n > 0 else usable_cores()


@contextlib.contextmanager
def _torch_threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(resolve_torch_threads(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cpu_seconds() -> float:
    """CPU seconds of this process and of its finished child processes (the simulator runs), user + system."""
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def run_quickstart(config: QuickstartConfig, *, say=logger.info) -> dict:
    """Run (or resume) the whole pipeline; returns the summary written to ``<out>/summary.json``.

    ``say`` receives one line per stage (the CLI passes ``print``; progress bars go to stderr via tqdm).
    """
    from rewards.hierarchy import RewardConfig
    from rewards.pool import RewardPool
    from verirl.quickstart import pipeline as P
    from verirl.quickstart.evaluate import Sampling, evaluate_checkpoint
    from verirl.quickstart.report import write_report

    run = P.RunFolder(config)
    timings = dict(run.state.get("timings", {}))
    cpu = dict(run.state.get("cpu_seconds", {}))

    def stage(name: str, fn):
        result = run.done(name)
        if result is not None:
            say(f"[{name}] done earlier, skipped")
            return result
        say(f"[{name}] ...")
        start, start_cpu = time.monotonic(), cpu_seconds()
        result = fn()
        timings[name] = round(time.monotonic() - start, 1)
        cpu[name] = round(cpu_seconds() - start_cpu, 1)
        run.state["timings"], run.state["cpu_seconds"] = timings, cpu
        return run.finish(name, result)

    sampling = Sampling(n=config.eval_samples, temperature=config.temperature,
                        max_new_tokens=config.max_completion_length, seed=config.seed)
    wall = time.monotonic()
    # the wall seconds per stage depend on these (the CPU seconds hardly do): the report says them
    run.state["machine"] = {"usable_cores": usable_cores(), "torch_threads": resolve_torch_threads(config.torch_threads),
                            "reward_workers": config.reward_workers}
    with _torch_threads(config.torch_threads), RewardPool(RewardConfig(), workers=config.reward_workers) as pool:
        data = stage("data", lambda: P.stage_data(run, _progress, pool))
        model = stage("model", lambda: P.stage_model(run))
        sft = stage("sft", lambda: P.stage_sft(run, model["path"], pool))
        splits = {split: P.read_split(run, split) for split in P.EVAL_SPLITS if split in data}

        def evaluate(name: str, model_dir: str) -> dict:
            out = {}
            for split, tasks in splits.items():
                suffix = "" if split == "test" else f".{split}"
                with _progress(total=len(tasks) * sampling.n, desc=f"eval {name} {split}", unit="sample") as bar:
                    out[split] = evaluate_checkpoint(model_dir, tasks, sampling, pool,
                                                     run.path("eval", f"{name}{suffix}.jsonl"), progress=bar.update)
            return out

        stage("eval_sft", lambda: evaluate("sft", sft["path"]))
        for name, arm, seed in P.rl_stages(config):
            run.state.setdefault("rl_stages", {})[name] = {"arm": arm, "seed": seed}
            rl = stage(name, lambda n=name, a=arm, s=seed: P.train_stage(
                P.rl_recipe(run, sft["path"], run.path(n), arm=a, seed=s), resume=True,
                desc=n.replace("_", " ").upper()))
            stage(f"eval_{name}", lambda n=name, r=rl: evaluate(n, r["path"]))
    run.save()
    summary = write_report(run, timings, time.monotonic() - wall)
    return summary


def run(args: argparse.Namespace) -> int:
    from verirl.quickstart.pipeline import QuickstartError

    try:
        config = from_args(args)
        summary = run_quickstart(config, say=print)
    except (ValueError, QuickstartError) as exc:
        print(f"verirl quickstart: error: {exc}", file=sys.stderr)
        return 2
    print(summary["final_line"])
    return 0


__all__ = ["QuickstartConfig", "add_arguments", "cpu_seconds", "run", "run_quickstart"]
