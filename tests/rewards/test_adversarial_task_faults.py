"""Mechanism 4: task faults blamed on the model.

A broken task is ``task_error`` with reward ``None`` (never a score the model can learn from), with the
reason; text the model produced that is not valid Unicode is ``format``, never ``infrastructure``.
"""

from __future__ import annotations

import dataclasses

import pytest

from rewards import task_checks
from rewards.errors import TaskError
from rewards.hierarchy import RewardConfig, score_completion
from rewards.simulate import SimLimits
from rewards.task import Task

FULL = RewardConfig(weights={"format": 0.1, "syntax": 0.1, "function": 1.0, "ppa": 0.0})
SYNTAX_ONLY = RewardConfig(weights={"format": 0.1, "syntax": 1.0, "function": 0.0, "ppa": 0.0})


def variant(h, **changes) -> Task:
    row = {**h.task.to_dict(), **changes}
    row["id"] = f"{h.task.id}:{sorted(changes)}:{hash(tuple(sorted(map(str, changes.values()))))}"
    return Task(**row)


def assert_task_error(score, *needles):
    assert score.reward is None and score.passed is None and score.failure == "task_error", score
    assert all(v is None for v in score.components.values())
    for needle in needles:
        assert needle in score.detail["reason"], score.detail["reason"]


@pytest.mark.usefixtures("eda")
@pytest.mark.parametrize("config", [FULL, SYNTAX_ONLY], ids=["full", "syntax_only"])
def test_reference_that_does_not_define_top(harness, config):
    ref = harness.task.reference.replace("module RefModule", "module Other").replace("module addw", "module other")
    task = variant(harness, reference=ref)
    assert_task_error(score_completion(task, harness.design(), config), "does not define module")


@pytest.mark.usefixtures("eda")
@pytest.mark.parametrize("validate", [True, False], ids=["validated", "not_validated"])
def test_testbench_that_does_not_compile_with_the_reference(harness, validate):
    # the reference lacks the port the testbench connects
    ref = harness.task.reference.replace("output [W:0] s", "output [W:0] sum").replace("assign s =", "assign sum =")
    task = variant(harness, reference=ref)
    config = dataclasses.replace(FULL, validate_reference=validate)
    score = score_completion(task, harness.design(), config)
    if harness.name == "rtllm":  # RTLLM testbenches never see the reference: a task fault only when validated
        return
    assert_task_error(score, "does not compile with the reference")


HANG = "  integer k;\n  always @(a) begin k = 0; while (1) k = k + 1; end\n"


@pytest.mark.usefixtures("eda")
def test_reference_that_fails_its_own_testbench(harness):
    # a testbench comparing with the reference passes any deterministic reference: make this one hang
    task = variant(harness, reference=harness.task.reference.replace("endmodule", HANG + "endmodule"))
    config = dataclasses.replace(FULL, sim=SimLimits(max_timeout=1.0))
    assert_task_error(score_completion(task, harness.design(), config), "fails its own testbench", "timeout")
    if harness.name == "rtllm":  # its testbench checks the sum itself
        task = variant(harness, reference=harness.task.reference.replace("a + b", "a - b"))
        assert_task_error(score_completion(task, harness.design(), FULL), "fails its own testbench", "mismatch")


@pytest.mark.usefixtures("eda")
def test_reference_using_what_candidates_may_not_use(harness):
    ref = harness.task.reference.replace("endmodule", "  initial $finish;\nendmodule")
    assert_task_error(score_completion(variant(harness, reference=ref), harness.design(), FULL),
                      "construct candidates may not use", "$finish")


@pytest.mark.usefixtures("eda")
def test_task_verdict_is_cached(harness, monkeypatch):
    task = variant(harness, reference=harness.task.reference.replace(f"module {harness.top}", "module other")
                   .replace("module RefModule", "module other"), id="cached")
    calls = []
    real = task_checks._new_state
    monkeypatch.setattr(task_checks, "_new_state", lambda t: calls.append(t.id) or real(t))
    for _ in range(3):
        assert_task_error(score_completion(task, harness.design(), FULL))
    assert len(calls) <= 1


@pytest.mark.usefixtures("eda")
def test_a_reference_that_does_not_compile_with_its_testbench_is_checked_once_per_machine(harness, tmp_path,
                                                                                          monkeypatch):
    monkeypatch.setenv("VERIRL_CACHE_DIR", str(tmp_path / "facts"))  # a machine that never saw this task
    # the testbench and the reference do not compile together: every completion is task_error, one check
    ref = harness.task.reference.replace("output [W:0] s", "output [W:0] sum").replace("assign s =", "assign sum =")
    task = variant(harness, reference=ref, id="failing-once")
    config = dataclasses.replace(FULL, validate_reference=True)
    task_checks.forget()  # earlier tests scored the same task content
    runs = []
    for completion in (harness.design(), harness.design("  assign s = a - b;\n"), harness.design()):
        score = score_completion(task, completion, config)
        if harness.name != "rtllm":
            assert_task_error(score, "does not compile with the reference")
        runs.append(score.detail.get("tools", {}).get("reference", {}).get("runs", 0))
    if harness.name != "rtllm":
        assert runs[0] >= 1 and runs[1:] == [0, 0]
        task_checks.forget()  # a new process: the compiler's verdict on the same text is in the machine's facts file
        again = score_completion(task, harness.design(), config)
        assert_task_error(again, "does not compile with the reference")
        assert not again.detail.get("tools"), again.detail  # no tool ran, the candidate's compile included


@pytest.mark.parametrize("completion", [
    "```verilog\nmodule addw(input a, output s); assign s = a; // \ud800\nendmodule\n```",
    "\udfff",
    [{"role": "assistant", "content": "```verilog\nmodule x;\udc80 endmodule\n```"}],
    "```verilog\nmodule addw(input a, output s);\n  assign s = a;\nendmodule\n```\ud83d",
])
def test_text_that_is_not_unicode_is_a_format_failure(harness, completion):
    score = score_completion(harness.task, completion, FULL)
    assert score.failure == "format" and score.reward == 0.0, score
    assert "not valid Unicode" in score.detail["log"]


def test_undecodable_bytes_are_replaced_not_crashed(harness):
    score = score_completion(harness.task, b"```verilog\nmodule \xff\xfe(input a); endmodule\n```", FULL)
    assert score.failure in ("forbidden", "syntax", "elaboration") and score.reward is not None, score


@pytest.mark.parametrize("field", ["reference", "testbench"])
def test_task_text_that_is_not_unicode_is_refused_when_loaded(field):
    row = {"id": "t", "prompt": "", "top": "top", "reference": "module top; endmodule", "testbench": "module tb;"}
    row[field] += "\ud800"
    with pytest.raises(TaskError, match="not valid Unicode"):
        Task.from_dict(row)
    with pytest.raises(TaskError, match="not valid Unicode"):
        Task(id="t", prompt="", top="top", files={"data.txt": "\udcff"})
