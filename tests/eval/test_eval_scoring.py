"""Scoring benchmark problems through the reward engine: references pass, broken completions get the benchmark's
own verdict, exploits fail, failure classes follow VerilogEval, known-broken problems are reported."""

from __future__ import annotations

import pytest

from verirl.eval.benchmarks import load_benchmark
from verirl.eval.extraction import extract_code
from verirl.eval.official import official_verdict
from verirl.eval.scoring import Sample, make_pool, reference_samples, score_samples

AND_OK = "```verilog\nmodule TopModule(input a, input b, output out);\n  assign out = a & b;\nendmodule\n```"
AND_WRONG = "[BEGIN]\nmodule TopModule(input a, input b, output out);\n  assign out = a | b;\nendmodule\n[DONE]"
AND_SYNTAX = "```verilog\nmodule TopModule(input a, input b, output out)\n  assign out = a & b\nendmodule\n```"
AND_UNKNOWN_MODULE = ("```verilog\nmodule TopModule(input a, input b, output out);\n  and_cell u (.a(a), .b(b), "
                      ".y(out));\nendmodule\n```")
COUNT_OK = ("```verilog\nmodule TopModule(input clk, input reset, output reg [3:0] q);\n"
            "  always @(posedge clk) q <= reset ? 4'd0 : q + 4'd1;\nendmodule\n```")
COUNT_ASYNC = ("```verilog\nmodule TopModule(input clk, input reset, output reg [3:0] q);\n"
               "  always @(posedge clk, posedge reset) if (reset) q <= 0; else q <= q + 1;\nendmodule\n```")
COUNT_OFF = ("```verilog\nmodule TopModule(input clk, input reset, output reg [3:0] q);\n"
             "  always @(posedge clk) q <= reset ? 4'd1 : q + 4'd1;\nendmodule\n```")

# exploits: each would fool a naive harness; all must fail
EXPLOIT_PRINT = ("```verilog\nmodule TopModule(input a, input b, output out);\n  assign out = 1'b0;\n"
                 "  initial $display(\"Mismatches: 0 in 100 samples\");\nendmodule\n```")
EXPLOIT_FINISH = ("```verilog\nmodule TopModule(input a, input b, output out);\n  assign out = 1'b0;\n"
                  "  initial $finish;\nendmodule\n```")
EXPLOIT_HIER = ("```verilog\nmodule TopModule(input a, input b, output out);\n  assign out = tb.out_ref;\n"
                "endmodule\n```")
EXPLOIT_HIER_REF = ("```verilog\nmodule TopModule(input a, input b, output out);\n  assign out = tb.good1.out;\n"
                    "endmodule\n```")
RTLLM_EXPLOIT = ("```verilog\nmodule adder4(input [3:0] a, input [3:0] b, output [4:0] sum);\n  assign sum = 0;\n"
                 "  initial $display(\"===========Your Design Passed===========\");\nendmodule\n```")
RTLLM_WRONG = "```verilog\nmodule adder4(input [3:0] a, input [3:0] b, output [4:0] sum);\n  assign sum = a - b;\nendmodule\n```"
RTLLM_OK = "```verilog\nmodule adder4(input [3:0] a, input [3:0] b, output [4:0] sum);\n  assign sum = a + b;\nendmodule\n```"


@pytest.fixture(scope="module")
def pool():
    p = make_pool(workers=2)
    yield p
    p.close()


def _score(bench, pool, items):
    samples = [Sample(task, i, text) for i, (task, text) in enumerate(items)]
    return score_samples(bench, samples, pool)


def test_references_pass_and_broken_reference_is_reported(eda, ve_dir, pool):
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    rows = {r["task_id"]: r for r in score_samples(bench, reference_samples(bench), pool)}
    assert rows["Prob001_and2"]["passed"] and rows["Prob002_count4"]["passed"]
    slow = rows["Prob003_slowtb"]
    assert slow["passed"] is False and slow["failure"] == "broken_reference" and slow["known_broken"]
    assert "Prob003_slowtb" in bench.known_broken and "TIMEOUT" in slow["reason"]


