"""Completion → code extraction, and the candidate sanitizer (pure Python, no tools)."""

from __future__ import annotations

import pytest

from rewards.extract import extract_verilog
from rewards.lexer import module_names, split_modules
from rewards.sanitize import Forbidden, header, rename_modules, sanitize_candidate

MOD = "module top(input a, output y);\n  assign y = a;\nendmodule\n"


@pytest.mark.parametrize("text,style,score", [
    (f"```verilog\n{MOD}```", "fence", 1.0),
    (f"```systemverilog\n{MOD}```", "fence", 1.0),
    (f"Sure:\n```\n{MOD}```\nDone.", "fence", 1.0),
    (f"[BEGIN]\n{MOD}[DONE]", "begin_done", 1.0),
    (f"Here you go: {MOD} hope it helps", "bare", 0.5),
    (f"<think>use an assign</think><answer>```verilog\n{MOD}```</answer>", "answer+fence", 1.0),
])
def test_extraction_styles(text, style, score):
    ex = extract_verilog(text)
    assert ex.style == style and ex.format_score == score
    assert module_names(ex.code) == ["top"]


@pytest.mark.parametrize("text,expected_start", [
    # prose naming "module" before the code is never the start of the code
    (f"Here is the module:\n{MOD}It follows the specification.", "module top("),
    (f"The module below implements it; the module is combinational.\n\n{MOD}", "module top("),
    (f"This module:\n`timescale 1ns/1ps\n{MOD}", "`timescale 1ns/1ps\nmodule top("),
    ("A module macromodule-style answer follows.\n  macromodule top(input a, output y);\n  assign y = a;\nendmodule\n",
     "macromodule top("),
    (f"Here is the module.\n(* keep_hierarchy *) {MOD}", "(* keep_hierarchy *) module top("),
    (f"module has no state, so here it is:\n{MOD}", "module top("),  # "module has" is prose: no header shape
    (f"Here you go: {MOD} hope it helps", "module top("),  # a header in mid-line is still found
])
def test_bare_code_starts_at_a_module_definition(text, expected_start):
    ex = extract_verilog(text)
    assert ex.style == "bare" and ex.code.lstrip().startswith(expected_start)
    assert module_names(ex.code) == ["top"]
    assert sanitize_candidate(ex.code, "top").code  # the extracted text is Verilog the sanitizer accepts


def test_prose_mentioning_module_and_endmodule_is_no_code():
    ex = extract_verilog("Write the module first, then close it with endmodule.")
    assert ex.code is None and ex.style == "none"


def test_code_inside_think_is_ignored():
    ex = extract_verilog(f"<think>```verilog\n{MOD}```</think> no answer")
    assert ex.code is None and ex.format_score == 0.0


def test_required_reasoning_halves_the_format_score():
    assert extract_verilog(f"```verilog\n{MOD}```", reasoning="required").format_score == 0.5
    assert extract_verilog(f"<think>x</think>```verilog\n{MOD}```", reasoning="required").format_score == 1.0


def test_chat_messages():
    ex = extract_verilog([{"role": "assistant", "content": f"```verilog\n{MOD}```"}])
    assert ex.code is not None


def test_revised_module_wins_and_submodules_are_kept():
    v1 = "module top(input a, output y); assign y = 0; endmodule"
    v2 = "module top(input a, output y); sub s(.a(a), .y(y)); endmodule"
    sub = "module sub(input a, output y); assign y = a; endmodule"
    ex = extract_verilog(f"```verilog\n{v1}\n```\n```verilog\n{sub}\n```\n```verilog\n{v2}\n```")
    assert sorted(module_names(ex.code)) == ["sub", "top"]
    assert "sub s(" in ex.code and "assign y = 0" not in ex.code


def test_split_modules():
    parts = split_modules("`timescale 1ns/1ps\nmodule a; endmodule\nmodule b; endmodule : b\n")
    assert [name for name, _ in parts] == ["a", "b"]
    assert parts[1][1].rstrip().endswith("endmodule : b")


