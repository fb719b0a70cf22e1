"""The reward pool's backends without a cluster: which Ray it joins and how, capacity per node, deadlines by default.

The real cluster is exercised in test_ray_cluster.py; here a stand-in `ray` module records what the pool asks of
Ray, and stand-in jobs block on events, so every case is fast and exact.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import types

import pytest
from cluster_fixtures import ALL_LEVELS, GOOD, WRONG, tasks

from rewards import pool as pool_module
from rewards import ray_backend
from rewards.errors import ConfigError
from rewards.hierarchy import RewardConfig
from rewards.pool import STALL_GRACE, RewardPool, default_workers, job_seconds
from rewards.score import Score
from rewards.simulate import SimLimits
from rewards.trl import build_reward, log_metrics


class FakeRay(types.ModuleType):
    """Records ray.init; a cluster of ``cpus`` CPUs; ``fail`` makes joining fail like a refused token."""

    def __init__(self, cpus=7, fail=None):
        super().__init__("ray")
        self.cpus, self.fail, self.inits, self.initialized = cpus, fail, [], False

    def is_initialized(self):
        return self.initialized

    def init(self, **kwargs):
        self.inits.append(kwargs)
        if self.fail:
            raise self.fail
        self.initialized = True

    def cluster_resources(self):
        return {"CPU": float(self.cpus)}

    def put(self, value):
        return ("ref", value)


@pytest.fixture
def fake_ray(monkeypatch):
    fake = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    return fake


def test_ray_backend_needs_a_cluster_to_join(fake_ray):
    for make in (lambda: RewardPool(backend="ray"), lambda: build_reward("simulation", backend="ray")):
        with pytest.raises(ConfigError, match="RAY_ADDRESS") as err:
            make()
        assert "ray start --head" in str(err.value) and "local" in str(err.value)
    assert fake_ray.inits == []  # refused before touching Ray: no private Ray started behind the user's back
    with pytest.raises(ConfigError, match="backend is 'local'"):
        RewardPool(ray_address="10.0.0.1:6379")
    with pytest.raises(ConfigError, match="unknown reward backend"):
        RewardPool(backend="dask")


@pytest.mark.parametrize("address", ["10.0.0.1:6379", "auto", "ray-head.cluster.local:6380"])
def test_joining_a_cluster_passes_no_resources(fake_ray, address):
    pool = RewardPool(backend="ray", ray_address=address, workers=None)
    (kwargs,) = fake_ray.inits
    assert kwargs["address"] == address
    assert not {"num_cpus", "num_gpus", "resources"} & set(kwargs)
    assert kwargs["runtime_env"]["py_modules"][0].endswith("rewards")  # the driver's scoring code goes along
    assert pool.workers == 7  # the cluster's CPUs


def test_ray_address_from_the_environment(fake_ray, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.1.2.3:6379")
    RewardPool(backend="ray")
    assert fake_ray.inits[0]["address"] == "10.1.2.3:6379"
    build_reward("ppa", backend="ray")  # accepted at parse time; joins lazily on its first batch


def test_private_ray_only_when_asked_for(fake_ray):
    pool = RewardPool(backend="ray", ray_address="local", workers=3)
    assert fake_ray.inits[0]["address"] == "local" and fake_ray.inits[0]["num_cpus"] == 3
    assert pool.workers == 3


def test_an_existing_connection_is_reused(fake_ray):
    fake_ray.initialized = True
    RewardPool(backend="ray", ray_address="10.0.0.1:6379")
    assert fake_ray.inits == []


def test_a_refused_join_names_token_authentication(monkeypatch):
    fake = FakeRay(fail=ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379"))
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    with pytest.raises(ConfigError) as err:
        RewardPool(backend="ray", ray_address="10.0.0.1:6379")
    message = str(err.value)
    assert "cannot join the Ray cluster at '10.0.0.1:6379'" in message
    assert "RAY_AUTH_MODE=token" in message and "RAY_AUTH_TOKEN" in message
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # already set: the hint would mislead
    with pytest.raises(ConfigError) as err:
        RewardPool(backend="ray", ray_address="10.0.0.1:6379")
    assert "RAY_AUTH_MODE=token here" not in str(err.value)


@pytest.mark.parametrize(("local_world_size", "expected"), [(None, 16), ("1", 16), ("2", 8), ("8", 2), ("32", 1),
                                                             ("not-a-number", 16)])
def test_default_workers_share_the_node(monkeypatch, local_world_size, expected):
    monkeypatch.setattr(pool_module.os, "sched_getaffinity", lambda pid: set(range(8)))
    if local_world_size is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", local_world_size)
    assert default_workers() == expected
    assert RewardPool().workers == expected


def test_the_default_deadline_follows_the_job_timeouts():
    base = job_seconds(RewardConfig())
    wall = RewardConfig().sandbox.wall_seconds  # each run's wall-clock backstop for its CPU budget
    assert base == pytest.approx(max(6 * wall(20) + wall(20), wall(20) + 3 * wall(5) + 2 * (wall(20) + wall(20))))
    assert job_seconds(ALL_LEVELS) == pytest.approx(base + 2 * wall(pool_module.SYNTH_TIMEOUT))
    fast = RewardConfig(sim=SimLimits(compile_timeout=2, max_timeout=1), equivalence={"formal_timeout": 1,
                                                                                     "sim_timeout": 1})
    assert job_seconds(fast) < base
    assert RewardPool(fast).stall_seconds == pytest.approx(job_seconds(fast) + STALL_GRACE)
    assert job_seconds(RewardConfig(weights={"format": 1.0, "syntax": 1.0, "function": 0.0})) == wall(20)


@pytest.fixture
def gated_jobs(monkeypatch):
    """Local jobs that finish at once, except WRONG, which waits for ``release`` (a lost or stuck worker)."""
    release = threading.Event()
    real = pool_module.judge

    def job(task, completion, config):
        if completion == WRONG:
            release.wait(60)
        return real(task, completion, config)

    monkeypatch.setattr(pool_module, "judge", job)
    yield release
    release.set()


@pytest.mark.eda
def test_a_stalled_batch_ends_with_none_and_the_late_result_is_kept(gated_jobs):
    adder = tasks()["adder"]
    with RewardPool(workers=2) as pool:
        pool.stall_seconds = 0.5  # the default is job_seconds + grace (minutes); the mechanism is the same
        good, wrong = pool.score([(adder, GOOD), (adder, WRONG)])
        assert good.passed is True
        assert wrong.reward is None and wrong.failure == "infrastructure"
        assert "no reward job finished" in wrong.detail["reason"] and "lost or stalled" in wrong.detail["reason"]
        assert pool.stats["missed_deadline"] == 1 and pool.stats["unscorable"] == 1
        # the metric a training run logs for it
        logged = {}
        log_metrics(lambda k, v: logged.__setitem__(k, v), "simulation", [good, wrong], 0.1)
        assert logged["simulation/unscorable_frac"] == 0.5 and logged["simulation/failure/infrastructure"] == 0.5
        # the job finishes later: its result lands in the cache and the next batch gets it without rescoring
        gated_jobs.set()
        pool._executor.shutdown(wait=True)  # returns once the late job and its done-callback (the store) ran
        pool._executor = None
        (again,) = pool.score([(adder, WRONG)])
        assert again.scorable and again.passed is False and pool.stats["cache_hits"] >= 1


@pytest.mark.eda
def test_a_hard_batch_deadline_and_ppa_deadlines(gated_jobs, monkeypatch):
    adder = tasks()["adder"]
    with RewardPool(workers=2, batch_deadline=0.3) as pool:
        good, wrong = pool.score([(adder, GOOD), (adder, WRONG)])
        assert good.passed and wrong.reward is None and "batch deadline of 0.3s" in wrong.detail["reason"]

    stuck = threading.Event()
    monkeypatch.setattr(pool_module, "ppa_only", lambda *a: (stuck.wait(60), (1.0, {}))[1])
    with RewardPool(ALL_LEVELS, workers=1) as pool:
        ((component, detail),) = pool.map_ppa([(adder, GOOD)], ALL_LEVELS, deadline=0.3)
        stuck.set()
    assert component is None and "batch deadline" in detail["error"]


def test_failed_job_is_never_the_models_fault(monkeypatch):
    def broken(task, completion, config):
        raise RuntimeError("worker lost its disk")

    monkeypatch.setattr(pool_module, "judge", broken)
    with RewardPool(workers=1) as pool:
        (score,) = pool.score([(tasks()["adder"], GOOD)])
    assert score.reward is None and score.failure == "infrastructure" and "lost its disk" in score.detail["reason"]
    assert isinstance(score, Score)


def test_ray_task_failures_are_infrastructure_and_uncached(fake_ray):
    pool = RewardPool(backend="ray", ray_address="10.0.0.1:6379")

    class Jobs:
        def result(self, ref):
            raise RuntimeError("WorkerCrashedError: the worker died 3 times")

    pool._ray = Jobs()
    score = pool._ray_value("verdict")("ref")
    assert score.reward is None and score.failure == "infrastructure" and "worker died" in score.detail["reason"]
    pool.cache.put("k", score)
    assert pool.cache.get("k") is None  # the next time it is scored again


def test_recipes_accept_ray_settings():
    from verirl.config import RecipeError, recipe_from_dict

    base = {"trainer": "grpo", "model_name_or_path": "m", "dataset": "d.jsonl", "output_dir": "/tmp/x",
            "use_cpu": True}
    kwargs = {"backend": "ray", "ray_address": "10.0.0.1:6379", "batch_deadline": 900.0}
    recipe = recipe_from_dict({**base, "rewards": [{"name": "simulation", "kwargs": kwargs}]}, check_only=True)
    assert recipe.training.rewards[0].kwargs["ray_address"] == "10.0.0.1:6379"
    with pytest.raises(RecipeError, match="ray_address"):
        recipe_from_dict({**base, "rewards": [{"name": "simulation", "kwargs": {"ray_adress": "x:1"}}]},
                         check_only=True)


@pytest.mark.parametrize(("args", "message"), [
    (["--backend", "local", "--ray-address", "10.0.0.1:6379"], "backend is 'local'"),
    (["--backend", "ray"], "RAY_ADDRESS"),
])
def test_verirl_score_refuses_inconsistent_backend_settings(tmp_path, args, message):
    (tmp_path / "t.jsonl").write_text('{"id": "a", "prompt": "p", "top": "a", "reference": "module a; endmodule"}\n')
    (tmp_path / "c.jsonl").write_text('{"task_id": "a", "completion": "x"}\n')
    env = {k: v for k, v in __import__("os").environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, "-m", "verirl.cli", "score", "--tasks", str(tmp_path / "t.jsonl"),
                           "--completions", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "o.jsonl"), *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_resolve_address_prefers_the_setting(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "env:1")
    assert ray_backend.resolve_address("kwarg:2") == "kwarg:2"
    assert ray_backend.resolve_address(None) == "env:1"
    monkeypatch.setenv("RAY_ADDRESS", "  ")
    with pytest.raises(ConfigError):
        ray_backend.resolve_address("")
