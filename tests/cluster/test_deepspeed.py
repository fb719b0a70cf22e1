"""DeepSpeed ZeRO-2 and ZeRO-3 with the shipped accelerate configs: two CPU processes (gloo, DeepSpeed's CPU
accelerator, fp32 from the recipe) train the tiny DAPO recipe, are killed right after checkpoint 1 and resume to
exactly the task order, sampling state, rewards and losses of an uninterrupted run.

The first DeepSpeed launch on a machine compiles DeepSpeed's CPU shared-memory comm op into TORCH_EXTENSIONS_DIR
(~/.cache/torch_extensions by default; 46 s to 266 s on a shared 2-core machine); later launches load it (1 MB).
"""

from __future__ import annotations

import importlib.util
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

needs_deepspeed = pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None and os.environ.get("VERIRL_REQUIRE_DEEPSPEED") != "1",
    reason="needs DeepSpeed: pip install 'verirl[deepspeed]' (CI sets VERIRL_REQUIRE_DEEPSPEED=1)")


def _overrides(assets, out_dir):
    return {
        "model_name_or_path": assets["model"],
        "dataset": assets["tasks"],
        "output_dir": str(out_dir),
        "rewards": [{"name": "format", "weight": 0.2}, {"name": "simulation"},
                    {"name": "train_toy_rewards:half_informative_reward"}],
        "record_task_ids": True,
        "max_steps": 2,
        "max_completion_length": 12,
        "save_strategy": "steps",
        "save_steps": 1,
        # one generation per step (a checkpoint inside a rollout resumes with a new generation); groups kept on the
        # toy reward's spread (the random model passes no simulation)
        "steps_per_generation": 1,
        "num_iterations": 1,
        "dynamic_sampling_signal": "total",
        # DeepSpeed on CPU: not accelerate's CPU mode (that skips DeepSpeed); gloo for the collectives
        "use_cpu": False,
        "ddp_backend": "gloo",
    }


@pytest.mark.slow
@pytest.mark.eda
@needs_icarus
@needs_deepspeed
@pytest.mark.parametrize("config", ["zero2.yaml", "zero3.yaml"])
def test_deepspeed_two_cpu_processes_save_and_resume(tiny_assets, tmp_path, config):
    if importlib.util.find_spec("deepspeed") is None:
        pytest.fail("VERIRL_REQUIRE_DEEPSPEED=1 but DeepSpeed is not installed: pip install 'verirl[deepspeed]'")
    accelerate_config = os.path.join(ROOT, "recipes", "accelerate", config)
    launch = ("--num_processes", "2")  # the shipped config leaves the process count to the command line

    def command(out, **kw):
        return train_command(RECIPE, _overrides(tiny_assets, out), accelerate_config=accelerate_config,
                             launch_args=launch, **kw)

    ref = tmp_path / "ref"
    proc = run_training(command(ref))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "trained 2 steps" in proc.stdout
    assert (ref / "model.safetensors").exists()

    run_dir = tmp_path / "run"
    killed = run_training(command(run_dir), env={"VERIRL_STOP_AFTER_CHECKPOINT": "1"})
    assert killed.returncode != 0, killed.stdout[-2000:]
    assert checkpoints(run_dir) == [1]
    shards = os.listdir(run_dir / "checkpoint-1" / "global_step1")  # DeepSpeed's own sharded checkpoint
    assert sum("optim_states" in name for name in shards) == 2, shards

    resumed = run_training(command(run_dir, resume=True))
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "trained 2 steps" in resumed.stdout
    assert checkpoints(run_dir) == [1, 2]
    assert ids_by_step(run_dir) == ids_by_step(ref)
    assert sampling_state(run_dir / "checkpoint-2") == sampling_state(ref / "checkpoint-2")
    assert metrics_by_step(run_dir) == metrics_by_step(ref)
    assert sorted(metrics_by_step(run_dir)) == [1, 2]
