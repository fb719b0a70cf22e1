"""One pool per verdict: rewards that differ only in how a verdict becomes a number share verdicts; what changes a
verdict never shares them; the persistent cache's schema."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from rewards import hierarchy, trl
from rewards import pool as pool_module
from rewards.cache import SCHEMA, ScoreCache
from rewards.errors import ConfigError
from rewards.hierarchy import RewardConfig, judge, score_completion
from rewards.pool import RewardPool
from rewards.score import LEVELS, Score
from rewards.trl import build_reward

GOOD = "```verilog\nmodule adder(input [3:0] a, b, output [4:0] s);\n  assign s = a + b;\nendmodule\n```"
CARRYLESS = ("```verilog\nmodule adder(input [3:0] a, b, output [4:0] s);\n  wire [3:0] low = a + b;\n"
             "  assign s = {1'b0, low};\nendmodule\n```")  # right whenever the sum fits 4 bits: partial credit
RARE = ("```verilog\nmodule adder(input [3:0] a, b, output [4:0] s);\n"
        "  assign s = (a == 4'hf && b == 4'hf) ? 5'd0 : a + b;\nendmodule\n```")  # wrong on one input only
BROKEN = "```verilog\nmodule adder(input [3:0] a, b, output [4:0] s)\n  assign s = a +;\nendmodule\n```"
NO_CODE = "I would rather not write Verilog today."
BATCH = [GOOD, CARRYLESS, BROKEN, NO_CODE, GOOD, CARRYLESS]


@pytest.fixture
def counted_jobs(monkeypatch):
    """Counts the pool's verdict jobs (each one runs the tools for one completion)."""
    calls = []

    def counted(task, completion, config):
        calls.append(completion)
        return judge(task, completion, config)

    monkeypatch.setattr(pool_module, "judge", counted)
    return calls


def _columns(task, n):
    return {k: [v] * n for k, v in task.to_dict().items() if k in ("id", "top", "reference", "testbench")}


def _expected(task, completion, weights, partial_credit):
    """The reward value by the rule of docs/rewards.md, from an independent score under the full-weight config."""
    full = score_completion(task, completion, RewardConfig(weights={lvl: 1.0 for lvl in ("format", "syntax",
                                                                                          "function")}))
    fraction = full.components["function"]
    function = fraction if partial_credit else (1.0 if full.passed else 0.0)
    parts = {"format": full.components["format"], "syntax": full.components["syntax"], "function": function}
    return round(sum(weights.get(lvl, 0.0) * parts[lvl] for lvl in parts), 6)


@pytest.mark.eda
@pytest.mark.usefixtures("eda")
def test_rewards_that_differ_in_value_settings_share_one_pool_and_run_no_tool_again(tmp_path, adder_task,
                                                                                    counted_jobs):
    cache = str(tmp_path / "verdicts.sqlite")
    columns = _columns(adder_task, len(BATCH))
    graded = build_reward("simulation", cache_path=cache)
    binary = build_reward("simulation", partial_credit=False, cache_path=cache)
    syntax = build_reward("syntax", partial_credit=False, cache_path=cache)
    weights = {"format": 0.3, "syntax": 0.2, "function": 2.0}
    heavy = build_reward("hierarchical", weights=weights, cache_path=cache)
    lean = build_reward("hierarchical", weights={"function": 1.0}, partial_credit=False, cache_path=cache)
    rewards = (graded, binary, syntax, heavy, lean)
    assert len({r.pool_key() for r in rewards}) == 1 and all(r.pool is graded.pool for r in rewards)
    pool = graded.pool

    first = graded(completions=BATCH, **columns)
    judged = len(counted_jobs)
    assert judged == 4  # the four distinct completions, once each
    hits = pool.stats["cache_hits"]
    values = {reward: reward(completions=BATCH, **columns) for reward in rewards[1:]}
    assert len(counted_jobs) == judged  # no tool ran for the other four rewards
    assert pool.stats["cache_hits"] == hits + 4 * len(BATCH)

    fraction = score_completion(adder_task, CARRYLESS, graded.config).components["function"]
    assert 0.0 < fraction < 1.0  # the case where partial_credit matters
    assert first == [1.0, fraction, 0.0, 0.0, 1.0, fraction]
    assert values[binary] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert values[syntax] == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    assert values[heavy] == [_expected(adder_task, c, weights, True) for c in BATCH]
    assert values[heavy][1] == pytest.approx(0.3 + 0.2 + 2.0 * fraction)
    assert values[lean] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    # each value equals what a separate pool of that reward alone computes
    for i, reward in enumerate(rewards):
        alone = build_reward(reward.name, **{**reward.settings, "cache_path": str(tmp_path / f"alone{i}.sqlite")},
                             **reward._extra_state())
        assert alone.pool is not pool
        assert alone(completions=BATCH, **columns) == (first if reward is graded else values[reward])


