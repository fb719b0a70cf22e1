"""The tiny GRPO recipe runs to completion under `accelerate launch` with two CPU processes (gloo)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from tiny_assets import needs_icarus

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.slow
@pytest.mark.eda
@needs_icarus
def test_accelerate_two_cpu_processes(tiny_assets, tmp_path):
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or shutil.which("accelerate")
    assert accelerate, "the accelerate launcher is part of the pinned environment"
    out = tmp_path / "ddp"
    overrides = {
        "model_name_or_path": tiny_assets["model"],
        "dataset": tiny_assets["tasks"],
        "output_dir": str(out),
        # the recipe's rewards plus one that varies; dynamic sampling on, so the cross-process refill runs too
        "rewards": [{"name": "format", "weight": 0.2}, {"name": "simulation"},
                    {"name": "train_toy_rewards:half_informative_reward"}],
        "dynamic_sampling": True,
        "record_task_ids": True,
        "max_completion_length": 12,
    }
    cmd = [accelerate, "launch", "--config_file", os.path.join(ROOT, "recipes", "accelerate", "cpu_2proc.yaml"),
           os.path.join(ROOT, "scripts", "train.py"), "--config", os.path.join(ROOT, "recipes", "tiny", "grpo.yaml")]
    cmd += [f"{k}={json.dumps(v)}" for k, v in overrides.items()]
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "trained 2 steps" in proc.stdout
    assert (out / "model.safetensors").exists()
    with open(out / "metrics.jsonl") as fh:
        records = [json.loads(line) for line in fh]
    assert any("dynamic_sampling/keep_ratio" in r for r in records)
    with open(out / "task_ids.jsonl") as fh:
        first = json.loads(fh.readline())
    # 8 completions per process, 4 per group: 2 groups on each of the 2 processes, gathered in one record
    assert len(first["ids"]) == 4
