"""`verirl eval` inputs and extras that must not change the answer: `--ppa` is an extra (a reference Yosys refuses is
reported per problem and leaves pass@k and the problem count alone); arguments that cannot succeed fail before
anything is scored; a run on part of a benchmark says so."""

from __future__ import annotations

import json
import logging
import os
import shutil

import pytest

from verirl.cli import main as verirl_main

from .conftest import VE_COUNTER_TB

AND_OK = "[BEGIN]\nmodule TopModule(input a, input b, output out);\n  assign out = a & b;\nendmodule\n[DONE]"
AND_BAD = "[BEGIN]\nmodule TopModule(input a, input b, output out);\n  assign out = a | b;\nendmodule\n[DONE]"

# A VerilogEval-style FSM whose reference leaves `next` unassigned outside the listed states: Icarus simulates it,
# Yosys refuses the always_comb ("Latch inferred"), as for six references of VerilogEval v2.
FSM_REF = """module RefModule (
  input clk,
  input reset,
  output reg [3:0] q
);
  parameter S0=0, S1=1, S2=2, S3=3, DONE=4;
  reg [2:0] state, next;
  always_comb begin
    case (state)
      S0: next = S1;
      S1: next = S2;
      S2: next = S3;
      S3: next = DONE;
      DONE: next = DONE;
    endcase
  end
  always @(posedge clk)
    if (reset) state <= S0;
    else state <= next;
  always @(*) q = {1'b0, state};
endmodule
"""
FSM_OK = """[BEGIN]
module TopModule(input clk, input reset, output reg [3:0] q);
  reg [2:0] state;
  always @(posedge clk)
    if (reset) state <= 3'd0;
    else if (state != 3'd4) state <= state + 3'd1;
  always @(*) q = {1'b0, state};
endmodule
[DONE]"""
FSM_BAD = FSM_OK.replace("state + 3'd1", "state + 3'd2")


@pytest.fixture(scope="module")
def ve_latch(ve_dir, tmp_path_factory):
    """The fixture checkout plus Prob004_fsmlatch, whose reference does not synthesize."""
    root = tmp_path_factory.mktemp("ve-latch")
    shutil.copytree(ve_dir, root, dirs_exist_ok=True)
    folder = root / "dataset_spec-to-rtl"
    (folder / "Prob004_fsmlatch_prompt.txt").write_text("Implement TopModule: a counter that stops at 4.\n")
    (folder / "Prob004_fsmlatch_ref.sv").write_text(FSM_REF)
    (folder / "Prob004_fsmlatch_test.sv").write_text(VE_COUNTER_TB)
    with open(folder / "problems.txt", "a") as fh:
        fh.write("Prob004_fsmlatch\n")
    return str(root)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _eval(bench, completions, out, *extra):
    return verirl_main(["eval", "--benchmark", "verilog-eval-v2", "--bench-dir", bench, "--completions",
                        completions, "--out", str(out), "--workers", "2", "--no-plots", *extra])


# -------------------------------------------------------------------------------------------------------- --ppa


