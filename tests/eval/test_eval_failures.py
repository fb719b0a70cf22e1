"""VerilogEval failure classes, from real Icarus logs and from the reward engine's verdicts."""

from __future__ import annotations

import pytest

from verirl.eval.benchmarks import load_benchmark
from verirl.eval.failures import FAILURE_CLASSES, classify, classify_log, code_of
from verirl.eval.official import official_verdict
from verirl.eval.scoring import Sample, make_pool, score_samples

HEADER = "module TopModule(input a, input b, output out);\n"
CASES = {
    "syntax": HEADER + "  assign out = a & b\nendmodule\n",
    "explicit_cast": HEADER + "  typedef enum logic [1:0] {X, Y} e_t;\n  e_t s;\n  always @(*) s = 2'd1;\n"
                              "  assign out = a & b;\nendmodule\n",
    "zero_width_constant": HEADER + "  assign out = a & b & 0'b1;\nendmodule\n",
    "wire_as_reg": HEADER + "  always @(*) out = a & b;\nendmodule\n",
    "unknown_module": HEADER + "  and_cell u (.a(a), .b(b), .y(out));\nendmodule\n",
    "unbound_port": HEADER + "  assign out = a & c;\nendmodule\n",
    "no_sensitivities": "module TopModule(input a, input b, output reg out);\n  always_comb out = 1'b0;\nendmodule\n",
    "runtime_mismatch": HEADER + "  assign out = a ^ b;\nendmodule\n",
}


@pytest.mark.parametrize("expected", sorted(CASES))
def test_official_harness_logs_classify_like_verilog_eval(eda, ve_dir, expected):
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    verdict = official_verdict(bench.problems["Prob001_and2"], CASES[expected])
    assert verdict.passed is False
    assert verdict.failure == expected, verdict.log


def test_engine_verdicts_classify_the_same(eda, ve_dir):
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    names = [n for n in sorted(CASES) if n != "no_sensitivities"]  # a warning: see docs/eval.md
    with make_pool(workers=2) as pool:
        rows = score_samples(bench, [Sample("Prob001_and2", i, "```verilog\n" + CASES[n] + "```")
                                     for i, n in enumerate(names)], pool)
    assert [r["failure"] for r in rows] == names


def test_log_rules():
    assert classify_log("foo.sv:3: syntax error\nfoo.sv:4: error: x") == "syntax"
    assert classify_log("tb.sv:9: error: Unable to bind wire/reg/memory `clk' in `tb'") == "unbound_clock"
    assert classify_log("a.sv:2: error: something odd") == "compile_error"
    assert classify_log("TIMEOUT\nMismatches: 0 in 10 samples") == "timeout"
    assert classify_log("Mismatches: 3 in 10 samples", "always @(posedge clk, posedge reset)") == "reset_issue"
    assert classify_log("Mismatches: 3 in 10 samples", "always @(posedge clk)") == "runtime_mismatch"


def test_engine_failures_map_to_classes():
    assert classify(None, "", "", True) is None
    assert classify("format", "", "", False) == "format"
    assert classify("forbidden", "hierarchical reference", "", False) == "forbidden"
    assert classify("missing_result", "zero samples", "", False) == "missing_result"
    assert classify("infrastructure", "iverilog crashed", "", None) == "unscorable"
    assert classify("task_error", "task 'x': the reference fails its own testbench (timeout)", "", None) == \
        "broken_reference"
    assert classify("mismatch", "TIMEOUT\n", "", False) == "timeout"
    assert classify("compile", "x.v:1: error: bad", "", False) == "compile_error"
    assert classify("syntax", "no recognisable pattern", "", False) == "syntax"
    assert code_of(None) == "." and code_of("syntax") == "S" and set(FAILURE_CLASSES) >= set(CASES)
