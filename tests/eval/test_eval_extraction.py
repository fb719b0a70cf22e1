"""Extraction rules, on replies as models write them: the official sv-generate file byte for byte (fence lines,
[BEGIN]/[DONE], the interface for code completion, its quirks), and the stated rules for everything else."""

from __future__ import annotations

import pytest

from verirl.eval.benchmarks import BenchmarkError
from verirl.eval.extraction import (
    RULES,
    check_rule,
    extract_code,
    first_block,
    last_answer_block,
    reward_extract,
    sv_generate_file,
)

IFC = "module TopModule (\n  input a,\n  input b,\n  output out\n);\n"
CODE = ["module TopModule(input a, input b, output out);", "  assign out = a & b;", "endmodule"]
BODY = ["  assign out = a & b;", "endmodule"]
NOT_CODE = "// VERILOG-EVAL: response did not use <CODE></CODE> correctly"


def lines(*items: str) -> str:
    """A file as sv-generate's print() calls write it: each item followed by a newline."""
    return "".join(item + "\n" for item in items)


# ------------------------------------------------------------------------------- official: spec-to-rtl


def test_begin_done_keeps_the_lines_between():
    reply = "Sure!\n[BEGIN]\n" + "\n".join(CODE) + "\n[DONE]\ntrailing words"
    assert sv_generate_file(reply, "spec-to-rtl", None) == lines("", *CODE, "")


def test_begin_without_done_keeps_nothing():
    assert sv_generate_file("[BEGIN]\n" + "\n".join(CODE), "spec-to-rtl", None) == lines("", "")


def test_begin_and_done_on_one_line_keep_nothing():
    # sv-generate only looks for [DONE] on the lines after [BEGIN]: a one-line answer is lost (an official quirk)
    assert sv_generate_file("[BEGIN] " + " ".join(CODE) + " [DONE]", "spec-to-rtl", None) == lines("", "")


def test_inline_markers_are_cut_from_their_lines():
    reply = "  [BEGIN]" + CODE[0] + "\n" + CODE[1] + "\n" + CODE[2] + "[DONE]"
    assert sv_generate_file(reply, "spec-to-rtl", None) == lines("", *CODE, "")


def test_fences_inside_begin_done_are_kept_as_the_official_script_keeps_them():
    reply = "[BEGIN]\n```verilog\n" + "\n".join(CODE) + "\n```\n[DONE]"
    assert sv_generate_file(reply, "spec-to-rtl", None) == lines("", "```verilog", *CODE, "```", "")


def test_first_of_two_fences_with_prose_around():
    reply = "Here is the design:\n```verilog\n" + "\n".join(CODE) + "\n```\nIt ANDs a and b."
    assert sv_generate_file(reply, "spec-to-rtl", None) == lines("", *CODE, "", NOT_CODE, "")


def test_opening_fence_without_closing_fence_drops_the_fence_line():
    reply = "Here it is:\n```verilog\n" + "\n".join(CODE)
    assert sv_generate_file(reply, "spec-to-rtl", None) == lines("", *CODE, "", NOT_CODE, "")


def test_glued_closing_fence_stays_on_the_endmodule_line():
    reply = "```verilog\n" + "\n".join(CODE) + "```"
    assert sv_generate_file(reply, "spec-to-rtl", None) == lines("", *CODE[:-1], "endmodule```", "", NOT_CODE, "")


def test_indented_fences_are_not_fences_for_the_official_script():
    reply = "  ```verilog\n" + "\n".join(CODE) + "\n  ```"
    assert sv_generate_file(reply, "spec-to-rtl", None) == lines("", *CODE, "", NOT_CODE, "")


def test_a_helper_module_before_top_module_hides_it_without_fences():
    # an endmodule line before the `module TopModule` line: the script keeps the reply up to that first endmodule
    helper = ["module inv(input x, output y);", "  assign y = ~x;", "endmodule"]
    assert sv_generate_file("\n".join(helper + CODE), "spec-to-rtl", None) == lines("", *helper, "", NOT_CODE, "")


def test_prose_then_bare_module():
    reply = "The module is:\n" + "\n".join(CODE) + "\nThat is all."
    assert sv_generate_file(reply, "spec-to-rtl", None) == lines("", *CODE, "", NOT_CODE, "")


# ----------------------------------------------------------------------------- official: code completion


def test_code_complete_body_gets_the_interface():
    # the interface, the reply's lines, then the blank lines of the script's two closing print("") calls
    assert sv_generate_file("\n".join(BODY), "code-complete", IFC) == lines("", IFC + "\n", *BODY, "", "")


def test_code_complete_opening_fence_without_closing_fence():
    reply = "```verilog\n" + "\n".join(BODY)
    expected = lines("", IFC + "\n", *BODY, "", "// VERILOG-EVAL: abnormal backticks count", "", "")
    assert sv_generate_file(reply, "code-complete", IFC) == expected


def test_code_complete_full_module_in_fences_keeps_its_header():
    reply = "```verilog\n" + "\n".join(CODE) + "\n```\n"
    expected = lines("", *CODE, "", "// VERILOG-EVAL: errant inclusion of module definition", "", "")
    assert sv_generate_file(reply, "code-complete", IFC) == expected


def test_code_complete_three_fences_take_the_first_block():
    reply = "```\n" + "\n".join(BODY) + "\n```\n```\nnot this\n"
    expected = lines("", IFC + "\n", *BODY, "", "// VERILOG-EVAL: abnormal backticks count", "", "")
    assert sv_generate_file(reply, "code-complete", IFC) == expected


