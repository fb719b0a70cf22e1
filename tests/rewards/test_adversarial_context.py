"""Mechanism 2: the standalone gate checks a different text than the one simulated.

Closed by construction: one canonical text per completion (no testbench or reference macro visible,
``__FILE__`` fixed, explicit ```timescale``/```resetall``/```default_nettype``) is what the gate
elaborates, what the simulator compiles and what Yosys synthesises; and the gate elaborates it with the
parameter values the testbench gives ``top`` as well as with its defaults.
"""

from __future__ import annotations

import pytest

from rewards import sandbox, simulate, syntax
from rewards.hierarchy import RewardConfig, score_completion
from rewards.sanitize import sanitize_candidate
from rewards.task import Task

FULL = RewardConfig(weights={"format": 0.1, "syntax": 0.1, "function": 1.0, "ppa": 0.1})


def hier_target(h) -> str:
    """Something only the testbench can provide: the reference's output, or (RTLLM) the expected sum."""
    return h.golden_out or f"({h.tb}.a + {h.tb}.b)"


def assert_no_credit(score, failures=("forbidden", "elaboration")):
    assert score.passed is False and score.failure in failures, score
    assert score.components["syntax"] == 0.0 and score.components["function"] == 0.0, score
    assert score.components["ppa"] == 0.0
    assert score.reward == pytest.approx(0.1)


# ------------------------------------------------------------------------------------- macros of the testbench


@pytest.mark.usefixtures("eda")
@pytest.mark.parametrize("variant", [
    # VerilogEval's testbench defines OK; the verirl testbench defines VERIRL_REPORT: neither is visible
    "`ifdef OK\n  assign s = {target};\n`else\n  assign s = {{W+1{{1'b0}}}};\n`endif\n",
    "`ifndef OK\n  assign s = {{W+1{{1'b0}}}};\n`else\n  assign s = {target};\n`endif\n",
    "`ifdef VERIRL_REPORT\n  assign s = {target};\n`else\n  assign s = 0;\n`endif\n",
    "`ifdef INCORRECT\n  assign s = {target};\n`elsif OK\n  assign s = {target};\n`else\n  assign s = 0;\n`endif\n",
])
def test_testbench_macros_are_invisible(harness, variant):
    score = score_completion(harness.task, harness.design(variant.format(target=hier_target(harness))), FULL)
    # the candidate gets the branch it would get alone: a wrong design, honestly scored
    assert score.failure == "mismatch" and score.components["syntax"] == 1.0, score


@pytest.mark.usefixtures("eda")
@pytest.mark.parametrize("use", ["`OK", "`INCORRECT", "`VERIRL_REPORT(1, 1)", "`__ICARUS_SYNTH__"])
def test_using_a_macro_the_candidate_does_not_define_is_refused(harness, use):
    score = score_completion(harness.task, harness.design(f"  assign s = a + b;\n  wire [7:0] k = {use};\n"), FULL)
    assert_no_credit(score, ("forbidden",))
    assert "not defined in the candidate" in score.detail["log"]


@pytest.mark.usefixtures("eda")
def test_file_name_is_the_same_everywhere(harness):
    # `__FILE__ is "candidate.v" in the gate and in the simulation: branching on it selects the same code
    body = ("  localparam [95:0] F = `__FILE__;\n"
            "  if (F == \"candidate.v\") begin : g assign s = a + b; end\n"
            f"  else begin : g assign s = {hier_target(harness)}; end\n")
    score = score_completion(harness.task, harness.design(body), FULL)
    assert score.passed is True, score
    other = body.replace('F == "candidate.v"', 'F != "candidate.v"')
    assert_no_credit(score_completion(harness.task, harness.design(other), FULL))


# ------------------------------------------------------------------------------------- timescale and nettype


@pytest.mark.usefixtures("eda")
@pytest.mark.parametrize("compare", ["T > 0.5", "T < 0.5", "T > 500.0", "T < 500.0", "T > 1.0e8"])
def test_timescale_dependent_constants_select_the_same_branch(harness, compare):
    # a time literal's value depends on the time unit in force; the canonical text states it, so the gate
    # and the simulation agree on every branch, and a branch that reaches out fails wherever it is taken
    body = (f"  localparam real T = 1ns;\n  if ({compare}) begin : g assign s = {hier_target(harness)}; end\n"
            "  else begin : g assign s = a + b; end\n")
    score = score_completion(harness.task, harness.design(body), FULL)
    assert score.passed is True or (score.failure in ("forbidden", "elaboration") and score.reward == 0.1), score


