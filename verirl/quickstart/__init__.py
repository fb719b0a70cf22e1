"""``verirl quickstart``: curriculum → tiny model → SFT → DAPO with simulation rewards → held-out pass@k → report.

Runs on a laptop-class CPU with no download: the tasks come from :mod:`data_pipeline.curriculum`, the tokenizer and
the model are built from scratch (:mod:`verirl.models.tiny`), both trainers are verirl's own
(:func:`verirl.train.runner.train`), the rewards are real Icarus simulations in the reward engine's sandbox. The
held-out split holds parameter combinations never seen in training, and the SFT and RL checkpoints are evaluated
with the same sampling settings. See docs/quickstart.md.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
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


@contextlib.contextmanager
def _torch_threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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

    def stage(name: str, fn):
        result = run.done(name)
        if result is not None:
            say(f"[{name}] done earlier, skipped")
            return result
        say(f"[{name}] ...")
        start = time.monotonic()
        result = fn()
        timings[name] = round(time.monotonic() - start, 1)
        run.state["timings"] = timings
        return run.finish(name, result)

    sampling = Sampling(n=config.eval_samples, temperature=config.temperature,
                        max_new_tokens=config.max_completion_length, seed=config.seed)
    wall = time.monotonic()
    with _torch_threads(config.torch_threads), RewardPool(RewardConfig(), workers=config.reward_workers) as pool:
        stage("data", lambda: P.stage_data(run, _progress, pool))
        model = stage("model", lambda: P.stage_model(run))
        sft = stage("sft", lambda: P.train_stage(P.sft_recipe(run, model["path"]), resume=False, desc="SFT"))
        test = P.read_split(run, "test")

        def evaluate(name: str, model_dir: str):
            with _progress(total=len(test) * sampling.n, desc=f"eval {name}", unit="sample") as bar:
                return evaluate_checkpoint(model_dir, test, sampling, pool, run.path("eval", f"{name}.jsonl"),
                                           progress=bar.update)

        stage("eval_sft", lambda: evaluate("sft", sft["path"]))
        variants = [("rl", False)] + ([("rl_ablation", True)] if config.ablation else [])
        for name, ablated in variants:
            rl = stage(name, lambda n=name, a=ablated: P.train_stage(
                P.rl_recipe(run, sft["path"], run.path(n), ablation=a), resume=True, desc=n.replace("_", " ").upper()))
            stage(f"eval_{name}", lambda n=name, r=rl: evaluate(n, r["path"]))
    run.state["timings"] = timings
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


__all__ = ["QuickstartConfig", "add_arguments", "run", "run_quickstart"]
