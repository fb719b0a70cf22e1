"""Benchmark loaders (original layouts), prompts as each harness sends them, reply post-processing, bad input."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from verirl.eval.benchmarks import BenchmarkError, load_benchmark, rename_root_module
from verirl.eval.prompts import NO_EXPLAIN_SUFFIX, VERILOG_EVAL_SYSTEM, PromptSettings, build_prompt
from verirl.eval.scoring import load_completions


def test_verilog_eval_layout(ve_dir):
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    assert list(bench.problems) == ["Prob001_and2", "Prob002_count4", "Prob003_slowtb"]
    p = bench.problems["Prob001_and2"]
    assert (p.top, p.harness, p.tb_top) == ("TopModule", "verilog-eval", "tb")
    assert "module RefModule" in p.reference and "Mismatches" in p.testbench and p.interface is None
    assert bench.commit == "ab" * 20
    cc = load_benchmark("verilog-eval-v2", os.path.join(ve_dir, "dataset_code-complete-iccad2023"), "code-complete")
    assert cc.root == ve_dir and cc.problems["Prob001_and2"].interface.startswith("module TopModule")


def test_rtllm_nested_layout_with_spaces(rtllm_nested, rtllm_flat):
    nested = load_benchmark("rtllm", rtllm_nested)
    flat = load_benchmark("rtllm", rtllm_flat)
    assert (nested.version, flat.version) == ("v2.0", "v1.1")
    for bench in (nested, flat):
        p = bench.get("adder4")
        assert p.top == "adder4" and p.harness == "rtllm"
        assert list(p.files) == ["vectors.txt"]                       # the makefile is not a data file
        assert "module adder4" in p.reference and "module verified_adder4" not in p.reference
        assert "module fa" in p.reference                              # submodules keep their names
    assert nested.problems["adder4"].metadata["subcategory"] == "Adder Units"


def test_reference_root_renaming():
    src = "module child(input x); endmodule\nmodule verified_top(input x);\n  child c(.x(x));\nendmodule : verified_top\n"
    out = rename_root_module(src, "top")
    assert "module top(" in out and "endmodule : top" in out and "module child" in out
    with pytest.raises(BenchmarkError, match="one top-level module"):
        rename_root_module("module a; endmodule\nmodule b; endmodule\n", "top")


def test_bad_benchmark_folders(tmp_path, ve_dir, rtllm_nested):
    with pytest.raises(BenchmarkError, match="does not exist"):
        load_benchmark("verilog-eval-v2", str(tmp_path / "nope"))
    with pytest.raises(BenchmarkError, match="not a VerilogEval v2 folder"):
        load_benchmark("verilog-eval-v2", rtllm_nested)
    with pytest.raises(BenchmarkError, match="use --benchmark verilog-eval-v2"):
        load_benchmark("rtllm", ve_dir)
    broken = tmp_path / "ve"
    shutil.copytree(ve_dir, broken)
    os.remove(broken / "dataset_spec-to-rtl" / "Prob002_count4_test.sv")
    with pytest.raises(BenchmarkError, match=r"Prob002_count4_test.sv is missing"):
        load_benchmark("verilog-eval-v2", str(broken))
    with pytest.raises(BenchmarkError, match="only applies to"):
        load_benchmark("rtllm", rtllm_nested, "code-complete")


def test_unknown_task_id_suggests_close_names(ve_dir):
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    with pytest.raises(BenchmarkError, match=r"unknown task_id 'Prob001_and'.*did you mean Prob001_and2"):
        bench.get("Prob001_and")


def test_completions_file_errors_name_the_line(tmp_path, ve_dir):
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    path = tmp_path / "c.jsonl"
    good = json.dumps({"task_id": "Prob001_and2", "completion": "x"})
    path.write_text(good + "\n{not json\n")
    with pytest.raises(BenchmarkError, match=r"c.jsonl:2: not valid JSON"):
        load_completions(str(path), bench)
    path.write_text(good + "\n" + json.dumps({"task_id": "Prob999_x", "completion": "y"}) + "\n")
    with pytest.raises(BenchmarkError, match=r"c.jsonl:2: unknown task_id 'Prob999_x'"):
        load_completions(str(path), bench)
    path.write_text(json.dumps({"task_id": "Prob001_and2"}) + "\n")
    with pytest.raises(BenchmarkError, match=r"c.jsonl:1: row has no string 'completion'"):
        load_completions(str(path), bench)
    path.write_text(good + "\n" + good + "\n" + json.dumps({"task_id": "Prob001_and2", "completion": "z",
                                                            "sample_index": 1}) + "\n")
    with pytest.raises(BenchmarkError, match=r"c.jsonl:3: sample 1 of Prob001_and2 already appeared on line 2"):
        load_completions(str(path), bench)


def test_task_file_benchmark(tmp_path):
    path = tmp_path / "tasks.jsonl"
    rows = [{"id": "t1", "prompt": [{"role": "user", "content": "write an and gate"}], "top": "and2",
             "reference": "module and2(input a, b, output y); assign y = a & b; endmodule"},
            {"id": "t2", "prompt": "write an or gate", "top": "or2"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    bench = load_benchmark("tasks", str(path))
    assert list(bench.problems) == ["t1", "t2"] and bench.problems["t1"].harness == "verirl"
    prompt = build_prompt(bench, bench.problems["t1"], PromptSettings())
    assert prompt.chat() == [{"role": "user", "content": "write an and gate"}]
    path.write_text(json.dumps({"id": "t1", "top": "x"}) + "\n")
    with pytest.raises(BenchmarkError, match=r"tasks.jsonl:1: task has no 'prompt'"):
        load_benchmark("tasks", str(path))


# ---------------------------------------------------------------------------------------------- prompts


def test_spec_to_rtl_prompt_is_verilog_eval_s(ve_dir):
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    p = bench.problems["Prob001_and2"]
    prompt = build_prompt(bench, p, PromptSettings())
    (role_s, system), (role_u, user) = prompt.messages
    assert (role_s, role_u) == ("system", "user") and system == VERILOG_EVAL_SYSTEM["spec-to-rtl"]
    assert user == "\nQuestion:\n" + p.description.strip() + "\n" + NO_EXPLAIN_SUFFIX + "\nAnswer:\n"
    shot = build_prompt(bench, p, PromptSettings(shots=1, rules=True))
    with open(os.path.join(ve_dir, "icl-examples", "verilog-example-prefix_spec-to-rtl_1-shot.txt")) as fh:
        icl = fh.read()
    assert shot.messages[1][1].startswith(icl + "\nQuestion:\n")
    assert "Here are some additional rules" in shot.messages[1][1]
    explained = build_prompt(bench, p, PromptSettings(explain=True)).messages[1][1]
    assert "[BEGIN]" not in explained and explained.endswith("\nAnswer:\n")
    assert prompt.text() == system + "\n" + user
    with pytest.raises(BenchmarkError, match="in-context example"):
        build_prompt(bench, p, PromptSettings(shots=3))
    with pytest.raises(ValueError, match="between 0 and 4"):
        PromptSettings(shots=5)


def test_code_complete_prompt_comments_the_description(ve_dir):
    bench = load_benchmark("verilog-eval-v2", ve_dir, "code-complete")
    user = build_prompt(bench, bench.problems["Prob001_and2"], PromptSettings()).messages[1][1]
    lines = user.splitlines()
    header = lines.index("module TopModule (")
    assert lines[1].startswith("// Implement the Verilog module")
    assert all(line.startswith("// ") for line in lines[2:header - 1]) and lines[header - 1] == ""


def test_rtllm_prompt_is_the_description(rtllm_flat):
    bench = load_benchmark("rtllm", rtllm_flat)
    prompt = build_prompt(bench, bench.problems["adder4"], PromptSettings(style="completion"))
    assert prompt.text() == bench.problems["adder4"].description
    with pytest.raises(BenchmarkError, match="VerilogEval only"):
        build_prompt(bench, bench.problems["adder4"], PromptSettings(shots=1))
