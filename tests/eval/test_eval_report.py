"""summary.json and report.md say how the numbers were made: unscorable samples as failures (or the run refused),
the extraction rule, verdict, sampling, simulator, divisor, truncation, and a citable "comparable to" line."""

from __future__ import annotations

import pytest

from verirl.eval import report
from verirl.eval.benchmarks import load_benchmark
from verirl.eval.generate import OFFICIAL_GREEDY, OFFICIAL_SAMPLED, SamplingSettings
from verirl.eval.report import RunRefused, check_unscorable, render_markdown, summarize

ICARUS = {"11": "Icarus Verilog version 11.0 (stable) ()", "12": "Icarus Verilog version 12.0 (stable) ()"}
SIMULATOR = {major: version.removesuffix(" ()") for major, version in ICARUS.items()}  # as the summary names it
CHAT = {"style": "chat", "shots": 0, "rules": False, "explain": False}


def row(task, index, passed, failure=None, finish_reason="stop", tokens=200):
    return {"task_id": task, "sample_index": index, "passed": passed, "failure": failure,
            "finish_reason": finish_reason, "completion_tokens": tokens}


@pytest.fixture
def simulator(monkeypatch):
    def use(major: str):
        monkeypatch.setattr(report, "_tool_versions", lambda: {"iverilog": ICARUS[major], "yosys": "Yosys 0.23"})
    use("11")
    return use


@pytest.fixture(scope="module")
def ve(ve_dir):
    """The fixture benchmark without Prob003 (these tests sample two problems: a whole-benchmark run; a run on part
    of a benchmark is a deviation of its own, see tests/eval/test_eval_inputs.py)."""
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    bench.problems.pop("Prob003_slowtb")
    return bench


def sampled_rows(n=20, passing=(7, 20)):
    """Prob001: 7/20, Prob002: 20/20."""
    rows = []
    for task, c in zip(("Prob001_and2", "Prob002_count4"), passing):
        rows += [row(task, i, i < c, None if i < c else "runtime_mismatch") for i in range(n)]
    return rows


def test_unscorable_samples_count_as_failures(ve, simulator):
    rows = [row("Prob001_and2", 0, True), row("Prob001_and2", 1, None, "unscorable"),
            row("Prob002_count4", 0, True), row("Prob002_count4", 1, True)]
    s = summarize(ve, rows, [1, 2])
    assert s["pass_at_k"]["1"] == pytest.approx((0.5 + 1.0) / 2)       # 1 of 2 for Prob001, not 1 of 1
    assert s["n"] == 2 and s["unscorable_samples"] == 1 and "counted as failures" in s["unscorable_policy"]
    assert s["per_problem"]["Prob001_and2"] == {"n": 2, "c": 1, "unscorable": 1, "results": ".?",
                                                "failures": {"unscorable": 1}}
    check_unscorable(s, rows, 0.5)                                      # 1 of 4 is within 50%
    with pytest.raises(RunRefused, match=r"1 of 4 samples \(25.0%\) could not be scored.*--max-unscorable 0.01"):
        check_unscorable(s, [{**r, "reason": "iverilog crashed"} if r["failure"] else r for r in rows], 0.01)


def test_official_defaults_are_comparable_to_the_official_flow(ve, simulator):
    simulator("12")
    sampling = SamplingSettings().record()
    assert {k: sampling[k] for k in OFFICIAL_SAMPLED} == OFFICIAL_SAMPLED
    s = summarize(ve, sampled_rows(), [1, 5], sampling=sampling, prompt=CHAT)
    assert s["comparable_to"]["line"] == ("Comparable to: official VerilogEval v2 flow (NVlabs/verilog-eval "
                                          "sv-generate + sv-iv-analyze).")
    assert s["extraction"]["rule"] == "official" and s["analysis"]["name"] == "official"
    assert s["simulator"] == SIMULATOR["12"] == "Icarus Verilog version 12.0 (stable)" and s["pass_at_k_divisor"].startswith("problems")
    # sv-iv-analyze's own number, the mean of int(100 * c / n): equal to pass@1 for n = 20
    assert s["official_pass_rate"] == pytest.approx((35 + 100) / 200) == pytest.approx(s["pass_at_k"]["1"])
    thirds = summarize(ve, [row("Prob001_and2", i, i == 0, None if i == 0 else "runtime_mismatch")
                            for i in range(3)], [1])
    assert thirds["official_pass_rate"] == 0.33 and thirds["pass_at_k"]["1"] == pytest.approx(1 / 3)
    greedy = summarize(ve, sampled_rows(n=1, passing=(0, 1)), [1],
                       sampling=SamplingSettings(**OFFICIAL_GREEDY).record(), prompt=CHAT)
    assert greedy["comparable_to"]["deviations"]["official"] == []