def test_ppa_never_changes_pass_at_k_or_the_problem_count(eda, ve_latch, tmp_path, capsys):
    c = _write(tmp_path / "c.jsonl", [
        {"task_id": "Prob001_and2", "completion": AND_OK}, {"task_id": "Prob001_and2", "completion": AND_BAD},
        {"task_id": "Prob004_fsmlatch", "completion": FSM_OK}, {"task_id": "Prob004_fsmlatch", "completion": FSM_BAD}])
    problems = ["--problems", "Prob001_and2,Prob004_fsmlatch", "--k", "1,2"]
    assert _eval(ve_latch, c, tmp_path / "plain", *problems) == 0
    assert _eval(ve_latch, c, tmp_path / "ppa", *problems, "--ppa") == 0
    out = capsys.readouterr().out
    plain = json.loads((tmp_path / "plain" / "summary.json").read_text())
    ppa = json.loads((tmp_path / "ppa" / "summary.json").read_text())
    assert ppa["pass_at_k"] == plain["pass_at_k"] == {"1": 0.5, "2": 1.0}
    assert ppa["problems"] == plain["problems"] == 2 and ppa["per_problem"] == plain["per_problem"]
    assert ppa["unscorable_samples"] == 0
    assert plain["ppa"] is None
    assert list(ppa["ppa"]["reference_failures"]) == ["Prob004_fsmlatch"]
    assert "does not synthesize" in ppa["ppa"]["reference_failures"]["Prob004_fsmlatch"]
    assert "Latch" in ppa["ppa"]["reference_failures"]["Prob004_fsmlatch"]
    assert ppa["ppa"]["compared"] == 1                       # Prob001's passing sample
    report = (tmp_path / "ppa" / "report.md").read_text()
    assert "Prob004_fsmlatch" in report.split("## PPA against the reference")[1].split("## Per problem")[0]
    assert "the reference of 1 problems does not synthesize (Prob004_fsmlatch)" in out
    rows = [json.loads(line) for line in (tmp_path / "ppa" / "results.jsonl").read_text().splitlines()]
    fsm = [r for r in rows if r["task_id"] == "Prob004_fsmlatch"]
    assert [r["passed"] for r in fsm] == [True, False] and all(r["ppa"]["reference_failed"] for r in fsm)


def test_ppa_rerun_reuses_verdicts(eda, ve_latch, tmp_path, capsys):
    c = _write(tmp_path / "c.jsonl", [{"task_id": "Prob001_and2", "completion": AND_OK}])
    assert _eval(ve_latch, c, tmp_path / "r", "--problems", "Prob001_and2", "--k", "1") == 0
    capsys.readouterr()
    assert _eval(ve_latch, c, tmp_path / "r", "--problems", "Prob001_and2", "--k", "1", "--ppa") == 0
    assert "resuming: 1 of 1 samples already scored" in capsys.readouterr().err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["ppa"]["compared"] == 1 and summary["pass_at_k"] == {"1": 1.0}


# ------------------------------------------------------------------------------------------ fail before work


def test_k_larger_than_the_samples_fails_before_scoring(eda, ve_dir, tmp_path, capsys):
    c = _write(tmp_path / "c.jsonl", [{"task_id": "Prob001_and2", "completion": AND_OK}] * 2
               + [{"task_id": "Prob002_count4", "completion": AND_OK}] * 2)
    assert _eval(ve_dir, c, tmp_path / "k", "--k", "1,5,10") == 2
    err = capsys.readouterr().err
    assert "pass@5 is undefined with n=2" in err and "nothing was scored" in err and "drop k=5,10" in err
    assert not (tmp_path / "k" / "results.jsonl").exists()


def test_empty_completions_file_is_an_error_naming_it(ve_dir, tmp_path, capsys):
    c = tmp_path / "empty.jsonl"
    c.write_text("\n")
    assert _eval(ve_dir, str(c), tmp_path / "e", "--k", "1") == 2
    err = capsys.readouterr().err
    assert str(c) in err and "holds no rows" in err and err.count("\n") == 1


