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


# ------------------------------------------------------------------------------------------ scheduling of the jobs
# A fake pool stands for the reward engine: what is checked is which jobs are handed to it, in which order, and
# that no job waits for another. Every wait is on an event the test sets, with a generous guard against a hang.

class _HeldPool:
    """Scores one pair at a time per caller; the pair whose completion holds ``held`` waits until ``release``."""

    def __init__(self, workers: int, held: str | None = None):
        import threading

        self.workers, self.config = workers, make_pool(workers=1).config
        self.held, self.release = held, threading.Event()
        self.calls: list[list[str]] = []
        self.waited = True

    def score(self, pairs):
        from rewards.score import Score

        self.calls.append([c for _, c in pairs])
        if self.held is not None and any(self.held in c for _, c in pairs):
            self.waited = self.release.wait(timeout=120)
        return [Score(1.0, True, None, {"function": 1.0}, {"log": ""}) for _ in pairs]


def _texts(n: int) -> list[str]:
    return [AND_OK.replace("a & b", f"a & b & {i + 1}'d1") for i in range(n)]


def test_a_slow_job_holds_back_no_other(ve_dir, tmp_path):
    """The other samples are scored and saved while one job is still running (no batch waits for its slowest job,
    the cores do not idle at every append)."""
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    texts = _texts(9)
    pool = _HeldPool(workers=2, held="1'd1")  # the first sample's job is held
    saved: list[int] = []

    def progress(done, total, passed):
        saved.append(done)
        if done == total - 1:  # every other sample is on disk: only now may the held job end
            pool.release.set()

    path = str(tmp_path / "results.jsonl")
    rows = score_samples(bench, [Sample("Prob001_and2", i, t) for i, t in enumerate(texts)], pool,
                         results_path=path, chunk_size=1, progress=progress)
    assert pool.waited, "the held job was released only by the guard: the other jobs waited for it"
    assert saved == list(range(1, 10)) and all(r["passed"] for r in rows)
    assert [r["sample_index"] for r in rows] == list(range(9))  # returned in input order whatever the end order
    with open(path) as fh:
        assert len(fh.readlines()) == 9


def test_jobs_of_tasks_known_to_be_long_are_handed_out_first(ve_dir, monkeypatch):
    from rewards import task_checks

    bench = load_benchmark("verilog-eval-v2", ve_dir)
    cost = {"Prob001_and2": 0.0, "Prob002_count4": 2.5}
    monkeypatch.setattr(task_checks, "expected_seconds", lambda task, config: cost.get(task.id, 0.0))
    samples = [Sample("Prob001_and2", 0, AND_OK), Sample("Prob001_and2", 1, AND_WRONG),
               Sample("Prob002_count4", 0, COUNT_OK), Sample("Prob001_and2", 2, AND_SYNTAX)]
    pool = _HeldPool(workers=1)
    score_samples(bench, samples, pool)
    order = [c for call in pool.calls for c in call]
    assert "reset" in order[0] and all("reset" not in c for c in order[1:])  # the long task first, the rest in order
    assert ["a | b" in c for c in order[1:3]] == [False, True]


def test_identical_engine_inputs_are_one_job(ve_dir):
    """Samples whose cut code is the same (the same reply, or replies that differ only outside the code) are scored
    once; every sample still gets its own row."""
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    samples = [Sample("Prob001_and2", 0, AND_OK), Sample("Prob001_and2", 1, "Sure:\n" + AND_OK + "\nDone."),
               Sample("Prob001_and2", 2, AND_OK), Sample("Prob002_count4", 0, AND_OK)]
    pool = _HeldPool(workers=2)
    rows = score_samples(bench, samples, pool)
    assert sorted(len(call) for call in pool.calls) == [1, 1] and len(rows) == 4
    assert [(r["task_id"], r["sample_index"]) for r in rows] == [(s.task_id, s.sample_index) for s in samples]


def test_a_stopped_run_hands_out_no_more_jobs(ve_dir, tmp_path):
    """An interruption raised where the run saves its rows ends the run: what was saved stays, the feeders take no
    new job, and the interruption reaches the caller."""
    import threading

    bench = load_benchmark("verilog-eval-v2", ve_dir)
    pool = _HeldPool(workers=1, held="'d1;")  # every job but the first waits until the run has stopped
    path = str(tmp_path / "results.jsonl")

    def progress(done, total, passed):
        raise KeyboardInterrupt

    texts = [AND_OK] + _texts(19)
    with pytest.raises(KeyboardInterrupt):
        score_samples(bench, [Sample("Prob001_and2", i, t) for i, t in enumerate(texts)], pool,
                      results_path=path, chunk_size=1, progress=progress)
    pool.release.set()
    for thread in threading.enumerate():
        if thread.name == "verirl-eval-feed":
            thread.join(timeout=120)
    with open(path) as fh:
        assert len(fh.readlines()) == 1
    assert len(pool.calls) <= 2  # the job saved, and at most the one the feeder had already taken
