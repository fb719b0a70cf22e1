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
