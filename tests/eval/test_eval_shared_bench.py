"""Optional validation on the real benchmarks, read by path from ../shared/bench (skipped when it is absent).

A handful of problems only, to stay within the test budget; the full validation (all 156 + 156 + 29 references,
and the comparison with the official harness) is ``verirl eval --check-references`` and scripts/bench_eval.py.
"""

from __future__ import annotations

import os

import pytest

from verirl.eval.benchmarks import KNOWN_BROKEN, load_benchmark
from verirl.eval.official import official_verdict
from verirl.eval.prompts import extract_code
from verirl.eval.scoring import Sample, make_pool, reference_samples, score_samples

BENCH = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "bench"))
VE = os.path.join(BENCH, "verilog-eval-v2")
RTLLM = os.path.join(BENCH, "rtllm", "v1.1")


@pytest.fixture(scope="module")
def ve():
    if not os.path.isdir(VE):
        pytest.skip(f"benchmark folder {VE} is missing")
    return load_benchmark("verilog-eval-v2", VE)


@pytest.fixture(scope="module")
def rtllm():
    if not os.path.isdir(RTLLM):
        pytest.skip(f"benchmark folder {RTLLM} is missing")
    return load_benchmark("rtllm", RTLLM)


def test_layouts_load_completely(ve, rtllm):
    assert len(ve) == 156 and ve.commit == "c498220d0a52248f8e3fdffe279075215bde2da6"
    assert len(load_benchmark("verilog-eval-v2", VE, "code-complete")) == 156
    assert len(rtllm) == 29 and rtllm.version == "v1.1"
    # the README's caveats: the testbench's module name, not the reference's, is the top
    assert rtllm.problems["multi_pipe_4bit"].top == "multi_pipe_4bit"
    assert "module multi_pipe_4bit" in rtllm.problems["multi_pipe_4bit"].reference
    assert rtllm.problems["multi_booth_8bit"].top == "multi_booth_8bit"
    assert set(rtllm.problems["asyn_fifo"].files) == {"wfull.txt", "rempty.txt", "tdata.txt"}


def test_references_and_broken_problems(eda, ve, rtllm):
    ve_ids = ["Prob001_zero", "Prob030_popcount255", "Prob082_lfsr32", "Prob099_m2014_q6c"]
    rt_ids = ["alu", "calendar", "div_16bit"]
    with make_pool(workers=2) as pool:
        ve_rows = score_samples(ve, reference_samples(ve, [ve.problems[t] for t in ve_ids]), pool)
        rt_rows = score_samples(rtllm, reference_samples(rtllm, [rtllm.problems[t] for t in rt_ids]), pool)
        broken = "```verilog\nmodule TopModule(output zero);\n  assign zero = 1'b1;\nendmodule\n```"
        (bad,) = score_samples(ve, [Sample("Prob001_zero", 1, broken)], pool)
    for row in ve_rows + rt_rows:
        bench_broken = KNOWN_BROKEN[("verilog-eval-v2", "spec-to-rtl")] | KNOWN_BROKEN[("rtllm", None)]
        assert row["passed"] is (row["task_id"] not in bench_broken), row
    assert bad["passed"] is False and bad["failure"] == "runtime_mismatch"
    problem = ve.problems["Prob001_zero"]
    assert official_verdict(problem, extract_code(problem, "spec-to-rtl", broken)).failure == "runtime_mismatch"
