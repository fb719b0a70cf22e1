"""Run `scripts/train.py` in a subprocess (one process or under `accelerate launch`) and read what a run left behind.

Kill-and-resume tests stop a run with the trainer's own switch, ``VERIRL_STOP_AFTER_CHECKPOINT=N[:SIGNAL]``: every
process signals itself right after checkpoint N is written by all ranks, so nothing waits on a race.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN_SCRIPT = os.path.join(ROOT, "scripts", "train.py")

#: metrics that must be equal between an uninterrupted run and a killed-and-resumed one (timings are not)
COMPARED_METRICS = ("loss", "grad_norm", "reward", "reward_std", "entropy", "completions/mean_length",
                    "dynamic_sampling/groups_generated", "dynamic_sampling/keep_ratio", "rewards/format/mean",
                    "rewards/simulation/mean", "rewards/half_informative_reward/mean")


def accelerate_bin() -> str:
    path = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or shutil.which("accelerate")
    assert path, "the accelerate launcher is part of the pinned environment"
    return path


def override_args(overrides: dict) -> list[str]:
    return [f"{k}={json.dumps(v)}" for k, v in overrides.items()]


def train_command(recipe: str, overrides: dict, *, accelerate_config: str | None = None,
                  launch_args: tuple[str, ...] = (), resume: bool = False) -> list[str]:
    script = [TRAIN_SCRIPT, "--config", recipe, *override_args(overrides)] + (["--resume"] if resume else [])
    if accelerate_config is None:
        return [sys.executable, *script]
    return [accelerate_bin(), "launch", "--config_file", accelerate_config, *launch_args, *script]


def run_training(cmd: list[str], *, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a training command with the test reward plug-ins importable; one thread per process (2 cores)."""
    full_env = dict(os.environ, OMP_NUM_THREADS="1",
                    PYTHONPATH=os.pathsep.join([ROOT, HERE, os.environ.get("PYTHONPATH", "")]))
    full_env.pop("VERIRL_STOP_AFTER_CHECKPOINT", None)
    full_env.update(env or {})
    return subprocess.run(cmd, env=full_env, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          check=False)


def ids_by_step(run_dir) -> dict[int, list[str]]:
    out = {}
    with open(os.path.join(run_dir, "task_ids.jsonl")) as fh:
        for line in fh:
            rec = json.loads(line)
            if "ids" in rec:
                out[rec["step"]] = rec["ids"]
    return out


def metrics_by_step(run_dir) -> dict[int, dict]:
    """The training records of metrics.jsonl (not the final summary), by step; a later record of a step wins."""
    out = {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as fh:
        for line in fh:
            rec = json.loads(line)
            if "loss" in rec:
                out[rec["step"]] = {k: rec[k] for k in COMPARED_METRICS if k in rec}
    return out


def sampling_state(checkpoint_dir) -> dict:
    with open(os.path.join(checkpoint_dir, "verirl_sampling_state.json")) as fh:
        return json.load(fh)["sampling"]


def checkpoints(run_dir) -> list[int]:
    return sorted(int(p.split("-")[1]) for p in os.listdir(run_dir) if p.startswith("checkpoint-"))