def test_empty_task_file_is_an_error_naming_it(tmp_path, capsys):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("")
    c = _write(tmp_path / "c.jsonl", [{"task_id": "t1", "completion": "x"}])
    assert verirl_main(["eval", "--benchmark", "tasks", "--bench-dir", str(tasks), "--completions", c, "--k", "1",
                        "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(tasks) in err and "no tasks" in err and "unknown task_id" not in err


def test_out_that_is_a_file_fails_before_work(ve_dir, tmp_path, capsys):
    c = _write(tmp_path / "c.jsonl", [{"task_id": "Prob001_and2", "completion": AND_OK}])
    (tmp_path / "taken").write_text("x")
    assert _eval(ve_dir, c, tmp_path / "taken", "--k", "1") == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is a file" in err and "Traceback" not in err


def test_out_in_a_missing_folder_is_created(eda, ve_dir, tmp_path):
    c = _write(tmp_path / "c.jsonl", [{"task_id": "Prob001_and2", "completion": AND_OK}])
    assert _eval(ve_dir, c, tmp_path / "a" / "b" / "c", "--k", "1", "--problems", "Prob001_and2") == 0
    assert (tmp_path / "a" / "b" / "c" / "summary.json").is_file()
    assert not list((tmp_path / "a" / "b" / "c").glob("*.tmp"))


def test_liberty_without_ppa_fails_before_work(ve_dir, tmp_path, capsys):
    c = _write(tmp_path / "c.jsonl", [{"task_id": "Prob001_and2", "completion": AND_OK}])
    assert _eval(ve_dir, c, tmp_path / "l", "--k", "1", "--liberty", "cells.lib") == 2
    assert "--liberty only applies with --ppa" in capsys.readouterr().err
    assert not (tmp_path / "l").exists()


# ------------------------------------------------------------------------------------------------- subsets


def test_limit_warns_only_about_the_selected_problems(eda, ve_dir, tmp_path, caplog, capsys):
    c = _write(tmp_path / "c.jsonl", [{"task_id": "Prob001_and2", "completion": AND_OK}])
    with caplog.at_level(logging.WARNING, logger="verirl.eval.report"):
        assert _eval(ve_dir, c, tmp_path / "lim", "--k", "1", "--limit", "2") == 0
    warnings = [r.getMessage() for r in caplog.records if "have no samples" in r.getMessage()]
    assert warnings == ["1 of 2 selected problems have no samples (Prob002_count4)"]
    summary = json.loads((tmp_path / "lim" / "summary.json").read_text())
    assert summary["problems_without_samples"] == ["Prob002_count4"]
    assert summary["problems_selected"] == 2 and summary["problems_in_benchmark"] == 3


def test_a_subset_is_marked_in_the_summary_and_the_report(eda, ve_dir, tmp_path, capsys):
    c = _write(tmp_path / "c.jsonl", [{"task_id": "Prob001_and2", "completion": AND_OK}])
    assert _eval(ve_dir, c, tmp_path / "sub", "--k", "1", "--problems", "Prob001_and2") == 0
    summary = json.loads((tmp_path / "sub" / "summary.json").read_text())
    assert "scored on 1 of the benchmark's 3 problems (a subset)" in summary["comparable_to"]["deviations"]["official"]
    assert "subset" in summary["comparable_to"]["line"]
    assert "A subset: 1 of the benchmark's 3 problems were scored" in (tmp_path / "sub" / "report.md").read_text()
    assert "subset" in capsys.readouterr().out


def test_whole_benchmark_run_is_not_called_a_subset(eda, ve_dir, tmp_path):
    c = _write(tmp_path / "c.jsonl", [{"task_id": t, "completion": AND_OK}
                                      for t in ("Prob001_and2", "Prob002_count4", "Prob003_slowtb")])
    assert _eval(ve_dir, c, tmp_path / "all", "--k", "1") == 0
    summary = json.loads((tmp_path / "all" / "summary.json").read_text())
    assert not any("subset" in d for d in summary["comparable_to"]["deviations"]["official"])
    assert "A subset" not in (tmp_path / "all" / "report.md").read_text()


def test_ppa_points_keep_their_plot(eda, ve_dir, tmp_path):
    c = _write(tmp_path / "c.jsonl", [{"task_id": "Prob001_and2", "completion": AND_OK}])
    assert verirl_main(["eval", "--benchmark", "verilog-eval-v2", "--bench-dir", ve_dir, "--completions", c,
                        "--k", "1", "--out", str(tmp_path / "p"), "--ppa", "--problems", "Prob001_and2"]) == 0
    assert os.path.getsize(tmp_path / "p" / "ppa.png") > 0
