"""The procedural curriculum: every family, determinism, held-out splits, and goldens checked by the reward engine."""

from __future__ import annotations

import random
import re
import shutil

import pytest

from data_pipeline.curriculum import FAMILIES, CurriculumConfig, generate_curriculum, split_params
from data_pipeline.curriculum.verify import golden_completion, verify_tasks

needs_iverilog = pytest.mark.skipif(shutil.which("iverilog") is None or shutil.which("vvp") is None,
                                    reason="needs Icarus Verilog (iverilog, vvp): apt-get install iverilog")

EXPECTED_FAMILIES = {"gate", "boolfn", "mux", "decoder", "encoder", "adder", "subtractor", "comparator", "parity",
                     "counter", "shift", "edge", "seqdet"}


def test_every_family_builds_every_parameter_combination():
    assert set(FAMILIES) == EXPECTED_FAMILIES
    for name, family in FAMILIES.items():
        space = family.space()
        assert space, name
        keys = set()
        for i, params in enumerate(space):
            design = family.build(random.Random(i), params)
            assert design.family == name and 1 <= design.level <= 4
            golden = design.golden()
            assert golden.startswith(f"module {design.top}(") and golden.rstrip().endswith("endmodule")
            keys.add(design.param_key())
        assert len(keys) == len(space), f"{name}: parameter combinations must give distinct keys"


@pytest.mark.parametrize("variety", ["full", "low"])
def test_tasks_follow_the_task_schema(variety):
    splits = generate_curriculum(CurriculumConfig(seed=3, n_train=80, n_test=30, variety=variety))
    for split, tasks in splits.items():
        ids = [t["id"] for t in tasks]
        assert len(set(ids)) == len(ids)
        for t in tasks:
            assert t["harness"] == "verirl" and t["tb_top"] == "tb"
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", t["top"])
            assert t["top"] in t["prompt"]
            assert f"{t['top']} tb_dut(" in t["testbench"] and f"ref_{t['top']} tb_golden(" in t["testbench"]
            assert "`VERIRL_REPORT(tb_pass, tb_total)" in t["testbench"]
            assert t["metadata"]["split"] == split and t["metadata"]["solution"] == t["reference"]


def test_same_seed_same_tasks_other_seed_other_tasks():
    a = generate_curriculum(CurriculumConfig(seed=7, n_train=50, n_test=20))
    b = generate_curriculum(CurriculumConfig(seed=7, n_train=50, n_test=20))
    c = generate_curriculum(CurriculumConfig(seed=8, n_train=50, n_test=20))
    assert a == b
    assert [t["prompt"] for t in a["train"]] != [t["prompt"] for t in c["train"]]


def test_heldout_splits_are_disjoint_by_parameters_and_by_family():
    config = CurriculumConfig(seed=1, n_train=300, n_test=100, heldout_families=("parity", "seqdet"))
    splits = generate_curriculum(config)
    train_keys = {t["metadata"]["param_key"] for t in splits["train"]}
    test_keys = {t["metadata"]["param_key"] for t in splits["test"]}
    assert train_keys and test_keys and not train_keys & test_keys
    train_families = {t["metadata"]["family"] for t in splits["train"]}
    assert not train_families & {"parity", "seqdet"}
    assert {t["metadata"]["family"] for t in splits["test_family"]} == {"parity", "seqdet"}
    assert not {t["prompt"] for t in splits["train"]} & {t["prompt"] for t in splits["test"]}
    for family in FAMILIES:
        keep, held = split_params(config, family)
        assert held and not [p for p in held if p in keep]


def test_levels_and_bad_configs():
    splits = generate_curriculum(CurriculumConfig(seed=0, n_train=60, n_test=20, max_level=1))
    assert {t["metadata"]["level"] for s in splits.values() for t in s} == {1}
    for bad, message in [({"families": ("gate", "nope")}, "unknown curriculum families"),
                         ({"heldout_families": tuple(FAMILIES)}, "every family is held out"),
                         ({"heldout_param_fraction": 1.0}, "heldout_param_fraction"),
                         ({"variety": "medium"}, "variety"),
                         ({"max_level": 5}, "max_level")]:
        with pytest.raises(ValueError, match=message):
            CurriculumConfig(**bad)


def _mutate(reference: str) -> str | None:
    """A plausible wrong design: change one operator or constant of the golden."""
    for old, new in ((" & ", " | "), (" | ", " & "), (" ^ ", " & "), (" + 1", " + 2"), (" - 1", " + 1"),
                     (" - ", " + "), (" + ", " - "), (" < ", " > "), ("~^", "^"), (" ? ", " ? ~")):
        if old in reference:
            return reference.replace(old, new, 1)
    return None


@needs_iverilog
def test_goldens_pass_and_mutants_fail_through_the_reward_engine():
    from rewards.hierarchy import RewardConfig
    from rewards.pool import RewardPool
    from rewards.task import Task

    splits = generate_curriculum(CurriculumConfig(seed=5, n_train=60, n_test=20, heldout_families=("edge",)))
    tasks = [t for s in splits.values() for t in s]
    covered = {t["metadata"]["family"] for t in tasks}
    assert covered == EXPECTED_FAMILIES
    with RewardPool(RewardConfig(), workers=2) as pool:
        report = verify_tasks(tasks, pool=pool)
        assert report.ok, report.failed[:3]
        assert report.checked == len(tasks)
        mutants = [(t, _mutate(t["reference"])) for t in tasks]
        mutants = [(t, m) for t, m in mutants if m and m != t["reference"]]
        assert len({t["metadata"]["family"] for t, _ in mutants}) >= 10
        scores = pool.score([(Task.from_dict(t), golden_completion({"reference": m})) for t, m in mutants])
    caught = [s.passed is False for s in scores]
    # a mutant can be equivalent by accident (e.g. `a + b` vs `b + a`); nearly all must be caught
    assert sum(caught) >= 0.9 * len(caught), [m for (t, m), c in zip(mutants, caught) if not c][:3]