def test_neutralise_keeps_control_flow_valid():
    code = "module top(input a, output reg y);\nalways @* if (a) $display(\"hi %d\", $time); else y = 0;\nendmodule\n"
    out = sanitize_candidate(code, "top")
    assert "$display" not in out.code.replace("/* $display removed by verirl */", "")
    assert "if (a) begin end" in out.code and "else y = 0" in out.code


def test_comments_are_not_calls_and_strings_with_a_dollar_are_refused():
    code = 'module top(output y); // $finish here is a comment\n  wire [63:0] s = "fin";\n  assign y = 0;\nendmodule\n'
    assert "$finish" not in sanitize_candidate(code, "top").code
    # every `$` of the canonical text must start an allowed name, inside a string too (context-free check)
    with pytest.raises(Forbidden, match=r"\$finish"):
        sanitize_candidate(code.replace('"fin"', '"$finish"'), "top")


@pytest.mark.parametrize("bad", ["$finish", "$stop", "$fopen(\"x\")", "$readmemh(\"x\", m)", "$system(\"ls\")",
                                 "$dumpvars", "$random", "$root.x", "$fatal", "$fwrite(1, \"x\")"])
def test_forbidden_system_tasks(bad):
    with pytest.raises(Forbidden):
        sanitize_candidate(f"module top; initial begin {bad}; end endmodule", "top")


def test_allowed_system_functions():
    code = "module top #(parameter N = 8)(input [N-1:0] a, output [$clog2(N):0] y);\n" \
           "assign y = $unsigned($signed(a)) + $bits(a);\nendmodule\n"
    out = sanitize_candidate(code, "top").code
    assert code in out and out.startswith(header("1ns/1ps")) and out.endswith("`resetall\n")


def test_rename_non_top_modules():
    code = "module helper(input a, output y); assign y = a; endmodule\n" \
           "module top(input a, output y); helper #(.W(1)) u(.a(a), .y(y)); helper u2(a, y); endmodule\n"
    out = sanitize_candidate(code, "top", prefix="p_")
    assert module_names(out.code) == ["p_helper", "top"]
    assert out.code.count("p_helper") == 3


def test_rename_does_not_touch_signals_named_like_modules():
    code = "module b(input a, output y); assign y = a; endmodule\n" \
           "module top(input a, b, output y); always @(a or b) ; assign y = a & b; endmodule\n"
    out = rename_modules(code, {"b": "x_b"})
    assert "module x_b(" in out and "@(a or b)" in out and "a & b" in out


def test_top_must_be_plain_identifier():
    with pytest.raises(ValueError):
        sanitize_candidate(MOD, "top; !rm -rf /")


def test_canonical_text_is_a_fixed_point():
    from rewards import sanitize

    src = "`define W 4\nmodule helper(input a, output b); assign b = a; endmodule\n" \
          "module top(input [`W-1:0] a, output y); helper h(.a(a[0]), .b(y)); endmodule\n"
    first = sanitize_candidate(src, "top", timescale="1ps/1ps")
    assert sanitize_candidate(first.code, "top") is first  # same process: the registry answers
    sanitize._REGISTRY.clear()  # as if made by another process: the body is processed again, in its own frame
    again = sanitize_candidate(first.code, "top", prefix="q_")
    assert again.code.startswith(header("1ps/1ps"))
    assert again.code.replace("q_verirl_", "verirl_") == first.code


@pytest.mark.parametrize("src", [
    "module h(input a); endmodule\nmodule top(input a); h u(.a(a)); endmodule\n",
    "module\\h (input a); endmodule\nmodule \\top (input a); \\h u(.a(a)); endmodule : top\n",
    "package pk; localparam X = 1; endpackage\nmodule top(input a); import pk::*; endmodule\n",
    "`define N h2\nmodule `N; endmodule\nmodule top; `N u(); endmodule\n",
])
def test_remembered_module_names_match_a_fresh_tokenization(src):
    from rewards import lexer

    code = sanitize_candidate(src, "top", prefix="p_").code
    fresh = [name.strip() for name, _ in lexer.definitions(lexer.tokenize(code))]
    assert [n.strip() for n in lexer.module_names(code)] == fresh and "top" in fresh
