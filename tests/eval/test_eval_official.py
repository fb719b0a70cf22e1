"""The official VerilogEval analysis through the reward engine: one reply per official result letter, scored by verirl
and by a one-at-a-time run of the official flow (:func:`verirl.eval.official.official_verdict`), which must agree;
warning-class samples, unclosed fences, markup inside the code, a log the engine cut at its head; and RTLLM replies
under the documented rules."""

from __future__ import annotations

import pytest

from verirl.eval.benchmarks import load_benchmark
from verirl.eval.extraction import extract_code
from verirl.eval.failures import LETTER_CLASSES, code_of, sv_iv_analyze
from verirl.eval.official import OFFICIAL_TIMEOUT, official_log, official_verdict
from verirl.eval.scoring import Sample, make_pool, score_samples

H = "module TopModule(input a, input b, output out);\n"
HR = "module TopModule(input a, input b, output reg out);\n"
PAD = ("module pad8(input [7:0] x, output [7:0] y);\n  assign y = x;\nendmodule\n"
       "module flag(input [3:0] error_in);\nendmodule\n")
#: one reply per letter sv-iv-analyze gives (Prob001_and2 computes out = a & b)
LETTERS = {
    ".": H + "  assign out = a & b;\nendmodule\n",
    "S": H + "  assign out = a & b\nendmodule\n",
    "e": H + "  typedef enum logic [1:0] {X, Y} e_t;\n  e_t s;\n  always @(*) s = 2'd1;\n  assign out = a & b;\n"
             "endmodule\n",
    "0": H + "  assign out = a & b & 0'b1;\nendmodule\n",
    "n": HR + "  always_comb out = 1'b0;\nendmodule\n",
    "w": H + "  always @(*) out = a & b;\nendmodule\n",
    "m": H + "  and_cell u (.a(a), .b(b), .y(out));\nendmodule\n",
    "c": HR + "  always @(posedge clk) out <= a & b;\nendmodule\n",
    "p": H + "  assign out = a & c;\nendmodule\n",
    "C": "module TopModule(input a, output out);\n  assign out = a;\nendmodule\n",
    "T": H + "  reg r;\n  initial forever #0 r = ~r;\n  assign out = a & b;\nendmodule\n",
    "R": H + "  assign out = a ^ b;\nendmodule\n",
}
#: Prob002_count4 (synchronous reset): an asynchronous reset that mismatches is VerilogEval's `r`
RESET_ISSUE = ("module TopModule(input clk, input reset, output reg [3:0] q);\n"
               "  always @(posedge clk, posedge reset) if (reset) q <= 4'd1; else q <= q + 4'd1;\nendmodule\n")
#: a correct design whose compile log says what the official analysis fails: `n` (a warning) and `C`
WARNINGS = {
    # the issue's case: an always_comb of constants simulates correctly (out stays 0) but warns
    "zero_always_comb": ("Prob003_zero", HR.replace("input a, input b, ", "") + "  always_comb out = 1'b0;\n"
                         "endmodule\n"),
    "correct_with_an_empty_always_comb": ("Prob001_and2", H + "  assign out = a & b;\n  always_comb begin end\n"
                                          "endmodule\n"),
    # a warning line naming a port `error_in`: sv-iv-analyze reads "error" and fails it (C), after 60 other
    # warnings, so the engine's log (its last 4 KB) has lost that line; verirl reads it in the kept compile_log
    "error_word_early_in_a_long_log": ("Prob001_and2", H + "  assign out = a & b;\n  flag f0 (.error_in(a));\n"
                                       + "".join(f"  pad8 p{i} (.x(a), .y());\n" for i in range(60))
                                       + "endmodule\n" + PAD),
}


@pytest.fixture(scope="module")
def pool():
    p = make_pool(workers=2)
    yield p
    p.close()


@pytest.fixture(scope="module")
def bench(ve_dir):
    return load_benchmark("verilog-eval-v2", ve_dir)