@pytest.mark.eda
@pytest.mark.usefixtures("eda")
def test_the_shared_verdicts_give_each_reward_its_own_score(tmp_path, adder_task):
    cache = str(tmp_path / "verdicts.sqlite")
    graded = RewardConfig(weights={"format": 0.1, "syntax": 0.1, "function": 1.0})
    binary = dataclasses.replace(graded, partial_credit=False, weights={"format": 0.0, "syntax": 0.5, "function": 3.0})
    with RewardPool(graded, cache_path=cache) as pool:
        shared = pool.score([(adder_task, c) for c in BATCH], config=binary)
        assert pool.stats["cache_hits"] == 2  # the duplicates only
        again = pool.score([(adder_task, c) for c in BATCH], config=binary)
    fresh = [score_completion(adder_task, c, binary) for c in BATCH]
    strip = [(s.reward, s.passed, s.failure, s.components) for s in fresh]
    assert [(s.reward, s.passed, s.failure, s.components) for s in shared] == strip
    assert [(s.reward, s.passed, s.failure, s.components) for s in again] == strip
    assert shared[0].components["format"] is None  # a disabled level stays None
    # a returned score is a copy: changing it does not change the cached verdict
    again[0].detail["log"] = "tampered"
    again[0].components["function"] = 0.0
    with RewardPool(graded, cache_path=cache) as pool:
        (reread,) = pool.score([(adder_task, GOOD)])
    assert reread.components["function"] == 1.0 and reread.detail.get("log") != "tampered"


SPLITTERS = {
    "sim budget": {"sim": {"max_timeout": 3.0}},
    "compile budget": {"sim": {"compile_timeout": 7.0}},
    "equivalence": {"equivalence": {"sequences": 3}},
    "equivalence partial credit": {"equivalence": {"partial_credit": True}},  # it runs every stimulus sequence
    "sandbox memory": {"sandbox": {"limits": {"memory_mb": 1536}}},
    "sandbox cpu": {"sandbox": {"limits": {"cpu_seconds": 45}}},
    "reasoning": {"reasoning": "required"},
    "reference not validated": {"validate_reference": False},
}


@pytest.mark.parametrize("change", sorted(SPLITTERS))
def test_verdict_settings_split_pools_and_cache_keys(change, tmp_path, adder_task):
    cache = str(tmp_path / "verdicts.sqlite")
    base = build_reward("simulation", cache_path=cache)
    other = build_reward("simulation", cache_path=cache, **SPLITTERS[change])
    assert other.config.verdict_fingerprint != base.config.verdict_fingerprint
    assert other.pool_key() != base.pool_key() and other.pool is not base.pool
    # the same file: the keys differ, so neither pool can read the other's verdicts
    assert other.pool._key(adder_task, GOOD) != base.pool._key(adder_task, GOOD)


@pytest.mark.eda
@pytest.mark.usefixtures("eda")
def test_a_cache_file_never_hands_verdicts_across_verdict_settings(tmp_path, adder_task, counted_jobs):
    cache = str(tmp_path / "verdicts.sqlite")
    with RewardPool(RewardConfig(), cache_path=cache) as pool:
        pool.score([(adder_task, GOOD)])
    for change in ({"sim": {"max_timeout": 3.0}}, {"sandbox": {"limits": {"memory_mb": 1536}}},
                   {"weights": {"format": 0.1, "syntax": 0.1, "function": 1.0, "ppa": 0.5}}):
        before = len(counted_jobs)
        with RewardPool(RewardConfig.from_dict(change), cache_path=cache) as pool:
            pool.score([(adder_task, GOOD)])
            assert pool.stats["cache_hits"] == 0 and len(counted_jobs) == before + 1, change
    before = len(counted_jobs)
    with RewardPool(RewardConfig(partial_credit=False, weights={"function": 4.0}), cache_path=cache) as pool:
        (score,) = pool.score([(adder_task, GOOD)])
    assert len(counted_jobs) == before and score.reward == 4.0  # value settings: read from the file


