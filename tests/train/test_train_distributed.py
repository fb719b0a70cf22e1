"""Two CPU processes under `accelerate launch` (gloo): a DAPO run completes, and a run killed right after its first
checkpoint resumes to the same task order, sampling state, rewards and losses as the uninterrupted run.

Before, resuming under recipes/accelerate/cpu_2proc.yaml failed with "don't know how to restore data location of
torch.storage.UntypedStorage (tagged with cpu:0)".
"""

from __future__ import annotations

import os

import pytest
from launch_helpers import (
    checkpoints,
    ids_by_step,
    metrics_by_step,
    run_training,
    sampling_state,
    train_command,
)
from tiny_assets import needs_icarus

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(ROOT, "recipes", "tiny", "dapo.yaml")
CPU_2PROC = os.path.join(ROOT, "recipes", "accelerate", "cpu_2proc.yaml")


def _overrides(assets, out_dir):
    return {
        "model_name_or_path": assets["model"],
        "dataset": assets["tasks"],
        "output_dir": str(out_dir),
        # the recipe's rewards plus one that varies; dynamic sampling (dapo preset) runs the cross-process refill
        "rewards": [{"name": "format", "weight": 0.2}, {"name": "simulation"},
                    {"name": "train_toy_rewards:half_informative_reward"}],
        "record_task_ids": True,
        "max_steps": 3,
        "max_completion_length": 12,
        "save_strategy": "steps",
        "save_steps": 1,
        # one generation per step (the tiny DAPO recipe updates several times per rollout, and a checkpoint inside a
        # rollout resumes with a new generation), groups kept on the toy reward's spread (the random model passes no
        # simulation, so the default `pass` signal would keep nothing)
        "steps_per_generation": 1,
        "num_iterations": 1,
        "per_device_train_batch_size": 8,  # 8 completions per process per step, as below
        "dynamic_sampling_signal": "total",
    }


@pytest.mark.slow
@pytest.mark.eda
@needs_icarus
def test_two_processes_train_and_resume_exactly(tiny_assets, tmp_path):
    ref = tmp_path / "ref"
    proc = run_training(train_command(RECIPE, _overrides(tiny_assets, ref), accelerate_config=CPU_2PROC))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "trained 3 steps" in proc.stdout
    assert (ref / "model.safetensors").exists()
    assert any("dynamic_sampling/keep_ratio" in r for r in metrics_by_step(ref).values())
    # 8 completions per process, 4 per group: 2 groups on each of the 2 processes, gathered in one record
    assert all(len(ids) == 4 for ids in ids_by_step(ref).values())

    run_dir = tmp_path / "run"
    overrides = _overrides(tiny_assets, run_dir)
    killed = run_training(train_command(RECIPE, overrides, accelerate_config=CPU_2PROC),
                          env={"VERIRL_STOP_AFTER_CHECKPOINT": "1"})
    assert killed.returncode != 0, killed.stdout[-2000:]
    assert checkpoints(run_dir) == [1]
    assert {"rng_state_0.pth", "rng_state_1.pth", "optimizer.pt"} <= set(os.listdir(run_dir / "checkpoint-1"))

    resumed = run_training(train_command(RECIPE, overrides, accelerate_config=CPU_2PROC, resume=True))
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "trained 3 steps" in resumed.stdout
    assert checkpoints(run_dir) == [1, 2, 3]
    assert ids_by_step(run_dir) == ids_by_step(ref)
    assert sampling_state(run_dir / "checkpoint-3") == sampling_state(ref / "checkpoint-3")
    assert metrics_by_step(run_dir) == metrics_by_step(ref)
