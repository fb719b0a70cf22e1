"""Exact/near dedupe (datasketch MinHash LSH) and benchmark decontamination."""

from __future__ import annotations

import glob
import os

import pytest
from data_fixtures import BENCH_RTLLM, BENCH_VE, CORPUS

from data_pipeline.config import BenchmarkConfig, DecontaminationConfig, DedupeConfig
from data_pipeline.decontaminate import Decontaminator, load_rtllm, load_verilog_eval
from data_pipeline.dedupe import Deduplicator, exact_hash

ALU = open(os.path.join(CORPUS, "alu.v")).read()
NEAR_ALU = open(os.path.join(CORPUS, "near_alu.v")).read()
ADDER = open(os.path.join(CORPUS, "adder.v")).read()
DUP_ADDER = open(os.path.join(CORPUS, "dup_adder.v")).read()
SHARED_BENCH = "/work/shared/bench"


def test_exact_hash_ignores_layout_and_comments_only():
    assert exact_hash(ADDER) == exact_hash(DUP_ADDER)
    assert exact_hash(ADDER) != exact_hash(ADDER.replace("total[8]", "total[7]"))


def test_near_duplicates_found_and_distinct_modules_kept():
    dd = Deduplicator(DedupeConfig(threshold=0.8))
    assert dd.exact_duplicate("alu", ALU) is None and dd.near_duplicate("alu", ALU) is None
    key, sim = dd.near_duplicate("alu2", NEAR_ALU)
    assert key == "alu" and 0.8 <= sim < 1.0
    assert dd.near_duplicate("adder", ADDER) is None
    assert dd.exact_duplicate("dup", DUP_ADDER) is None  # different module than the ALU
    assert dd.exact_duplicate("dup2", ADDER) == "dup"


def test_dedupe_state_round_trips_through_a_shard_delta():
    dd = Deduplicator(DedupeConfig())
    dd.exact_duplicate("alu", ALU)
    dd.near_duplicate("alu", ALU)
    delta = dd.take_delta()
    fresh = Deduplicator(DedupeConfig())
    fresh.load_delta(delta)
    assert fresh.exact_duplicate("again", ALU) == "alu"
    assert fresh.near_duplicate("near", NEAR_ALU)[0] == "alu"
    # a discarded (uncommitted) shard leaves no trace
    dd.exact_duplicate("adder", ADDER)
    dd.near_duplicate("adder", ADDER)
    dd.discard_delta()
    assert dd.exact_duplicate("adder2", ADDER) is None and dd.near_duplicate("adder2", ADDER) is None


def _decon(**kw) -> Decontaminator:
    cfg = DecontaminationConfig(benchmarks=[BenchmarkConfig("verilog-eval", BENCH_VE),
                                            BenchmarkConfig("rtllm", BENCH_RTLLM)], **kw)
    return Decontaminator(cfg)


def test_decontamination_drops_copies_and_reports_the_problem():
    decon = _decon()
    assert len(decon.problems) == 2
    copy = open(os.path.join(CORPUS, "gray_copy.v")).read()
    match = decon.check_code(copy)
    assert match.benchmark == "verilog-eval" and match.problem == "Prob901_gray" and match.score > 0.9
    assert "Prob901_gray" in match.describe()
    assert decon.check_code(ALU) is None and decon.check_code(ADDER) is None
    # a description that reuses the benchmark prompt's wording is caught
    text = open(os.path.join(BENCH_RTLLM, "gray", "design_description.txt")).read()
    assert decon.check_description("Intro. " + text).problem == "gray"
    assert decon.check_description("A module that adds two eight bit numbers with carry.") is None


def test_renamed_copy_needs_identifier_normalization():
    renamed = open(os.path.join(CORPUS, "gray_copy.v")).read().replace("bin", "b_in").replace("gray", "g_out")
    assert _decon().check_code(renamed) is None and _decon().score_code(renamed) < 0.5
    assert _decon(normalize_identifiers=True).check_code(renamed).problem == "Prob901_gray"


def test_decontamination_config_errors():
    with pytest.raises(ValueError, match="no benchmarks"):
        DecontaminationConfig(enabled=True)
    with pytest.raises(ValueError, match="threshold"):
        DecontaminationConfig(enabled=False, threshold=0.0)
    with pytest.raises(FileNotFoundError, match="VerilogEval checkout"):
        load_verilog_eval("/nonexistent/ve")


@pytest.mark.skipif(not os.path.isdir(SHARED_BENCH), reason=f"needs the benchmark checkouts in {SHARED_BENCH}")
def test_against_real_benchmarks_no_false_alarm_and_every_copy_caught():
    """Validation on VerilogEval v2 and RTLLM v1.1 (read in place): every benchmark reference, renamed
    to the name a model would use, is caught; RTLLM designs are not flagged as VerilogEval copies."""
    ve = load_verilog_eval(f"{SHARED_BENCH}/verilog-eval-v2")
    rtllm = load_rtllm(f"{SHARED_BENCH}/rtllm/v1.1")
    assert len(ve) >= 150 and len(rtllm) >= 29
    decon = Decontaminator(DecontaminationConfig(benchmarks=[BenchmarkConfig("verilog-eval", "x")]), problems=ve)
    caught = sum(1 for p in ve if decon.check_code(p.reference.replace("RefModule", "TopModule")))
    assert caught == len(ve)
    false_alarms = [p.name for p in rtllm if decon.check_code(p.reference)]
    assert false_alarms == []
    fixture_modules = [open(p).read() for p in glob.glob(f"{CORPUS}/*.v") if "gray" not in p]
    assert all(decon.check_code(code) is None for code in fixture_modules)