@pytest.mark.usefixtures("eda")
def test_candidate_timescale_follows_the_task(harness):
    code = sanitize_candidate(harness.source(), harness.top, timescale=simulate.task_timescale(harness.task)).code
    expected = {"verirl": "1s/1s", "verilog-eval": "1ps/1ps", "rtllm": "1ns/1ps"}[harness.name]
    assert f"`timescale {expected}\n" in code


@pytest.mark.usefixtures("eda")
def test_testbench_default_nettype_does_not_reach_the_candidate(harness):
    task = Task(**{**harness.task.to_dict(), "id": harness.task.id + "_nettype",
                   "testbench": "`default_nettype none\n" + harness.task.testbench})
    # `imp` is an implicit net: legal under the candidate's own default nettype, whatever the testbench set
    score = score_completion(task, harness.design("  assign s = a + b;\n  assign imp = a[0];\n"), FULL)
    assert score.passed is True, score


# ------------------------------------------------------------------------------------- parameter values


@pytest.mark.usefixtures("eda")
@pytest.mark.parametrize("variant", [
    # the branch that reaches out exists only for the testbench's W=4, not for the default W=8
    "  if (W == 4) begin : g assign s = {target}; end else begin : g assign s = 0; end\n",
    "  generate if (W < 5) begin : g assign s = {target}; end else begin : g assign s = 0; end endgenerate\n",
    ("  genvar i;\n  for (i = 0; i < 8 - W; i = i + 1) begin : g if (i == 3) assign s = {target}; end\n"
    "  if (W != 4) assign s = 0;\n"),
    "  case (W) 4: begin : g assign s = {target}; end default: begin : g assign s = 0; end endcase\n",
    ("  if (W == 4) begin : g initial force {counter} = 0; assign s = a + b; end\n"
    "  else begin : g assign s = 0; end\n"),
])
def test_branches_selected_by_the_testbench_parameters_are_gated(harness, variant):
    body = variant.format(target=hier_target(harness), counter=f"{harness.tb}.{harness.counter}")
    # where the testbench does not override W, the default is what it simulates: make it the attacking value
    score = score_completion(harness.task, harness.design(body, default=8 if harness.overrides else 4), FULL)
    assert_no_credit(score)
    if harness.overrides:  # elaborates alone with W=8, not with the testbench's W=4
        assert score.failure == "forbidden" and score.detail["failure_stage"] == "in_context", score


@pytest.mark.usefixtures("eda")
@pytest.mark.parametrize("query", ["$bits({counter})", "$size({counter})", "$left({counter})",
                                   "$bits({tb}.a) + 1", "$bits(tb_pkg::t)"])
def test_queries_of_names_only_the_testbench_has_are_refused(harness, query):
    # Icarus evaluates $bits of a name it cannot resolve to 0: the gate and the simulation would differ
    q = query.format(counter=f"{harness.tb}.{harness.counter}", tb=harness.tb)
    body = f"  if ({q} > 1) begin : g assign s = {hier_target(harness)}; end else begin : g assign s = a + b; end\n"
    assert_no_credit(score_completion(harness.task, harness.design(body), FULL), ("forbidden",))


@pytest.mark.usefixtures("eda")
@pytest.mark.parametrize("extra", [
    "  defparam {tb}.{dut}.W = 8;\n",
    "  defparam {dut}.W = 4;\n",
    "  defparam {tb}.X = 1;\n",
])
def test_defparam_into_other_scopes_is_refused(harness, extra):
    score = score_completion(harness.task, harness.design("  assign s = a + b;\n" + extra.format(
        tb=harness.tb, dut=harness.dut)), FULL)
    assert_no_credit(score, ("elaboration",))