def test_a_pool_refuses_to_value_verdicts_of_other_settings(adder_task):
    with RewardPool(RewardConfig()) as pool, pytest.raises(ConfigError, match="other verdict settings"):
        pool.score([(adder_task, GOOD)], config=RewardConfig.from_dict({"sim": {"max_timeout": 3.0}}))


def test_every_reward_setting_is_a_verdict_or_a_value_setting():
    fields = {f.name: f.metadata.get("part") for f in dataclasses.fields(RewardConfig)}
    assert set(fields.values()) == {"verdict", "value"}
    base = RewardConfig()
    changed = {"reasoning": "none", "liberty": None, "sim": {"max_timeout": 9.0}, "equivalence": {"seed": 7},
               "sandbox": {"limits": {"memory_mb": 1000}}, "validate_reference": False,
               "partial_credit": False, "weights": {"format": 0.5, "syntax": 0.1, "function": 1.0}}
    for name, part in fields.items():
        if name == "liberty":
            continue  # needs a file; covered by the metadata check above
        other = RewardConfig.from_dict({name: changed[name]})
        assert other.fingerprint != base.fingerprint, name
        assert (other.verdict_fingerprint != base.verdict_fingerprint) == (part == "verdict"), name

    @dataclasses.dataclass(frozen=True)
    class Grown(RewardConfig):
        bonus: float = 0.0  # a new setting that says nothing about verdicts

    with pytest.raises(TypeError, match="bonus"):
        hierarchy._check_parts(Grown)


def test_written_out_defaults_are_the_same_verdict_settings():
    base = RewardConfig().verdict_fingerprint
    assert RewardConfig.from_dict({"equivalence": {"partial_credit": False, "seed": 1}}).verdict_fingerprint == base
    assert RewardConfig.from_dict({"sim": {}, "sandbox": {"limits": {}}}).verdict_fingerprint == base
    assert RewardConfig.from_dict({"equivalence": {"seed": 2}}).verdict_fingerprint != base


def test_which_levels_are_on_is_part_of_the_verdict_their_weights_are_not():
    def fp(**weights):
        return RewardConfig(weights=weights).verdict_fingerprint

    assert fp(format=0.1, syntax=0.1, function=1.0) == fp(function=2.0) == fp(syntax=0.3, function=0.1)
    assert fp(format=1.0) != fp(format=1.0, syntax=1.0)  # only format: no tool runs at all
    assert fp(syntax=1.0) != fp(function=1.0)  # the gate alone vs simulation
    assert fp(function=1.0) != fp(function=1.0, ppa=0.2)  # synthesis runs
    assert fp(ppa=1.0) != fp(function=1.0, ppa=1.0)  # the reference is validated only with function on


def test_value_of_a_verdict():
    verdict = Score(3.5, False, "mismatch", {"format": 1.0, "syntax": 1.0, "function": 0.5, "ppa": None},
                    {"method": "simulation", "pass_fraction": 0.5})
    graded = RewardConfig(weights={"format": 0.2, "syntax": 0.0, "function": 2.0})
    assert graded.value(verdict).reward == 1.2 and graded.value(verdict).components["syntax"] is None
    binary = dataclasses.replace(graded, partial_credit=False)
    assert binary.value(verdict).reward == 0.2 and binary.value(verdict).components["function"] == 0.0
    # equivalence's fraction was decided by EquivConfig.partial_credit, a verdict setting: partial_credit leaves it
    by_equivalence = dataclasses.replace(verdict, detail={"method": "equivalence/simulation"})
    assert binary.value(by_equivalence).components["function"] == 0.5
    passed = dataclasses.replace(verdict, passed=True, failure=None, components={**verdict.components,
                                                                                "function": 1.0})
    assert binary.value(passed).reward == 2.2
    unscorable = Score.unscorable("infrastructure", "tool crashed")
    assert binary.value(unscorable) is unscorable and graded.value(unscorable).reward is None
    assert set(graded.value(verdict).components) == set(LEVELS)