def test_deviations_are_named(ve, simulator):
    sampling = SamplingSettings(temperature=0.8).record()
    s = summarize(ve, sampled_rows(), [1], sampling=sampling, prompt={**CHAT, "style": "completion"},
                  extraction="first-block", analysis="engine")
    devs = s["comparable_to"]["deviations"]["official"]
    assert "extraction first-block (official: sv-generate)" in devs
    assert any(d.startswith("verdict by the engine alone") for d in devs)
    assert any("temperature 0.8" in d for d in devs) and "plain-text prompt (official: chat messages)" in devs
    assert any(d.startswith("simulator Icarus Verilog version 11.0") for d in devs)
    assert s["comparable_to"]["line"].startswith("Comparable to: ")
    text = render_markdown(s)
    for needle in ("Extraction rule: `first-block`", "Verdict: `engine`", "temperature 0.8, top-p 0.95",
                   "Simulator: Icarus Verilog version 11.0", "pass@k divided by: problems", "Comparable to:",
                   "Differences from the official VerilogEval v2 flow"):
        assert needle in text, needle


def test_max_tokens_is_a_deviation_only_when_it_can_change_a_verdict(ve, simulator):
    simulator("12")
    sampling = SamplingSettings().record()                               # 16384 where the official flow has 1024
    short = summarize(ve, sampled_rows(), [1], sampling=sampling, prompt=CHAT)
    assert short["comparable_to"]["deviations"]["official"] == []       # every completion is 200 tokens
    long_rows = sampled_rows()
    long_rows[0]["completion_tokens"] = 5000
    devs = summarize(ve, long_rows, [1], sampling=sampling, prompt=CHAT)["comparable_to"]["deviations"]["official"]
    assert devs == ["1 completions are longer than the flow's 1024-token limit (max tokens here 16384)"]
    unknown = [{**r, "completion_tokens": None} for r in sampled_rows()]
    devs = summarize(ve, unknown, [1], sampling=sampling, prompt=CHAT)["comparable_to"]["deviations"]["official"]
    assert devs == ["max tokens 16384 (the flow cuts at 1024; completion lengths not recorded)"]
    cut = sampled_rows()
    cut[3]["finish_reason"] = "length"
    s = summarize(ve, cut, [1], sampling=SamplingSettings(max_tokens=512).record(), prompt=CHAT)
    assert s["completion_lengths"]["truncated"] == 1
    assert "**1 completions were cut at max tokens**" in render_markdown(s)


def test_codev_r1_settings_are_recognised(ve, simulator):
    sampling = SamplingSettings(temperature=1.0).record()
    s = summarize(ve, sampled_rows(), [1], sampling=sampling, prompt=CHAT, extraction="last-answer-block")
    assert s["comparable_to"]["deviations"]["codev"] == []
    assert s["comparable_to"]["line"] == ("Comparable to: CodeV-R1 eval (IPRC-DIP/CodeV-R1 "
                                          "test/benchmark_runner.sh).")


def test_rtllm_divisor_is_stated_and_the_scripts_number_given(rtllm_flat, simulator):
    bench = load_benchmark("rtllm", rtllm_flat)
    s = summarize(bench, [row("adder4", 0, True), row("adder4", 1, False, "runtime_mismatch")], [1],
                  sampling=SamplingSettings(n=2, temperature=1.0).record(), prompt=CHAT,
                  extraction="last-answer-block")
    assert s["pass_at_k"]["1"] == 0.5 and s["pass_at_k_rtllm_script"]["1"] == pytest.approx(0.25)  # 1 design + 1
    assert s["pass_at_k_divisor"].startswith("designs")
    assert s["comparable_to"]["deviations"]["codev"] == [
        "sampling n=2, temperature 1.0 (CodeV-R1: n=20, temperature 1.0)",
        "simulator Icarus Verilog version 11.0 (stable) (CodeV-R1 and RTLLM: Synopsys VCS)"]
    assert "as RTLLM's auto_run.py divides (designs + 1) | 25.00%" in render_markdown(s)


def test_exclude_broken_needs_the_reference_check(ve, simulator):
    from verirl.eval.passk import PassKError

    with pytest.raises(PassKError, match="needs the reference check"):
        summarize(ve, sampled_rows(), [1], exclude_broken=True, reference_check=False)
