"""The equivalence reward: binary by default, a meaningful partial credit, a minimum strength."""

from __future__ import annotations

import pytest

from rewards.errors import ConfigError
from rewards.hierarchy import RewardConfig, score_completion
from rewards.task import Task

pytestmark = pytest.mark.usefixtures("eda")

SYNC = """module counter(input clk, input reset, input en, output reg [3:0] q);
  always @(posedge clk) if (reset) q <= 4'd0; else if (en) q <= q + 4'd1;
endmodule
"""
ASYNC = SYNC.replace("always @(posedge clk)", "always @(posedge clk or posedge reset)")
RENAMED = SYNC.replace("output reg [3:0] q);", "output [3:0] q);\n  reg [3:0] r;\n  assign q = r;").replace(
    "q <= 4'd0; else if (en) q <= q + 4'd1;", "r <= 4'd0; else if (en) r <= r + 4'd1;")


def _task() -> Task:
    return Task(id="counter", prompt="a counter", top="counter", reference=SYNC)


def _fence(code: str) -> str:
    return f"```verilog\n{code}```"


def test_a_non_equivalent_candidate_scores_far_below_an_equivalent_one():
    # the case: an async-reset counter against a sync-reset reference scored 1.198 of 1.2
    patient = RewardConfig(equivalence={"formal_timeout": 120})  # a loaded machine must not turn a proof into a bound
    good = score_completion(_task(), _fence(SYNC), patient)
    wrong = score_completion(_task(), _fence(ASYNC), patient)
    assert good.passed and good.components["function"] == 1.0 and good.detail["strength"] == "proven"
    assert wrong.passed is False and wrong.failure == "mismatch"
    assert wrong.components["function"] == 0.0 and wrong.reward == pytest.approx(good.reward - 1.0)


def test_partial_credit_is_the_fraction_of_sequences_without_a_mismatch():
    config = RewardConfig(equivalence={"partial_credit": True})
    wrong = score_completion(_task(), _fence(ASYNC), config)
    assert wrong.passed is False
    assert 0.0 <= wrong.components["function"] < 0.9  # the old check fraction was 0.998
    # the testbench-task setting does not leak into equivalence tasks
    assert score_completion(_task(), _fence(ASYNC), RewardConfig(partial_credit=True)).components["function"] == 0.0


def test_a_minimum_strength_turns_weaker_equivalence_into_a_failure():
    strict = RewardConfig(equivalence={"min_strength": "proven", "formal_depth": 2})
    score = score_completion(_task(), _fence(RENAMED), strict)
    if score.detail["strength"] == "proven":
        assert score.passed
    else:
        assert score.passed is False and score.failure == "unproven" and score.components["function"] == 0.0
    sim_only = RewardConfig(equivalence={"method": "auto", "min_strength": "bounded"})
    assert score_completion(_task(), _fence(SYNC), sim_only).passed
    with pytest.raises(ConfigError, match="min_strength"):
        RewardConfig(equivalence={"min_strength": "certain"})
    with pytest.raises(ConfigError, match="cannot be met"):
        RewardConfig(equivalence={"method": "simulation", "min_strength": "proven"})
