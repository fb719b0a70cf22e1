"""A run killed mid-training resumes from its last checkpoint to exactly what an uninterrupted run does: the same
task order, sampling state, rewards and losses; the reward cache on disk is reused.

Runs are stopped by the trainer's own switch (VERIRL_STOP_AFTER_CHECKPOINT=N[:SIGNAL]: signal every process right
after checkpoint N is written), never by a poller racing the run.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import types

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


def _overrides(assets, out_dir, **extra):
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
        # one generation per step (the tiny DAPO recipe updates several times per rollout, and a checkpoint inside a
        # rollout resumes with a new generation), groups kept on the toy reward's spread (the random model passes no
        # simulation, so the default `pass` signal would keep nothing)
        "steps_per_generation": 1,
        "num_iterations": 1,
        "dynamic_sampling_signal": "total",
        **extra,
    }


def _cache_rows(run_dir) -> int:
    files = sorted((run_dir / "reward_cache").glob("*.sqlite"))
    assert files, f"no reward cache in {run_dir}"
    with sqlite3.connect(files[0]) as db:
        return db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]


@pytest.fixture(scope="module")
def reference(tiny_assets, tmp_path_factory):
    """The same run without interruption (a subprocess, like the others: same threads, same numerics)."""
    out = tmp_path_factory.mktemp("ref")
    proc = run_training(train_command(RECIPE, _overrides(tiny_assets, out)))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


@pytest.mark.slow
@pytest.mark.eda
@needs_icarus
@pytest.mark.parametrize("stop_at", [1, 2])
def test_kill_and_resume(tiny_assets, reference, tmp_path, stop_at):
    run_dir = tmp_path / "run"
    overrides = _overrides(tiny_assets, run_dir)
    killed = run_training(train_command(RECIPE, overrides), env={"VERIRL_STOP_AFTER_CHECKPOINT": str(stop_at)})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-4000:]
    assert checkpoints(run_dir) == list(range(1, stop_at + 1))  # killed right after checkpoint N, before step N+1
    saved = sampling_state(run_dir / f"checkpoint-{stop_at}")
    assert saved["groups_generated"] > 0
    cached = _cache_rows(run_dir)
    assert cached > 0

    resumed = run_training(train_command(RECIPE, overrides, resume=True))
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert checkpoints(run_dir) == [1, 2, 3]
    # same data order: every step drew the prompts the uninterrupted run drew
    assert ids_by_step(run_dir) == ids_by_step(reference)
    # same sampling state at the end (refill-stream position, keep-ratio average, groups generated)
    assert sampling_state(run_dir / "checkpoint-3") == sampling_state(reference / "checkpoint-3")
    assert sampling_state(run_dir / "checkpoint-3")["groups_generated"] > saved["groups_generated"]
    # same rewards and losses at every step, before and after the interruption
    assert metrics_by_step(run_dir) == metrics_by_step(reference)
    assert sorted(metrics_by_step(run_dir)) == [1, 2, 3]
    # the resumed run kept and extended the on-disk reward cache
    assert _cache_rows(run_dir) >= cached


@pytest.mark.slow
@pytest.mark.eda
@needs_icarus
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_signal_stops_with_one_line_naming_checkpoint_and_resume(tiny_assets, tmp_path, signame):
    run_dir = tmp_path / "run"
    overrides = _overrides(tiny_assets, run_dir)
    proc = run_training(train_command(RECIPE, overrides), env={"VERIRL_STOP_AFTER_CHECKPOINT": f"1:{signame}"})
    assert proc.returncode == 128 + getattr(signal, signame), proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("verirl train:")]
    assert len(lines) == 1, proc.stderr[-4000:]
    assert f"stopped by {signame}" in lines[0]
    assert str(run_dir / "checkpoint-1") in lines[0]
    assert "--resume" in lines[0] and RECIPE in lines[0]
    assert checkpoints(run_dir) == [1]  # (test_kill_and_resume shows that --resume continues from there)


def test_stop_message_without_a_checkpoint(tmp_path):
    from verirl.train.cli import stop_message

    training = types.SimpleNamespace(output_dir=str(tmp_path / "empty"), save_strategy="steps", save_steps=50)
    recipe = types.SimpleNamespace(training=training, verirl=types.SimpleNamespace(reward_cache_dir=None))
    args = types.SimpleNamespace(config="r.yaml", overrides=["max_steps=9"])
    line = stop_message(recipe, args, "SIGINT")
    assert "nothing saved yet" in line and "every 50 steps" in line and "\n" not in line
    (tmp_path / "empty" / "checkpoint-50").mkdir(parents=True)
    (tmp_path / "empty" / "checkpoint-50" / "trainer_state.json").write_text("{}")
    line = stop_message(recipe, args, "SIGTERM")
    assert "checkpoint-50" in line and "verirl train --config r.yaml max_steps=9 --resume" in line


def test_stop_switch_rejects_bad_values(monkeypatch):
    from verirl.config import RecipeError
    from verirl.train.runner import stop_after_checkpoint_callback

    monkeypatch.delenv("VERIRL_STOP_AFTER_CHECKPOINT", raising=False)
    assert stop_after_checkpoint_callback() is None
    for bad in ("one", "2:SIGSTOP", "3:"):
        monkeypatch.setenv("VERIRL_STOP_AFTER_CHECKPOINT", bad)
        if bad == "3:":  # an empty signal means the default, SIGKILL
            assert stop_after_checkpoint_callback() is not None
            continue
        with pytest.raises(RecipeError, match="VERIRL_STOP_AFTER_CHECKPOINT"):
            stop_after_checkpoint_callback()