def _zero_problem(bench):
    """A problem whose reference drives a constant 0 (VerilogEval's Prob001_zero shape), built from Prob001's files."""
    import dataclasses

    base = bench.problems["Prob001_and2"]
    ref = "module RefModule(output out);\n  assign out = 1'b0;\nendmodule\n"
    tb = base.testbench.replace("RefModule good1 (.a(a), .b(b), .out(out_ref));", "RefModule good1 (.out(out_ref));")
    tb = tb.replace("TopModule top_module1 (.a(a), .b(b), .out(out_dut));", "TopModule top_module1 (.out(out_dut));")
    problem = dataclasses.replace(base, task_id="Prob003_zero", reference=ref, testbench=tb)
    bench.problems["Prob003_zero"] = problem
    return problem


def _agree(bench, pool, items, official_timeout=OFFICIAL_TIMEOUT):
    """Score (task, reply) items with verirl and with the official flow; return verirl's rows after checking that
    both give every sample the same verdict and letter. The official flow keeps its own time limit (a short one
    only where the design never ends, so that a loaded machine cannot turn a pass into a timeout)."""
    rows = score_samples(bench, [Sample(t, i, r) for i, (t, r) in enumerate(items)], pool)
    for (task, reply), row in zip(items, rows):
        problem = bench.problems[task]
        official = official_verdict(problem, extract_code(problem, bench.task, reply),
                                    timeout=official_timeout)
        assert (row["passed"], row["failure"]) == (official.passed, official.failure), (reply, official.log[-600:])
    return rows


@pytest.mark.parametrize("letter", sorted(LETTERS))
def test_each_official_letter(eda, bench, pool, letter):
    hangs = letter == "T"  # `initial forever #0`: the simulation never ends, whatever the time limit
    (row,) = _agree(bench, pool, [("Prob001_and2", "```verilog\n" + LETTERS[letter] + "```")],
                    official_timeout=5 if hangs else OFFICIAL_TIMEOUT)
    assert code_of(row["failure"]) == letter


def test_reset_issue_letter(eda, bench, pool):
    (row,) = _agree(bench, pool, [("Prob002_count4", "```verilog\n" + RESET_ISSUE + "```")])
    assert code_of(row["failure"]) == "r"


@pytest.mark.parametrize("case", sorted(WARNINGS))
def test_correct_designs_the_official_analysis_fails(eda, bench, pool, case):
    _zero_problem(bench)
    task, code = WARNINGS[case]
    (row,) = _agree(bench, pool, [(task, "```verilog\n" + code + "```")])
    assert row["passed"] is False and row["engine_failure"] is None       # the engine alone passes it
    assert row["failure"] in ("no_sensitivities", "compile_error")
    with make_pool(workers=1) as engine_pool:                              # --analysis engine: training's verdict
        (engine_row,) = score_samples(bench, [Sample(task, 0, "```verilog\n" + code + "```")], engine_pool,
                                      analysis="engine")
    assert engine_row["passed"] is True


def test_no_sensitivities_on_a_mismatching_design_is_n_not_r(eda, bench, pool):
    code = HR + "  always_comb out = 1'b1;\nendmodule\n"                    # wrong and warned: `n` decides first
    (row,) = _agree(bench, pool, [("Prob001_and2", "```verilog\n" + code + "```")])
    assert row["failure"] == "no_sensitivities" and row["engine_failure"] == "mismatch"


@pytest.mark.parametrize("task", ["spec-to-rtl", "code-complete"])
def test_unclosed_fences_in_both_tasks(eda, ve_dir, pool, task):
    bench = load_benchmark("verilog-eval-v2", ve_dir, task)
    body = "  assign out = a & b;\nendmodule" if task == "code-complete" else LETTERS["."].rstrip("\n")
    replies = [
        "```verilog\n" + body,                                   # opening fence, no closing one: passes
        "Here you go:\n```verilog\n" + body + "\n",               # prose before it too
        "```verilog\n" + body + "```",                            # closing fence glued to endmodule: a syntax error
    ]
    rows = _agree(bench, pool, [("Prob001_and2", r) for r in replies])
    # spec-to-rtl starts at the `module TopModule` line; a code-completion body has none, so the prose line is
    # compiled after the interface (a syntax error, officially too)
    assert [r["passed"] for r in rows] == [True, task == "spec-to-rtl", False]
    assert rows[2]["failure"] == "syntax"