def test_parameter_values_are_read_from_the_compiled_image():
    image = ('S_0x1 .scope module, "tb" "tb" 2 1;\n'
             'S_0x2 .scope module, "dut" "top" 3 7, 3 1 0, S_0x1;\n'
             'P_0x3 .param/l "N" 0 3 1, +C4<0110>;\n'
             'P_0x4 .param/l "L" 1 3 1, C4<1>;\n'
             'P_0x5 .param/real "R" 0 3 1, Cr<m4800000000000000gfc3>; value=2.25000\n'
             'P_0x6 .param/str "S" 0 3 1, "a\\042b";\n'
             'S_0x7 .scope module, "ref" "ref_top" 3 8, 3 1 0, S_0x1;\n'
             'P_0x8 .param/l "N" 0 3 1, +C4<0110>;\n')
    (found,) = syntax.top_parameters(image, "top")
    assert found == (("N", "l", "+C4<0110>"), ("R", "real", "Cr<m4800000000000000gfc3>"), ("S", "str", '"a\\042b"'))
    assert syntax._overrides(found) == ' #(.N(4\'sb0110), .R(2.25), .S("a\\042b"))'


# ------------------------------------------------------------------------------------- one text everywhere


@pytest.mark.usefixtures("eda")
def test_gate_simulation_and_synthesis_read_one_canonical_text(harness, monkeypatch):
    """Every file any tool reads for the candidate (the gate's, alone or inside the simulation compile, the
    simulation's, Yosys') holds the same canonical string."""
    writes: list[tuple[str, str]] = []
    real_write = sandbox.Workspace.write

    def spy(self, name, content):
        writes.append((name, content))
        return real_write(self, name, content)

    monkeypatch.setattr(sandbox.Workspace, "write", spy)
    src = harness.design("`define SUM a + b\n  assign s = `SUM; // ok\n  (* keep *) wire k;\n").replace("\n", "\r\n")
    score = score_completion(harness.task, src, FULL)
    assert score.passed is True, score
    texts = {content for name, content in writes if name in CANDIDATE_FILES and "wire k;" in content}
    assert len(texts) == 1, texts  # the candidate's (the reference's own runs write its text, without `k`)
    (text,) = texts
    assert {name for name, content in writes if content == text} >= {"verirl_cand.v", "design.v"}
    assert "`SUM" not in text and "//" not in text and "(*" not in text and "\r" not in text
    assert score.detail["tools"]["compile"]["runs"] == 1  # the gate ran inside the simulation's compile


CANDIDATE_FILES = ("verirl_cand.v", "cand.v", "design.v")


UNIT_ITEMS = ("typedef logic [31:0] tb_word_t;\nlocalparam int TB_K = 7;\n"
              "function automatic int tb_f(input int x); return x + 1; endfunction\n")


@pytest.mark.usefixtures("eda")
@pytest.mark.parametrize("variant", [
    # $bits of a name the gate cannot resolve is 0 in Icarus, while the simulation sees the testbench's
    "  if ($bits(tb_word_t) > 1) begin : g assign s = {target}; end else begin : g assign s = 0; end\n",
    "  localparam int K = $bits(TB_K);\n  if (K != 0) begin : g assign s = {target}; end else begin : g assign s = 0; end\n",
    "  reg [W:0] r = 0; assign s = r;\n  always @(a or b) if ($bits(tb_f) != 0) r = {target}; else r = 0;\n",
])
def test_querying_the_testbench_compilation_unit_is_refused(harness, variant):
    task = Task(**{**harness.task.to_dict(), "id": harness.task.id + "_unit",
                   "testbench": UNIT_ITEMS + harness.task.testbench})
    score = score_completion(task, harness.design(variant.format(target=hier_target(harness))), FULL)
    # without the check the branch that reaches out (and passes) would be taken in the simulation only
    assert_no_credit(score, ("forbidden",))
    assert "compilation unit" in score.detail["log"]


@pytest.mark.usefixtures("eda")
@pytest.mark.parametrize("use", ["  assign s = a + b + TB_K - 7;\n", "  assign s = tb_f(a) + b - 1;\n",
                                 "  tb_word_t w = a + b;\n  assign s = w;\n"])
def test_using_testbench_unit_names_fails_the_gate(harness, use):
    task = Task(**{**harness.task.to_dict(), "id": harness.task.id + "_unit",
                   "testbench": UNIT_ITEMS + harness.task.testbench})
    assert_no_credit(score_completion(task, harness.design(use), FULL), ("elaboration", "syntax"))


def test_specify_blocks_are_refused():
    code = "module top(input a, output y);\n  assign y = a;\n  specify (a => y) = (tb.N); endspecify\nendmodule\n"
    with pytest.raises(Exception, match="specify"):
        sanitize_candidate(code, "top")