def test_code_complete_without_endmodule_says_so():
    expected = lines("", IFC + "\n", BODY[0], "", "// VERILOG-EVAL: endmodule not found", "", "")
    assert sv_generate_file(BODY[0], "code-complete", IFC) == expected


# ------------------------------------------------------------------------------------------- stated rules

DRAFT = "module adder4(input [3:0] a, input [3:0] b, output [4:0] sum);\n  assign sum = a - b;\nendmodule"
FINAL = "module adder4(input [3:0] a, input [3:0] b, output [4:0] sum);\n  assign sum = a + b;\nendmodule"


def test_first_block_rule():
    assert first_block(f"Here:\n```verilog\n{FINAL}\n```\nDone.") == FINAL + "\n"
    assert first_block(f"Here:\n```verilog\n{FINAL}") == FINAL + "\n"                   # unclosed: to the end
    assert first_block(f"```verilog\n{FINAL}```") == FINAL + "\n"                        # glued closing fence
    assert first_block(f"  ```verilog\n{FINAL}\n  ```") == FINAL + "\n"                  # indented fences
    assert first_block(f"Draft:\n```verilog\n{DRAFT}\n```\nFinal:\n```verilog\n{FINAL}\n```") == DRAFT + "\n"
    prose = f"The design:\n{FINAL}\nAll done."
    assert first_block(prose) == prose                                                   # no fence: all of it


def test_last_answer_block_rule_is_codev_r1s():
    think = f"<think>\nA draft:\n```verilog\n{DRAFT}\n```\nWrong sign.\n</think>\n"
    assert last_answer_block(f"{think}<answer>\n```verilog\n{FINAL}\n```\n</answer>") == FINAL + "\n"
    both = f"<answer>\n```verilog\n{DRAFT}\n```\nBetter:\n```verilog\n{FINAL}\n```\n</answer>"
    assert last_answer_block(both) == FINAL + "\n"                                       # the last block wins
    assert last_answer_block(f"{think}```verilog\n{FINAL}\n```") == FINAL + "\n"         # no <answer>: after </think>
    assert last_answer_block(f"<think>\nstill thinking ```verilog\n{DRAFT}\n```") is None  # stopped while reasoning
    assert last_answer_block(f"<answer>\n```verilog\n{FINAL}\n") is None                 # block never closed
    assert last_answer_block(f"```verilog\n{FINAL}```") == FINAL + "\n"                  # glued closing fence
    assert last_answer_block(f"<answer>\n```systemverilog\n{FINAL}\n```\n</answer>") is None  # ```verilog only
    assert last_answer_block(f"```verilog\n{DRAFT}\n```\n<answer>\nno code\n</answer>") is None


def test_reward_rule_is_the_training_extractor():
    assert reward_extract(f"The design:\n{FINAL}\nAll done.") == FINAL + "\n"            # prose around bare code
    assert reward_extract(f"```verilog\n{FINAL}") == FINAL + "\n"                        # unclosed fence
    assert reward_extract(f"```verilog\n{FINAL}```") == FINAL + "\n"                     # endmodule``` last line
    assert reward_extract(f"```verilog\n{DRAFT}\n```\nFixed:\n```verilog\n{FINAL}\n```") == FINAL + "\n"
    reasoning = f"<think>\n```verilog\n{DRAFT}\n```\n</think>\n<answer>\n```verilog\n{FINAL}\n```\n</answer>"
    assert reward_extract(reasoning) == FINAL + "\n"
    assert reward_extract("no code here") is None


def test_rules_are_checked_against_the_benchmark():
    assert set(RULES) == {"official", "first-block", "last-answer-block", "reward"}
    assert check_rule(None, "verilog-eval-v2") == "official"
    assert check_rule(None, "rtllm") == "reward" and check_rule(None, "tasks") == "reward"
    with pytest.raises(BenchmarkError, match="rtllm has no official extraction"):
        check_rule("official", "rtllm")
    with pytest.raises(BenchmarkError, match="unknown extraction rule"):
        check_rule("last-block", "rtllm")


def test_verilog_eval_non_official_rules_go_through_the_official_post_processing(ve_dir):
    from verirl.eval.benchmarks import load_benchmark

    cc = load_benchmark("verilog-eval-v2", ve_dir, "code-complete")
    problem = cc.problems["Prob001_and2"]
    reply = "<think>\nthe body is one assign\n</think>\n<answer>\n```verilog\n" + "\n".join(BODY) + "\n```\n</answer>"
    code = extract_code(problem, "code-complete", reply, "last-answer-block")
    # the interface goes in front, as officially (the block is stripped, as CodeV-R1's pattern strips it)
    assert code == lines("", problem.interface + "\n", BODY[0].strip(), *BODY[1:], "", "")
    assert extract_code(problem, "code-complete", reply, "official").count("<think>") == 0


def test_the_engine_gets_back_exactly_the_code_or_a_neutralised_copy():
    from rewards.extract import extract_verilog
    from verirl.eval.scoring import EVAL_REASONING, engine_completion

    plain = "\n".join(CODE) + "\n"
    completion, note = engine_completion(plain)
    assert note is None and extract_verilog(completion, reasoning=EVAL_REASONING).code == plain
    for markup in ("```verilog\n", "<answer>\n"):
        code = markup + plain + "// <think> stays: the engine is told there is no reasoning section\n"
        completion, note = engine_completion(code)
        taken = extract_verilog(completion, reasoning=EVAL_REASONING).code
        assert note and "```" not in taken and "<answer>" not in taken
        assert taken.replace("'''", "```").replace("< answer>", "<answer>") == code   # nothing else changed
