"""``verirl eval`` on a completions file, --check-references, known-broken handling, and ``verirl eval compare``."""

from __future__ import annotations

import json

import pytest

from verirl.cli import main as verirl_main

AND_OK = "[BEGIN]\nmodule TopModule(input a, input b, output out);\n  assign out = a & b;\nendmodule\n[DONE]"
AND_BAD = "[BEGIN]\nmodule TopModule(input a, input b, output out);\n  assign out = a | b;\nendmodule\n[DONE]"
CNT_OK = ("```verilog\nmodule TopModule(input clk, input reset, output reg [3:0] q);\n"
          "  always @(posedge clk) q <= reset ? 4'd0 : q + 4'd1;\nendmodule\n```")


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _run(ve_dir, completions, out, *extra):
    return verirl_main(["eval", "--benchmark", "verilog-eval-v2", "--bench-dir", ve_dir, "--completions",
                        completions, "--k", "1,2", "--out", str(out), "--workers", "2", *extra])


def test_completions_run_summary_and_compare(eda, ve_dir, tmp_path, capsys):
    a = _write(tmp_path / "a.jsonl", [
        {"task_id": "Prob001_and2", "completion": AND_OK}, {"task_id": "Prob001_and2", "completion": AND_BAD},
        {"task_id": "Prob002_count4", "completion": CNT_OK}, {"task_id": "Prob002_count4", "completion": CNT_OK},
        {"task_id": "Prob003_slowtb", "completion": AND_OK}, {"task_id": "Prob003_slowtb", "completion": AND_OK}])
    assert _run(ve_dir, a, tmp_path / "A") == 0
    s = json.loads((tmp_path / "A" / "summary.json").read_text())
    # Prob001: 1/2, Prob002: 2/2, Prob003 (reference fails its own testbench): 0/2 and listed as known-broken
    assert s["pass_at_k"]["1"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert s["pass_at_k"]["2"] == pytest.approx((1 + 1 + 0) / 3)
    assert s["pass_at_k_excluding_known_broken"]["1"] == pytest.approx(0.75)
    assert list(s["known_broken_results"]) == ["Prob003_slowtb"] and s["n"] == 2
    assert s["per_problem"]["Prob001_and2"]["results"] == ".R"
    assert s["failure_classes"] == {"runtime_mismatch": 1, "broken_reference": 2}
    assert "Known-broken problems" in (tmp_path / "A" / "report.md").read_text()
    # how the numbers were made, in summary.json and the report
    assert s["extraction"]["rule"] == "official" and s["analysis"]["name"] == "official"
    assert s["simulator"].startswith("Icarus Verilog") and s["unscorable_samples"] == 0
    assert s["known_broken_detection"].startswith("each problem's reference simulated")
    assert "sampling settings not recorded" in s["comparable_to"]["deviations"]["official"]
    assert s["comparable_to"]["line"] in (tmp_path / "A" / "report.md").read_text()

    assert _run(ve_dir, a, tmp_path / "A2", "--exclude-broken", "--no-plots") == 0
    s2 = json.loads((tmp_path / "A2" / "summary.json").read_text())
    assert s2["pass_at_k"]["1"] == pytest.approx(0.75) and s2["problems"] == 2 and s2["excluded_known_broken"]

    b = _write(tmp_path / "b.jsonl", [
        {"task_id": "Prob001_and2", "completion": AND_BAD}, {"task_id": "Prob001_and2", "completion": AND_BAD},
        {"task_id": "Prob002_count4", "completion": CNT_OK}, {"task_id": "Prob002_count4", "completion": AND_BAD}])
    assert _run(ve_dir, b, tmp_path / "B", "--no-plots") == 0
    capsys.readouterr()
    assert verirl_main(["eval", "compare", str(tmp_path / "A"), str(tmp_path / "B"),
                        "--out", str(tmp_path / "cmp.md")]) == 0
    text = capsys.readouterr().out
    assert "Solved only by A (1): Prob001_and2" in text and "| Prob002_count4 | 2/2 | 1/2 |" in text
    assert json.loads((tmp_path / "cmp.json").read_text())["only_a"] == ["Prob001_and2"]


def test_n_smaller_than_k_with_completions(eda, ve_dir, tmp_path, capsys):
    c = _write(tmp_path / "c.jsonl", [{"task_id": "Prob001_and2", "completion": AND_OK}])
    assert _run(ve_dir, c, tmp_path / "C") == 2
    assert "pass@2 is undefined with n=1" in capsys.readouterr().err


def test_bad_inputs_are_reported_before_scoring(ve_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task_id": "Prob001_and2", "completion": "x"}) + "\n{oops\n")
    assert _run(ve_dir, str(bad), tmp_path / "D") == 2
    assert "bad.jsonl:2: not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "D" / "results.jsonl").exists()
    assert _run(str(tmp_path / "missing"), str(bad), tmp_path / "E") == 2
    assert "does not exist" in capsys.readouterr().err
    assert verirl_main(["eval", "--benchmark", "rtllm", "--bench-dir", ve_dir, "--check-references",
                        "--out", str(tmp_path / "F")]) == 2
    assert "holds no RTLLM design folder" in capsys.readouterr().err
    assert verirl_main(["eval", "compare", str(tmp_path / "x"), str(tmp_path / "y")]) == 2


def test_check_references(eda, rtllm_nested, tmp_path, capsys):
    assert verirl_main(["eval", "--benchmark", "rtllm", "--bench-dir", rtllm_nested, "--check-references",
                        "--out", str(tmp_path / "R"), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "references failing their own testbench (0): none" in out and "pass@1 = 100.00%" in out
    assert "Comparable to: not applicable (the benchmark's reference designs)." in out


def test_ppa_against_the_reference(eda, ve_dir, tmp_path):
    c = _write(tmp_path / "p.jsonl", [{"task_id": "Prob001_and2", "completion": AND_OK},
                                      {"task_id": "Prob001_and2", "completion": AND_BAD},
                                      {"task_id": "Prob002_count4", "completion": CNT_OK}])
    assert verirl_main(["eval", "--benchmark", "verilog-eval-v2", "--bench-dir", ve_dir, "--completions", c,
                        "--k", "1", "--out", str(tmp_path / "P"), "--ppa",
                        "--problems", "Prob001_and2,Prob002_count4"]) == 0
    ppa = json.loads((tmp_path / "P" / "summary.json").read_text())["ppa"]
    assert ppa["compared"] == 2                                  # passing samples only
    for metric in ("area", "depth", "cells"):
        assert sum(ppa[metric].values()) == 2
    point = next(p for p in ppa["points"] if p["task_id"] == "Prob002_count4")
    assert point["cells_candidate"] > 0 and point["area_reference"] > 0
    assert (tmp_path / "P" / "ppa.png").stat().st_size > 0
    assert "PPA against the reference" in (tmp_path / "P" / "report.md").read_text()


def test_rule_and_analysis_flags_are_checked_and_recorded(eda, ve_dir, rtllm_flat, tmp_path, capsys):
    prose = "Here it is:\n" + AND_OK.removeprefix("[BEGIN]\n").removesuffix("[DONE]") + "That is all."
    c = _write(tmp_path / "c.jsonl", [{"task_id": "Prob001_and2", "completion": prose}])
    assert _run(ve_dir, c, tmp_path / "X", "--k", "1", "--no-plots") == 0
    assert json.loads((tmp_path / "X" / "summary.json").read_text())["pass_at_k"]["1"] == 1.0  # official: passes
    assert _run(ve_dir, c, tmp_path / "X2", "--k", "1", "--extraction", "first-block", "--analysis", "engine",
                "--no-plots") == 0
    s = json.loads((tmp_path / "X2" / "summary.json").read_text())
    assert (s["extraction"]["rule"], s["analysis"]["name"]) == ("first-block", "engine")
    assert s["pass_at_k"]["1"] == 0.0          # no fence: first-block takes the whole reply, prose included
    from verirl.eval.compare import compare_runs

    assert compare_runs(str(tmp_path / "X"), str(tmp_path / "X2")).notes == [
        "extraction rules differ: official vs first-block", "verdicts differ: official vs engine"]
    capsys.readouterr()
    rt = _write(tmp_path / "r.jsonl", [{"task_id": "adder4", "completion": "x"}])
    for extra, message in ((["--extraction", "official"], "rtllm has no official extraction"),
                           (["--analysis", "official"], "use --analysis engine"),
                           (["--exclude-broken", "--no-reference-check"], "--exclude-broken needs the reference"),
                           (["--max-unscorable", "2"], "--max-unscorable is a fraction")):
        assert verirl_main(["eval", "--benchmark", "rtllm", "--bench-dir", rtllm_flat, "--completions", rt,
                            "--k", "1", "--out", str(tmp_path / "Y"), *extra]) == 2
        assert message in capsys.readouterr().err


def test_a_samples_file_says_how_it_was_sampled(eda, ve_dir, tmp_path):
    meta = {"sampling": {"n": 1, "temperature": 0.0, "top_p": 0.01, "max_tokens": 1024, "seed": None},
            "prompt": {"style": "chat", "shots": 0, "rules": False, "explain": False}, "model": "m",
            "revision": None, "backend": "openai", "prompt_style": "chat"}
    c = _write(tmp_path / "samples.jsonl", [{"task_id": t, "sample_index": 0, "completion": AND_OK,
                                             "finish_reason": "stop", **meta} for t in ("Prob001_and2",)])
    assert _run(ve_dir, c, tmp_path / "G", "--k", "1", "--no-plots") == 0
    s = json.loads((tmp_path / "G" / "summary.json").read_text())
    assert s["sampling"] == meta["sampling"] and s["model"]["name"] == "m"
    devs = s["comparable_to"]["deviations"]["official"]
    assert not any("sampling" in d or "prompt" in d or "tokens" in d for d in devs), devs


def test_greedy_is_the_official_greedy_setting(tiny_model, ve_dir, tmp_path, capsys):
    from verirl.eval.cli import sampling_settings

    argv = ["eval", "--benchmark", "verilog-eval-v2", "--bench-dir", ve_dir, "--model", tiny_model, "--backend",
            "hf", "--greedy", "--temperature", "0.5", "--out", str(tmp_path / "g")]
    assert verirl_main(argv) == 2
    assert "drop --temperature 0.5 or --greedy" in capsys.readouterr().err
    import argparse

    args = argparse.Namespace(n=None, temperature=None, top_p=None, greedy=True, max_tokens=16384, seed=None)
    assert (sampling_settings(args).n, sampling_settings(args).temperature, sampling_settings(args).top_p) == \
        (1, 0.0, 0.01)
    args.greedy = False
    assert (sampling_settings(args).n, sampling_settings(args).temperature, sampling_settings(args).top_p) == \
        (20, 0.85, 0.95)


def test_too_many_unscorable_samples_refuse_the_run(ve_dir, tmp_path, monkeypatch, capsys):
    from verirl.eval import scoring

    def fake_score(benchmark, samples, pool, **kwargs):
        return [{"task_id": s.task_id, "sample_index": s.sample_index, "passed": None, "failure": "unscorable",
                 "reason": "yosys: not found", "engine_failure": "infrastructure"} if s.sample_index == 0 else
                {"task_id": s.task_id, "sample_index": s.sample_index, "passed": True, "failure": None}
                for s in samples]

    monkeypatch.setattr(scoring, "score_samples", fake_score)
    c = _write(tmp_path / "u.jsonl", [{"task_id": "Prob001_and2", "completion": AND_OK}] * 4)
    assert _run(ve_dir, c, tmp_path / "U", "--k", "1", "--no-plots") == 4
    err = capsys.readouterr().err
    assert "refused: 1 of 4 samples (25.0%) could not be scored" in err and "1x yosys: not found" in err
    assert not (tmp_path / "U" / "summary.json").exists()
    assert _run(ve_dir, c, tmp_path / "U", "--k", "1", "--no-plots", "--max-unscorable", "0.3") == 0
    s = json.loads((tmp_path / "U" / "summary.json").read_text())
    assert s["pass_at_k"]["1"] == 0.75 and s["unscorable_samples"] == 1