@pytest.mark.eda
@pytest.mark.usefixtures("eda")
def test_value_settings_on_an_equivalence_task_share_its_verdict(tmp_path, adder_task, counted_jobs):
    task = dataclasses.replace(adder_task, testbench=None)
    cache = str(tmp_path / "verdicts.sqlite")
    settings = {"equivalence": {"method": "simulation", "partial_credit": True}, "cache_path": cache}
    graded = build_reward("equivalence", **settings)
    binary = build_reward("equivalence", partial_credit=False, **settings)
    assert graded.pool is binary.pool
    columns = _columns(task, 2)
    first = graded(completions=[GOOD, RARE], **columns)
    judged = len(counted_jobs)
    assert binary(completions=[GOOD, RARE], **columns) == first and len(counted_jobs) == judged
    assert first[0] == 1.0 and 0.0 < first[1] < 1.0  # the fraction of stimulus sequences without a mismatch


def test_cache_files_of_before_verdicts_are_emptied_and_newer_ones_refused(tmp_path, caplog):
    old = tmp_path / "old.sqlite"
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE scores (key TEXT PRIMARY KEY, score TEXT NOT NULL)")
    db.execute("INSERT INTO scores VALUES ('k', '{\"reward\": 1.0}')")
    db.commit()
    db.close()
    cache = ScoreCache(4, str(old))
    assert cache.get("k") is None  # a value is not a verdict: judged again
    verdict = Score(1.0, True, None, {"format": 1.0, "syntax": 1.0, "function": 1.0, "ppa": None}, {})
    cache.put("k", verdict)
    cache.close()
    assert "older verirl" in caplog.text
    again = ScoreCache(4, str(old))
    assert again.get("k") == verdict
    again.close()
    db = sqlite3.connect(old)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA
    assert not db.execute("SELECT name FROM sqlite_master WHERE name = 'scores'").fetchone()
    db.execute(f"PRAGMA user_version = {SCHEMA + 1}")
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match=f"{old}.*newer verirl"):
        ScoreCache(4, str(old))
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all, just some bytes " * 100)
    with pytest.raises(ConfigError, match=f"{garbage}.*cannot be opened"):
        ScoreCache(4, str(garbage))
    assert garbage.read_bytes().startswith(b"not a database")  # refused, not overwritten


def test_pool_keys_of_rewards_survive_pickling_and_ignore_value_settings():
    import pickle

    a = build_reward("hierarchical", weights={"format": 0.1, "function": 1.0})
    b = pickle.loads(pickle.dumps(build_reward("simulation", partial_credit=False)))
    assert a.pool_key() == b.pool_key()
    assert trl.REWARDS["ppa"]().pool_key() == a.pool_key()  # ppa synthesizes in its own pass, after the verdict




def test_stats_count_every_batch_scored_from_many_threads(adder_task, counted_jobs):
    """`verirl eval` feeds one pool from several threads: no counter may lose an increment."""
    import os
    import threading

    class Yielding(dict):
        """Gives the other threads a turn between reading a counter and writing it back."""

        def __getitem__(self, key):
            value = super().__getitem__(key)
            os.sched_yield()  # releases the GIL: another thread may run here
            return value

    completion = "```verilog\n" + adder_task.reference + "\n```"
    with RewardPool(RewardConfig(), workers=1) as pool:
        pool.score([(adder_task, completion)])  # judged once; every later call is a cache hit
        pool.stats = Yielding(pool.stats)
        threads = [threading.Thread(target=lambda: [pool.score([(adder_task, completion)] * 3) for _ in range(50)])
                   for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert pool.stats["cache_hits"] == 8 * 50 * 3 and pool.stats["scored"] == 1 + 8 * 50 * 3
