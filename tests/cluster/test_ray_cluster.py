"""Rewards on an existing Ray cluster, started as operators do (`ray start --head` on loopback, a worker node
joining, token authentication on), inside private namespaces (tests/cluster/ray_cluster.py).

What would have failed before: joining passed num_cpus ("When connecting to an existing cluster, num_cpus and
num_gpus must not be provided"); there was no address setting, so nothing was shared; PPA always ran on the local
thread pool; a batch whose workers were gone blocked forever and its Ray tasks were never cancelled; and a client
without RAY_AUTH_MODE=token failed with a bare "Failed to connect".
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest
from cluster_fixtures import ALL_LEVELS, batch, tasks, verdict
from launch_helpers import metrics_by_step, run_training, train_command
from ray_cluster import RayCluster, namespaces_available
from tiny_assets import needs_icarus

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, "ray_scenarios.py")
#: a driver with these set cannot run any EDA tool itself: whatever it scores was scored on the cluster
NO_LOCAL_TOOLS = {"VERIRL_IVERILOG": "/nonexistent/iverilog", "VERIRL_VVP": "/nonexistent/vvp",
                  "VERIRL_YOSYS": "/nonexistent/yosys"}

_why_not = namespaces_available()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.eda,
    needs_icarus,
    pytest.mark.skipif(_why_not is not None, reason=f"Ray cluster tests run in private namespaces: {_why_not}"),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("ray", reason="needs Ray: pip install 'verirl[ray]'")
    import tempfile

    root = tempfile.mkdtemp(prefix="vr-ray-")  # short: Ray's socket paths must stay under 108 bytes
    try:
        with RayCluster(root) as c:
            yield c
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def local_verdicts():
    from rewards.pool import RewardPool

    with RewardPool(ALL_LEVELS, workers=2) as pool:
        scores = pool.score(batch())
        passing = [pair for pair, s in zip(batch(), scores) if s.passed]
        return {"scores": [verdict(s) for s in scores], "ppa": [c for c, _ in pool.map_ppa(passing, ALL_LEVELS)]}


def _scenario(cluster, name, **env):
    proc = cluster.run([sys.executable, SCENARIOS, name, cluster.address], env=cluster.env(**env))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_every_level_runs_on_the_cluster_with_the_local_verdicts(cluster, local_verdicts):
    result = _scenario(cluster, "verdicts", **NO_LOCAL_TOOLS)
    assert result["scores"] == local_verdicts["scores"]
    assert result["ppa"] == local_verdicts["ppa"] and len(result["ppa"]) >= 3
    assert all(s["reward"] is not None for s in result["scores"])  # no job fell back to this tool-less process
    assert result["workers"] == 2  # joined: the cluster's CPUs, no resources of its own


def _score_files(tmp_path):
    rows = [{"task_id": task.id, "completion": completion} for task, completion in batch()]
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(t.to_dict()) + "\n" for t in tasks().values()))
    (tmp_path / "completions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ["--tasks", str(tmp_path / "tasks.jsonl"), "--completions", str(tmp_path / "completions.jsonl"),
            "--w-ppa", "0.5"]


def _rows(path):
    keep = ("task_id", "reward", "passed", "failure", "components")
    return [{k: row[k] for k in keep} for row in map(json.loads, path.read_text().splitlines())]


def test_verirl_score_joins_the_cluster_by_address(cluster, tmp_path):
    import subprocess

    args = _score_files(tmp_path)
    local = subprocess.run([sys.executable, "-m", "verirl.cli", "score", *args, "--out", str(tmp_path / "local.jsonl")],
                           env=cluster.env(), cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert local.returncode == 0, local.stderr[-3000:]
    on_ray = cluster.run([sys.executable, "-m", "verirl.cli", "score", *args, "--out", str(tmp_path / "ray.jsonl"),
                          "--ray-address", cluster.address], env=cluster.env(**NO_LOCAL_TOOLS))
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    assert f"on the Ray cluster at {cluster.address}" in on_ray.stdout
    assert _rows(tmp_path / "ray.jsonl") == _rows(tmp_path / "local.jsonl")
    assert cluster.command("gcs-count") == "1"  # joined, never started a Ray of its own


def test_client_without_token_mode_is_told_what_to_set(cluster, tmp_path):
    env = cluster.env()
    del env["RAY_AUTH_MODE"]
    proc = cluster.run([sys.executable, "-m", "verirl.cli", "score", *_score_files(tmp_path), "--out",
                        str(tmp_path / "x.jsonl"), "--ray-address", cluster.address], env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr[-3000:]
    assert "cannot join the Ray cluster" in proc.stderr and "RAY_AUTH_MODE=token" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_killed_worker_mid_batch_loses_nothing(cluster):
    from cluster_fixtures import GATED_CONFIG, GOOD, WRONG

    from rewards.pool import RewardPool

    result = _scenario(cluster, "kill-worker")
    adder = tasks()["adder"]
    with RewardPool(GATED_CONFIG, workers=2) as pool:
        expected = [verdict(s) for s in pool.score([(adder, GOOD), (adder, GOOD), (adder, WRONG), (adder, GOOD)])]
    # the gated job (GOOD) was rerun by Ray after its worker was killed; the others were scored as usual
    assert result["scores"] == expected
    assert [s["passed"] for s in result["scores"]] == [True, True, False, True]


def test_lost_workers_end_the_batch_with_nones_and_reruns_later(cluster, local_verdicts):
    cluster.command("stop-workers")
    try:
        result = _scenario(cluster, "no-workers")
    finally:
        cluster.command("start-workers")
    for reward, failure, reason in result["stalled"]:
        assert reward is None and failure == "infrastructure" and "lost or stalled" in reason
    for reward, failure, reason in result["deadline"]:
        assert reward is None and failure == "infrastructure" and "batch deadline of 2.0s" in reason
    assert result["cancelled"] == 8  # both batches' unfinished tasks were cancelled on the cluster
    assert result["rerun"] == local_verdicts["scores"][:4]  # nothing cached for them: scored when workers came back


def test_two_process_dapo_run_shares_the_one_cluster(cluster, tiny_assets, tmp_path):
    recipe = os.path.join(ROOT, "recipes", "tiny", "dapo.yaml")
    cpu_2proc = os.path.join(ROOT, "recipes", "accelerate", "cpu_2proc.yaml")

    def overrides(out, **sim_kwargs):
        return {"model_name_or_path": tiny_assets["model"], "dataset": tiny_assets["tasks"], "output_dir": str(out),
                "rewards": [{"name": "format", "weight": 0.2}, {"name": "simulation", "kwargs": sim_kwargs},
                            {"name": "train_toy_rewards:half_informative_reward"}],
                "max_steps": 2, "max_completion_length": 12,
                # groups kept on the toy reward's spread: the random model passes no simulation
                "dynamic_sampling_signal": "total"}

    local = run_training(train_command(recipe, overrides(tmp_path / "local"), accelerate_config=cpu_2proc))
    assert local.returncode == 0, local.stderr[-4000:]

    jobs_before = json.loads(cluster.command("jobs"))
    out = tmp_path / "ray"
    cmd = train_command(recipe, overrides(out, backend="ray", ray_address=cluster.address),
                        accelerate_config=cpu_2proc)
    on_ray = cluster.run(cmd, env=cluster.env(**NO_LOCAL_TOOLS))
    assert on_ray.returncode == 0, on_ray.stderr[-4000:]
    assert "trained 2 steps" in on_ray.stdout
    def drivers(jobs):
        return sum("scripts/train.py" in entrypoint for entrypoint in jobs)

    assert drivers(json.loads(cluster.command("jobs"))) - drivers(jobs_before) == 2  # both ranks joined it ...
    assert cluster.command("gcs-count") == "1"  # ... and neither started a Ray of its own
    ray_metrics = metrics_by_step(out)
    assert sorted(ray_metrics) == [1, 2]
    assert ray_metrics == metrics_by_step(tmp_path / "local")  # same rewards, so the same losses
    with open(out / "metrics.jsonl") as fh:
        records = [json.loads(line) for line in fh]
    assert all(r.get("simulation/unscorable_frac", 0) == 0 for r in records)


VE = os.path.normpath(os.path.join(ROOT, "..", "shared", "bench", "verilog-eval-v2"))


def test_verirl_eval_scores_on_the_cluster(cluster, tmp_path):
    if not os.path.isdir(VE):
        pytest.skip(f"benchmark folder {VE} is missing")
    import subprocess

    args = [sys.executable, "-m", "verirl.cli", "eval", "--benchmark", "verilog-eval-v2", "--bench-dir", VE,
            "--check-references", "--limit", "6", "--no-plots"]
    local = subprocess.run([*args, "--out", str(tmp_path / "local")], env=cluster.env(), cwd=ROOT,
                           capture_output=True, text=True, timeout=600, check=False)
    assert local.returncode == 0, local.stderr[-3000:]
    on_ray = cluster.run([*args, "--out", str(tmp_path / "ray"), "--ray-address", cluster.address],
                         env=cluster.env(**NO_LOCAL_TOOLS))
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]

    def verdicts(folder):
        keep = ("task_id", "passed", "failure")
        rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
        return sorted(tuple(row.get(k) for k in keep) for row in rows)

    assert verdicts(tmp_path / "ray") == verdicts(tmp_path / "local")
    assert len(verdicts(tmp_path / "ray")) == 6