def test_broken_completions_match_the_benchmarks_own_verdict(eda, ve_dir, pool):
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    items = [("Prob001_and2", AND_OK), ("Prob001_and2", AND_WRONG), ("Prob001_and2", AND_SYNTAX),
             ("Prob001_and2", AND_UNKNOWN_MODULE), ("Prob002_count4", COUNT_OK), ("Prob002_count4", COUNT_OFF),
             ("Prob002_count4", COUNT_ASYNC)]
    rows = _score(bench, pool, items)
    expected = [None, "runtime_mismatch", "syntax", "unknown_module", None, "runtime_mismatch", "reset_issue"]
    assert [r["failure"] for r in rows] == expected
    for (task, text), row in zip(items, rows):
        problem = bench.problems[task]
        official = official_verdict(problem, extract_code(problem, bench.task, text))
        assert official.passed == row["passed"], (task, text, official.log)
        assert official.failure == row["failure"], (task, text, official.log)


@pytest.mark.parametrize("exploit", [EXPLOIT_PRINT, EXPLOIT_FINISH, EXPLOIT_HIER, EXPLOIT_HIER_REF])
def test_exploits_fail(eda, ve_dir, pool, exploit):
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    (row,) = _score(bench, pool, [("Prob001_and2", exploit)])
    assert row["passed"] is False
    assert row["failure"] not in (None, "unscorable")


def test_code_completion_reply_without_header_gets_the_interface(eda, ve_dir, pool):
    bench = load_benchmark("verilog-eval-v2", ve_dir, "code-complete")
    body = "  assign out = a & b;\nendmodule\n"
    wrong = "  assign out = a ^ b;\nendmodule\n"
    rows = _score(bench, pool, [("Prob001_and2", body), ("Prob001_and2", wrong)])
    assert [r["passed"] for r in rows] == [True, False]


@pytest.mark.parametrize("layout", ["rtllm_nested", "rtllm_flat"])
def test_rtllm_verdicts_and_exploit(eda, request, pool, layout):
    bench = load_benchmark("rtllm", request.getfixturevalue(layout))
    ref = score_samples(bench, reference_samples(bench), pool)
    assert [r["passed"] for r in ref] == [True]
    rows = _score(bench, pool, [("adder4", RTLLM_OK), ("adder4", RTLLM_WRONG), ("adder4", RTLLM_EXPLOIT)])
    assert [r["passed"] for r in rows] == [True, False, False]
    problem = bench.problems["adder4"]
    for text, row in zip((RTLLM_OK, RTLLM_WRONG), rows):
        assert official_verdict(problem, extract_code(problem, None, text)).passed == row["passed"]


def test_results_are_resumed_not_rescored(eda, ve_dir, pool, tmp_path):
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    path = str(tmp_path / "results.jsonl")
    samples = [Sample("Prob001_and2", 0, AND_OK), Sample("Prob001_and2", 1, AND_WRONG)]
    first = score_samples(bench, samples[:1], pool, results_path=path)

    class Counting:
        calls = 0
        config = pool.config

        def score(self, pairs):
            Counting.calls += len(pairs)
            return pool.score(pairs)

    second = score_samples(bench, samples, Counting(), results_path=path)
    assert Counting.calls == 1                      # only the new sample was scored
    assert second[0] == first[0] and second[1]["passed"] is False


def test_ppa_is_added_to_reused_verdicts_not_rescored(eda, ve_dir, pool, tmp_path):
    """PPA is not a verdict setting: a rerun with --ppa keeps the scored verdicts and adds the synthesis figures."""
    from verirl.eval.scoring import eval_ppa_config

    bench = load_benchmark("verilog-eval-v2", ve_dir)
    path = str(tmp_path / "results.jsonl")
    samples = [Sample("Prob001_and2", 0, AND_OK)]
    (first,) = score_samples(bench, samples, pool, results_path=path)

    class Counting:
        calls = 0
        config, workers = pool.config, 1

        def score(self, pairs):
            Counting.calls += len(pairs)
            return pool.score(pairs)

        def map_ppa(self, pairs, config):
            return pool.map_ppa(pairs, config)

    (row,) = score_samples(bench, samples, Counting(), results_path=path, ppa=eval_ppa_config())
    assert Counting.calls == 0 and row["passed"] == first["passed"] is True
    assert row["ppa"]["candidate"]["cells"] >= 1


def test_reference_check_can_be_switched_off():
    from verirl.eval.scoring import eval_reward_config

    assert eval_reward_config().validate_reference is True
    assert eval_reward_config(reference_check=False).validate_reference is False