def test_markup_kept_in_the_code_reaches_the_compiler_as_the_official_flow_compiles_it(eda, bench, pool):
    code = LETTERS["."]
    replies = [
        "[BEGIN]\n```verilog\n" + code + "```\n[DONE]",           # fence lines inside [BEGIN]/[DONE]: kept, fail
        "[BEGIN]\n" + code.replace("endmodule", "  // see ``` above\nendmodule") + "[DONE]",  # in a comment: fine
        "[BEGIN]\n<answer>\n" + code + "</answer>\n[DONE]",       # tags inside the code: fail
    ]
    rows = _agree(bench, pool, [("Prob001_and2", r) for r in replies])
    assert [r["passed"] for r in rows] == [False, True, False]
    assert rows[0].get("note") and rows[1].get("note")


def test_official_log_names_are_the_make_flows(bench):
    problem = bench.problems["Prob001_and2"]
    log = ("verirl_cand.v:3: warning: Port 1 (x) of verirl_c0a1b2c3d_pad8 expects 8 bits, got 1.\n"
           "verirl_tb.v:9: warning: x\ncand.v:4: syntax error\n")
    out = official_log(log, problem, sample_index=4)
    assert out.startswith("Prob001_and2/Prob001_and2_sample05.sv:3: warning: Port 1 (x) of pad8 expects")
    assert f"{problem.folder}/Prob001_and2_test.sv:9" in out and "Prob001_and2_sample05.sv:4: syntax error" in out
    # what a path can do to the official verdict: a folder named "error" turns every warning into `C`
    assert sv_iv_analyze("/data/error/x_test.sv:3: warning: y\nMismatches: 0 in 5 samples\n", "") == "C"
    assert sv_iv_analyze("Mismatches: 0 in 0 samples\n", "") == "."          # the official script's hole
    assert set(LETTER_CLASSES) >= set(LETTERS) - {"."} | {"r"}


# ------------------------------------------------------------------------------------------------ RTLLM

GOOD = "module adder4(input [3:0] a, input [3:0] b, output [4:0] sum);\n  assign sum = a + b;\nendmodule"
DRAFT = "module adder4(input [3:0] a, input [3:0] b, output [4:0] sum);\n  assign sum = a - b;\nendmodule"
RTLLM_REPLIES = {
    "prose_and_bare_code": f"Sure, here is the adder.\n{GOOD}\nIt adds a and b.",
    "unclosed_fence": f"```verilog\n{GOOD}\n",
    "glued_closing_fence": f"```verilog\n{GOOD}```",
    "draft_then_final": f"First try:\n```verilog\n{DRAFT}\n```\nOops, fixed:\n```verilog\n{GOOD}\n```",
    "think_answer": f"<think>\n```verilog\n{DRAFT}\n```\nno, plus\n</think>\n<answer>\n```verilog\n{GOOD}\n```\n</answer>",
}
#: what each rule makes of them: the training extractor (default) finds every final design; first-block takes the
#: whole reply without a fence (prose: syntax error) and the first block of several; last-answer-block needs a
#: closed ```verilog block
EXPECTED = {
    "reward": {name: True for name in RTLLM_REPLIES},
    "first-block": {"prose_and_bare_code": False, "unclosed_fence": True, "glued_closing_fence": True,
                    "draft_then_final": False, "think_answer": False},
    "last-answer-block": {"prose_and_bare_code": False, "unclosed_fence": False, "glued_closing_fence": True,
                          "draft_then_final": True, "think_answer": True},
}


@pytest.mark.parametrize("rule", sorted(EXPECTED))
def test_rtllm_replies_under_each_rule(eda, rtllm_flat, pool, rule):
    bench = load_benchmark("rtllm", rtllm_flat)
    samples = [Sample("adder4", i, reply) for i, reply in enumerate(RTLLM_REPLIES.values())]
    rows = score_samples(bench, samples, pool, extraction=None if rule == "reward" else rule)
    assert {name: row["passed"] for name, row in zip(RTLLM_REPLIES, rows)} == EXPECTED[rule]
