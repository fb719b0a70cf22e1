"""Bad input to any subcommand: one clear message that names the input at fault, printed once, no traceback, a
non-zero status, and nothing started (the mistakes a new user makes in the first hour)."""

from __future__ import annotations

import json

import pytest

from .conftest import run_verirl

TASK = {"id": "add", "top": "top", "prompt": "an adder",
        "reference": "module top(input a, output y); assign y = a; endmodule\n",
        "testbench": "module tb; endmodule\n"}


def _write(path, text):
    path.write_text(text)
    return str(path)


def _assert_one_clear_error(proc, *fragments, stream="stderr"):
    text = getattr(proc, stream)
    assert proc.returncode not in (0, None), (proc.returncode, proc.stdout[-1000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in text, (fragment, text[-2000:])
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "[WARNING]" not in line]
    assert len(lines) == len(set(lines)), f"a line is printed twice:\n{proc.stderr}"
    first = next(line for line in text.splitlines() if fragments[0] in line)
    assert text.count(first) == 1, f"the error is printed {text.count(first)} times:\n{text}"


def test_score_names_the_missing_tasks_file(tmp_path):
    proc = run_verirl(["score", "--tasks", "nope.jsonl", "--completions", "c.jsonl", "--out", "o.jsonl"],
                      cwd=tmp_path)
    _assert_one_clear_error(proc, "nope.jsonl")
    assert not (tmp_path / "o.jsonl").exists()


def test_score_blames_an_empty_tasks_file_not_the_completions(tmp_path):
    _write(tmp_path / "tasks.jsonl", "\n")
    _write(tmp_path / "c.jsonl", json.dumps({"task_id": "add", "completion": "x"}) + "\n")
    proc = run_verirl(["score", "--tasks", "tasks.jsonl", "--completions", "c.jsonl", "--out", "o.jsonl"],
                      cwd=tmp_path)
    _assert_one_clear_error(proc, "tasks.jsonl", "no tasks")
    assert "unknown task_id" not in proc.stderr


def test_score_refuses_an_empty_completions_file(tmp_path):
    _write(tmp_path / "tasks.jsonl", json.dumps(TASK) + "\n")
    _write(tmp_path / "c.jsonl", "")
    proc = run_verirl(["score", "--tasks", "tasks.jsonl", "--completions", "c.jsonl", "--out", "o.jsonl"],
                      cwd=tmp_path)
    _assert_one_clear_error(proc, "c.jsonl", "no completions")
    assert not (tmp_path / "o.jsonl").exists()


def test_score_refuses_an_output_in_a_missing_folder_before_scoring(tmp_path):
    _write(tmp_path / "tasks.jsonl", json.dumps(TASK) + "\n")
    _write(tmp_path / "c.jsonl", json.dumps({"task_id": "add", "completion": "x"}) + "\n")
    proc = run_verirl(["score", "--tasks", "tasks.jsonl", "--completions", "c.jsonl", "--out", "no/such/o.jsonl"],
                      cwd=tmp_path)
    _assert_one_clear_error(proc, "--out", "no/such")
    assert ".tmp" not in proc.stderr


def test_equiv_names_the_unreadable_design(tmp_path):
    _write(tmp_path / "g.v", TASK["reference"])
    proc = run_verirl(["equiv", "--golden", "g.v", "--candidate", "nope.v"], cwd=tmp_path)
    _assert_one_clear_error(proc, "--candidate nope.v", stream="stdout")  # equiv answers in JSON on stdout


def test_data_build_names_the_missing_recipe(tmp_path):
    _assert_one_clear_error(run_verirl(["data", "build", "--config", "nope.yaml"], cwd=tmp_path), "nope.yaml")


def test_data_build_names_a_recipe_that_is_not_yaml(tmp_path):
    _write(tmp_path / "bad.yaml", "sources: [1,\n")
    _assert_one_clear_error(run_verirl(["data", "build", "--config", "bad.yaml"], cwd=tmp_path), "bad.yaml")


def test_train_names_the_missing_recipe(tmp_path):
    _assert_one_clear_error(run_verirl(["train", "--config", "nope.yaml"], cwd=tmp_path), "nope.yaml")


@pytest.mark.parametrize("typo", [["--learning_rat", "1e-4"], ["learning_rat=1e-4"], ["--learning_rat=1e-4"]])
def test_train_blames_a_mistyped_override_not_the_recipe_file(tmp_path, typo):
    from .conftest import ROOT

    proc = run_verirl(["train", "--config", f"{ROOT}/recipes/tiny/sft.yaml", *typo, "--check"], cwd=tmp_path)
    _assert_one_clear_error(proc, "learning_rat", "did you mean `learning_rate`")
    line = next(line for line in proc.stderr.splitlines() if "learning_rat" in line)
    assert "override" in line, line


def test_models_tiny_refuses_a_file_as_its_folder(tmp_path):
    _write(tmp_path / "runs", "not a folder")
    _assert_one_clear_error(run_verirl(["models", "tiny", "--out", "runs"], cwd=tmp_path), "--out runs")


def test_eval_names_the_missing_benchmark_folder(tmp_path):
    _write(tmp_path / "c.jsonl", "")
    proc = run_verirl(["eval", "--benchmark", "verilog-eval-v2", "--bench-dir", "nope", "--completions", "c.jsonl",
                       "--out", "ev"], cwd=tmp_path)
    _assert_one_clear_error(proc, "nope")


def test_push_names_the_missing_model_folder(tmp_path):
    proc = run_verirl(["push", "--model-dir", "nope", "--repo-id", "a/b", "--dry-run"], cwd=tmp_path)
    _assert_one_clear_error(proc, "--model-dir nope")


def test_quickstart_names_the_bad_setting(tmp_path):
    _assert_one_clear_error(run_verirl(["quickstart", "--max-level", "9", "--out", "qs"], cwd=tmp_path),
                            "--max-level")
    assert not (tmp_path / "qs").exists()
