"""A run killed mid-training resumes from its last checkpoint: same data order, sampling state and reward cache kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from tiny_assets import needs_icarus

from verirl.config import load_recipe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = os.path.join(ROOT, "recipes", "tiny", "dapo.yaml")


def _overrides(assets, out_dir):
    return {
        "model_name_or_path": assets["model"],
        "dataset": assets["tasks"],
        "output_dir": str(out_dir),
        "rewards": [{"name": "format", "weight": 0.2}, {"name": "simulation"},
                    {"name": "train_toy_rewards:half_informative_reward"}],
        "max_steps": 3,
        "max_completion_length": 12,
        "save_strategy": "steps",
        "save_steps": 1,
        "record_task_ids": True,
    }


def _ids_by_step(path):
    out = {}
    with open(path) as fh:
        for line in fh:
            rec = json.loads(line)
            if "ids" in rec:
                out[rec["step"]] = rec["ids"]
    return out


@pytest.mark.slow
@pytest.mark.eda
@needs_icarus
def test_kill_and_resume(tiny_assets, tmp_path):
    from verirl.train import train

    # reference: the same run without interruption
    ref_dir = tmp_path / "ref"
    train(load_recipe(RECIPE, _overrides(tiny_assets, ref_dir)))
    reference = _ids_by_step(ref_dir / "task_ids.jsonl")
    assert sorted(reference) == [0, 1, 2]

    # the same run in a separate process, killed (SIGKILL) once its first checkpoint is on disk
    run_dir = tmp_path / "run"
    args = [f"{k}={json.dumps(v)}" for k, v in _overrides(tiny_assets, run_dir).items()]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--config", RECIPE, *args],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    state_file = run_dir / "checkpoint-1" / "verirl_sampling_state.json"
    deadline = time.time() + 240
    while not state_file.exists():
        if proc.poll() is not None:
            raise AssertionError(f"training exited early: {proc.stderr.read().decode()[-3000:]}")
        assert time.time() < deadline, "no checkpoint within 240 s"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "checkpoint-3").exists()
    saved = json.loads(state_file.read_text())["sampling"]
    assert saved["groups_generated"] > 0
    cache_files = list((run_dir / "reward_cache").glob("*.sqlite"))
    assert cache_files and cache_files[0].stat().st_size > 0

    # resume: continues from the last checkpoint to the end
    result = train(load_recipe(RECIPE, _overrides(tiny_assets, run_dir)), resume=True)
    assert result.global_step == 3
    last = max(int(p.name.split("-")[1]) for p in run_dir.glob("checkpoint-*"))
    assert last == 3
    trainer = result.trainer
    # the sampling state continued from the checkpoint instead of starting over
    assert trainer.sampling_state.groups_generated > saved["groups_generated"]
    assert trainer.sampling_state.refill_cursor >= saved["refill_cursor"]
    # same data order: every step of the resumed run drew the prompts the uninterrupted run drew
    resumed = _ids_by_step(run_dir / "task_ids.jsonl")
    for step in range(3):
        assert resumed[step] == reference[step], step
    # the rewards of the resumed run write to the same on-disk cache
    assert any(getattr(f, "settings", {}).get("cache_path") == str(cache_files[0]) for f in trainer.reward_funcs)
