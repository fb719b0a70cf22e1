"""Hierarchy gating, the worker pool (order, duplicates, deadline, cache), TRL adapters, CLI."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest

from rewards.cache import ScoreCache
from rewards.errors import ConfigError
from rewards.hierarchy import RewardConfig, judge, score_completion
from rewards.pool import RewardPool
from rewards.trl import REWARDS, build_reward, reward_arguments

pytestmark = pytest.mark.usefixtures("eda")

GOOD = "```verilog\nmodule adder(input [3:0] a, b, output [4:0] s);\n  assign s = a + b;\nendmodule\n```"
WRONG = "```verilog\nmodule adder(input [3:0] a, b, output [4:0] s);\n  assign s = a - b;\nendmodule\n```"
BIG = ("```verilog\nmodule adder(input [3:0] a, b, output [4:0] s);\n"
       "  wire [4:0] t = a + b; wire [4:0] u = t * 5'd1; assign s = u + 5'd0 + (a & 4'd0);\nendmodule\n```")
BROKEN = "```verilog\nmodule adder(input [3:0] a, b, output [4:0] s)\n  assign s = a +;\nendmodule\n```"
ALL = RewardConfig(weights={"format": 0.1, "syntax": 0.1, "function": 1.0, "ppa": 0.5})


def test_levels_gate_each_other(adder_task):
    good = score_completion(adder_task, GOOD, ALL)
    assert good.passed and good.components == {"format": 1.0, "syntax": 1.0, "function": 1.0, "ppa": 1.0}
    assert good.reward == pytest.approx(1.7)
    wrong = score_completion(adder_task, WRONG, ALL)
    assert wrong.failure == "mismatch" and wrong.components["ppa"] == 0.0  # no PPA credit when wrong
    assert 0 < wrong.components["function"] < 1  # partial credit
    broken = score_completion(adder_task, BROKEN, ALL)
    assert broken.failure == "syntax" and broken.components["function"] == 0.0
    assert broken.reward == pytest.approx(0.1)


def test_ppa_compares_with_the_reference(adder_task):
    score = score_completion(adder_task, BIG, ALL)
    assert score.passed
    figures = score.detail["ppa"]
    assert set(figures) == {"candidate", "reference"} and figures["reference"]["area"] > 0


def test_no_partial_credit(adder_task):
    config = RewardConfig(weights={"function": 1.0}, partial_credit=False)
    assert score_completion(adder_task, WRONG, config).components["function"] == 0.0


def test_sequential_design(counter_task):
    from rewards.simulate import reference_as_candidate

    assert score_completion(counter_task, reference_as_candidate(counter_task)).passed
    wrong = reference_as_candidate(counter_task).replace("q + 4'd1", "q + 4'd2")
    assert score_completion(counter_task, wrong).failure == "mismatch"


def test_missing_binary_is_not_the_models_fault(adder_task, monkeypatch):
    monkeypatch.setenv("VERIRL_IVERILOG", "/nonexistent/iverilog")
    score = score_completion(adder_task, GOOD)
    assert score.reward is None and score.passed is None and score.failure == "infrastructure"


def test_broken_task_is_not_the_models_fault(adder_task):
    import dataclasses

    broken_tb = adder_task.testbench.replace("`VERIRL_REPORT(pass, total)", "`VERIRL_REPORT(pass, total + 1)")
    task = dataclasses.replace(adder_task, testbench=broken_tb)  # even the reference cannot pass it
    score = score_completion(task, GOOD)
    assert score.reward is None and score.failure == "task_error"


def test_config_errors_are_raised_early():
    with pytest.raises(ConfigError):
        RewardConfig(weights={"speed": 1.0})
    with pytest.raises(ConfigError):
        RewardConfig(weights={"function": -1})
    with pytest.raises(ConfigError):
        RewardConfig(liberty="/nonexistent.lib")
    with pytest.raises(ConfigError):
        RewardConfig.from_dict({"wieghts": {}})


def test_pool_order_and_duplicates(adder_task):
    batch = [GOOD, WRONG, GOOD, BROKEN, GOOD, WRONG]
    with RewardPool(workers=2) as pool:
        scores = pool.score([(adder_task, c) for c in batch])
        assert [s.passed for s in scores] == [True, False, True, False, True, False]
        assert pool.stats["cache_hits"] == 3  # duplicates inside the batch were scored once
        again = pool.score([(adder_task, GOOD)])
        assert again[0].passed and pool.cache.hits >= 1


def test_pool_deadline_returns_unscorable(adder_task, monkeypatch):
    # the jobs are held on an event until the batch has come back: the deadline passes first by construction, however
    # fast or slow the machine is (a slow candidate would race its own CPU budget against the deadline)
    import threading

    from rewards import pool as pool_module

    release, started = threading.Event(), threading.Event()

    def held(task, completion, config):
        started.set()
        release.wait(60)  # without a working deadline the batch ends here, scored, and the test fails
        return judge(task, completion, config)

    monkeypatch.setattr(pool_module, "judge", held)
    with RewardPool(workers=1, batch_deadline=0.3) as pool:
        scores = pool.score([(adder_task, GOOD), (adder_task, WRONG)])
        assert started.is_set()
        assert all(s.reward is None and s.failure == "infrastructure" for s in scores)
        assert all("batch deadline" in s.detail["reason"] for s in scores)
        assert pool.stats["missed_deadline"] == 2
        release.set()
        executor = pool._executor
        executor.shutdown(wait=True)  # the late jobs finish; their results land in the cache before this returns
        hits = pool.stats["cache_hits"]
        again = pool.score([(adder_task, GOOD), (adder_task, WRONG)])
        assert pool.stats["cache_hits"] == hits + 2  # nothing ran again
    assert [s.passed for s in again] == [True, False] and again[1].failure == "mismatch"


def test_cache_is_bounded_and_persistent(tmp_path, adder_task):
    path = str(tmp_path / "cache.sqlite")
    with RewardPool(cache_size=2, cache_path=path) as pool:
        pool.score([(adder_task, GOOD + " " * i) for i in range(5)])
        assert len(pool.cache) == 2
    cache = ScoreCache(2, path)
    with RewardPool(cache_size=2, cache_path=path) as pool:
        pool.score([(adder_task, GOOD)])
        assert pool.cache.hits == 1
    cache.close()


def test_score_iter_streams_in_order(adder_task):
    pairs = ((adder_task, GOOD if i % 2 else WRONG) for i in range(10))
    with RewardPool(workers=2) as pool:
        passed = [s.passed for s in pool.score_iter(pairs, window=3)]
    assert passed == [bool(i % 2) for i in range(10)]


def test_trl_rewards_are_picklable_named_and_log(adder_task):
    columns = {k: [v] * 3 for k, v in adder_task.to_dict().items() if k in ("id", "top", "reference", "testbench")}
    logged = {}
    expected = {"format": [1.0, 1.0, 1.0], "syntax": [1.0, 1.0, 0.0], "simulation": [1.0, None, 0.0],
                "ppa": [1.0, 0.0, 0.0]}
    for name, values in expected.items():
        reward = pickle.loads(pickle.dumps(build_reward(name)))
        assert reward.__name__ == name
        out = reward(prompts=["p"] * 3, completions=[GOOD, WRONG, BROKEN],
                     log_metric=lambda k, v: logged.__setitem__(k, v), **columns)
        if name == "simulation":
            assert out[0] == 1.0 and 0 < out[1] < 1 and out[2] == 0.0
        else:
            assert out == values
    assert logged["simulation/pass_rate"] == pytest.approx(1 / 3)
    assert "simulation/failure/syntax" in logged and "simulation/latency_s" in logged


def test_registry_validates_settings():
    assert set(REWARDS) == {"format", "syntax", "simulation", "equivalence", "ppa", "hierarchical", "overlong"}
    with pytest.raises(ConfigError, match="no setting"):
        build_reward("simulation", partial=True)
    with pytest.raises(ConfigError, match="unknown reward"):
        build_reward("speed")
    assert "weights" in reward_arguments("hierarchical") and "weights" not in reward_arguments("simulation")


def test_ray_backend(adder_task):
    pytest.importorskip("ray", reason="needs the [ray] extra (pip install 'verirl[ray]')")
    import ray

    try:
        with RewardPool(workers=2, backend="ray", ray_address="local") as pool:
            scores = pool.score([(adder_task, GOOD), (adder_task, WRONG)])
        assert [s.passed for s in scores] == [True, False]
    finally:
        ray.shutdown()


def test_cli_score_end_to_end(tmp_path, adder_task):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps(adder_task.to_dict()) + "\n")
    comps = tmp_path / "completions.jsonl"
    comps.write_text("".join(json.dumps({"task_id": "adder", "completion": c}) + "\n"
                             for c in [GOOD, WRONG, BROKEN, "", GOOD]))
    out = tmp_path / "scores.jsonl"
    proc = subprocess.run([sys.executable, "-m", "verirl.cli", "score", "--tasks", str(tasks), "--completions",
                           str(comps), "--out", str(out)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["passed"] for r in rows] == [True, False, False, False, True]
    assert [r["failure"] for r in rows] == [None, "mismatch", "syntax", "format", None]
    assert all({"task_id", "reward", "passed", "failure", "components"} <= set(r) for r in rows)
    assert "2 passed" in proc.stdout


def test_cli_score_bad_input_names_the_line(tmp_path, adder_task):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps(adder_task.to_dict()) + "\n")
    comps = tmp_path / "c.jsonl"
    comps.write_text(json.dumps({"task_id": "adder", "completion": GOOD}) + "\n{not json\n")
    proc = subprocess.run([sys.executable, "-m", "verirl.cli", "score", "--tasks", str(tasks), "--completions",
                           str(comps), "--out", str(tmp_path / "o.jsonl")], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "c.jsonl:2" in proc.stderr


def test_doctor():
    proc = subprocess.run([sys.executable, "-m", "verirl.cli", "doctor", "--json"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["self_test"] == "ok" and report["tools"]["iverilog"]


def test_tasks_without_testbench_use_equivalence(adder_task):
    import dataclasses

    task = dataclasses.replace(adder_task, testbench=None)
    good = score_completion(task, GOOD)
    assert good.passed and good.detail["method"].startswith("equivalence/")
    wrong = score_completion(task, WRONG)
    assert wrong.passed is False and wrong.failure == "mismatch" and wrong.detail["counterexample"]


def test_validate_reference_off_skips_the_reference_run(adder_task):
    import dataclasses

    from rewards.task_checks import task_state

    broken_tb = adder_task.testbench.replace("`VERIRL_REPORT(pass, total)", "`VERIRL_REPORT(pass, total + 1)")
    task = dataclasses.replace(adder_task, testbench=broken_tb)
    config = RewardConfig(validate_reference=False)
    score = score_completion(task, GOOD, config)
    assert score.reward is not None and score.failure == "mismatch"  # the task is not checked, the candidate is
    state = task_state(task, config)
    assert state.simulated and state.reference_cpu is None
    assert "reference" not in score.detail["tools"]  # the candidate is the reference: its compile was the check
    score = score_completion(task, WRONG, config)
    assert score.failure == "mismatch" and "reference" not in score.detail["tools"]


def test_files_column_from_datasets_structs_and_json():
    from rewards.trl import tasks_from_columns

    cols = {"top": ["a", "b"], "testbench": ["x", "y"],
            "files": [{"in.txt": "1", "other.txt": None}, '{"data.hex": "ff"}']}
    tasks = tasks_from_columns(cols, 2)
    assert dict(tasks[0].files) == {"in.txt": "1"} and dict(tasks[1].files) == {"data.hex": "ff"}


def test_rewards_share_one_pool_whatever_their_execution_settings(tmp_path, adder_task):
    """A recipe's syntax, simulation and ppa rewards simulate each completion once even when they ask for different
    workers, cache sizes or deadlines (those do not change a verdict); the pool opens with the largest asked."""
    cache = str(tmp_path / "scores.sqlite")  # a pool key of this test's own
    columns = {k: [v] * 2 for k, v in adder_task.to_dict().items() if k in ("id", "top", "reference", "testbench")}
    syntax = build_reward("syntax", workers=1, cache_size=64, cache_path=cache)
    simulation = build_reward("simulation", workers=3, cache_path=cache, batch_deadline=120.0)
    ppa = build_reward("ppa", cache_size=128, cache_path=cache)
    assert syntax.pool is simulation.pool is ppa.pool
    pool = syntax.pool
    assert pool.workers == 3 and pool.cache.max_entries == 16384  # simulation's workers, the default cache size
    assert syntax(completions=[GOOD, WRONG], **columns) == [1.0, 1.0]
    scored = pool.stats["cache_hits"]
    simulation(completions=[GOOD, WRONG], **columns)
    assert pool.stats["cache_hits"] == scored + 2  # not simulated again
    deadlines = []
    real_score = pool.score
    pool.score = lambda pairs, deadline=None, **kw: deadlines.append(deadline) or real_score(pairs, deadline=deadline,
                                                                                              **kw)
    try:
        syntax(completions=[GOOD], **{k: v[:1] for k, v in columns.items()})
        simulation(completions=[GOOD], **{k: v[:1] for k, v in columns.items()})
    finally:
        del pool.score
    assert deadlines == [None, 120.0]  # each reward's own deadline
    # what changes a verdict or where verdicts go opens another pool; how a verdict becomes a value does not
    assert build_reward("simulation", sandbox={"limits": {"memory_mb": 1024}}, cache_path=cache).pool is not pool
    assert build_reward("simulation", partial_credit=False, cache_path=cache).pool is pool
    assert build_reward("simulation").pool is not pool


def test_training_rewards_take_the_reward_settings_schema_of_data_recipes():
    """One reward-settings schema: a reward's scoring kwargs are RewardConfig's fields, shaped as
    RewardConfig.from_dict reads them for data recipes and `verirl score` (validate_reference included)."""
    settings = {"partial_credit": False, "reasoning": "none", "validate_reference": False,
                "sim": {"max_timeout": 7.0, "min_timeout": 0.5}, "equivalence": {"method": "simulation"},
                "sandbox": {"limits": {"memory_mb": 1024, "cpu_seconds": 30}}}
    reward = build_reward("simulation", **settings)
    expected = RewardConfig.from_dict({**settings, "weights": {"format": 1.0, "syntax": 1.0, "function": 1.0}})
    assert reward.config == expected
    assert set(settings) <= set(reward_arguments("simulation"))
    assert "weights" not in reward_arguments("simulation")  # the reward's levels set them
    for bad, message in (({"sim": {"max_timout": 1}}, "max_timout"), ({"sandbox": 5}, "mapping"),
                         ({"memory_mb": 1024}, "no setting")):
        with pytest.raises(ConfigError, match=message):
            build_reward("simulation", **bad)
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.config == reward.config and clone.pool_key() == reward.pool_key()
