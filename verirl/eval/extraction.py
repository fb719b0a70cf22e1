"""How the Verilog is taken from a model's reply: named extraction rules, one chosen per run (``--extraction``).

=====================  ==========================================================================================
rule                   what is taken
=====================  ==========================================================================================
``official``           VerilogEval only, and its default: the sample file NVlabs' ``scripts/sv-generate`` writes
                       (:func:`sv_generate_file`). Spec-to-rtl: the lines between ``[BEGIN]`` and ``[DONE]``;
                       a ``[BEGIN]`` without ``[DONE]`` keeps nothing. Otherwise (and always for code completion)
                       the lines between the first two lines that start with ```` ``` ```` when there are at least
                       two such lines; else every line that is not a fence line, from the ``module TopModule``
                       line (when the reply has one before any ``endmodule``) up to the first ``endmodule`` line —
                       so a reply with an opening fence and no closing one keeps its code. Code completion puts the
                       problem's ``_ifc.txt`` interface in front when the reply has no ``module TopModule`` line.
``first-block``        the first fenced block: from the line after the first line starting with ```` ``` ````
                       (indented fences too) up to the next such line, a line ending in ```` ``` ````
                       (``endmodule```` ``), or the end of the reply when the block is never closed. Without a
                       fence, the whole reply.
``last-answer-block``  CodeV-R1's reasoning format: the last closed ```` ```verilog ```` block inside the last
                       ``<answer>`` (to ``</answer>`` or the end), else after the last ``</think>``, else in the
                       whole reply; nothing when a ``<think>`` is never closed (the reply stopped while reasoning)
                       and nothing when no ```` ```verilog ```` block is closed.
``reward``             the training reward's extractor, :func:`rewards.extract.extract_verilog`: ``<think>`` is
                       skipped, ``<answer>`` searched first; fenced blocks that hold a module (an unclosed fence
                       runs to the end), merged by module name so the last version of a module wins (a draft
                       followed by a final block scores the final one); then ``[BEGIN]/[DONE]``; then bare
                       ``module ... endmodule`` text (prose around it is dropped). The default for RTLLM and
                       verirl task files.
=====================  ==========================================================================================

For VerilogEval, the code a non-official rule takes is handed to the official post-processing as one fenced block
(as CodeV-R1 does with its ``--add_backtick`` step), so code completion still gets the interface in front of a
body without a module header.
"""

from __future__ import annotations

import re

from .benchmarks import BenchmarkError, Problem

RULES: dict[str, str] = {
    "official": "VerilogEval's sv-generate post-processing ([BEGIN]/[DONE], first fenced block, module...endmodule, "
                "fence lines dropped; the interface in front for code completion)",
    "first-block": "the first fenced block (unclosed: to the end of the reply), else the whole reply",
    "last-answer-block": "the last closed ```verilog block inside <answer> (else after </think>), as CodeV-R1",
    "reward": "the training reward's extractor (rewards.extract.extract_verilog): <answer> first, <think> skipped, "
              "fenced blocks merged by module name (last version wins), [BEGIN]/[DONE], bare module text",
}
DEFAULT_RULE = {"verilog-eval-v2": "official", "rtllm": "reward", "tasks": "reward"}


def check_rule(rule: str | None, benchmark: str) -> str:
    """The rule to use for ``benchmark`` (its default when ``rule`` is None); a clear error for a bad choice."""
    rule = rule or DEFAULT_RULE.get(benchmark, "reward")
    if rule not in RULES:
        raise BenchmarkError(f"unknown extraction rule {rule!r}; choose one of {', '.join(RULES)}")
    if rule == "official" and benchmark != "verilog-eval-v2":
        raise BenchmarkError(f"--extraction official is VerilogEval's sv-generate rule; {benchmark} has no official "
                             f"extraction: use {DEFAULT_RULE.get(benchmark, 'reward')} (the default), first-block or "
                             "last-answer-block")
    return rule


def extract_code(problem: Problem, task: str | None, reply: str, rule: str | None = None) -> str:
    """The Verilog that ``rule`` takes from ``reply`` for ``problem`` ("" when it finds nothing).

    For VerilogEval this is the whole sample file the official harness would compile.
    """
    rule = check_rule(rule, problem.benchmark)
    if rule == "official":
        return sv_generate_file(reply, task or "spec-to-rtl", problem.interface)
    code = {"first-block": first_block, "last-answer-block": last_answer_block, "reward": reward_extract}[rule](reply)
    if problem.benchmark == "verilog-eval-v2":
        fenced = "```verilog\n" + (code or "").rstrip("\n") + "\n```\n"
        return sv_generate_file(fenced, task or "spec-to-rtl", problem.interface)
    return code or ""


# -------------------------------------------------------------------------------------- VerilogEval's rule


def sv_generate_file(reply: str, task: str, interface: str | None) -> str:
    """The sample file ``scripts/sv-generate`` writes for ``reply``, byte for byte (its trailing comments too)."""
    lines = reply.splitlines()
    backticks, module_exists = _first_pass(lines)
    out = [""]
    if task == "code-complete":
        if not module_exists:
            out.append((interface or "") + "\n")
        body, found_module, found_endmodule = _second_pass(lines, backticks, module_exists)
        out += [*body, ""]
        if backticks == 1 or backticks > 2:
            out += ["// VERILOG-EVAL: abnormal backticks count", ""]
        if found_module:
            out += ["// VERILOG-EVAL: errant inclusion of module definition", ""]
        if not found_endmodule:
            out += ["// VERILOG-EVAL: endmodule not found", ""]
    else:
        started, ended, code = _begin_done(lines)
        if started and ended:
            out += code
        if not started and not ended:
            body, _, _ = _second_pass(lines, backticks, module_exists)
            out += [*body, "", "// VERILOG-EVAL: response did not use <CODE></CODE> correctly"]
    out.append("")
    return "".join(line + "\n" for line in out)


def _first_pass(lines: list[str]) -> tuple[int, bool]:
    """(fence lines, whether a ``module TopModule`` line comes before any ``endmodule`` line)."""
    backticks, exists, end_first = 0, False, False
    for line in lines:
        if line.startswith("```"):
            backticks += 1
        elif line.startswith("endmodule"):
            if not exists:
                end_first = True
        elif line.startswith("module TopModule"):
            exists = True
    return backticks, exists and not end_first


def _second_pass(lines: list[str], backticks: int, module_exists: bool) -> tuple[list[str], bool, bool]:
    kept: list[str] = []
    first = second = found_module = found_endmodule = False
    for line in lines:
        echo = True
        if line.strip().startswith("module TopModule"):
            found_module = True
        if backticks >= 2:
            if not first or second:
                echo = False
        else:
            if found_endmodule:
                echo = False
            if module_exists and not found_module:
                echo = False
        if line.startswith("```"):
            if not first:
                first = True
            else:
                second = True
            echo = False
        elif line.strip().startswith("endmodule"):
            found_endmodule = True
        if echo:
            kept.append(line)
    return kept, found_module, found_endmodule


def _begin_done(lines: list[str]) -> tuple[bool, bool, list[str]]:
    started = ended = False
    code: list[str] = []
    for line in lines:
        if not started:
            if line.strip() == "[BEGIN]":
                started = True
            elif line.lstrip().startswith("[BEGIN]"):
                code.append(line.lstrip().replace("[BEGIN]", ""))
                started = True
        elif not ended:
            if line.strip() == "[DONE]":
                ended = True
            elif line.rstrip().endswith("[DONE]"):
                code.append(line.rstrip().replace("[DONE]", ""))
                ended = True
            else:
                code.append(line)
    return started, ended, code


# ------------------------------------------------------------------------------------------ stated rules


def first_block(reply: str) -> str:
    """The first fenced block (see the module docstring); the whole reply when it has no fence."""
    lines = reply.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("```")), None)
    if start is None:
        return reply
    kept: list[str] = []
    for line in lines[start + 1:]:
        if line.lstrip().startswith("```"):
            break
        if line.rstrip().endswith("```"):
            kept.append(line.rstrip()[:-3])
            break
        kept.append(line)
    return "\n".join(kept) + "\n"


_VERILOG_BLOCK = re.compile(r"```verilog(?=\s)(.*?)```", re.DOTALL)


def last_answer_block(reply: str) -> str | None:
    """CodeV-R1's rule (see the module docstring); ``None`` when no closed ```verilog block is found."""
    if "<answer>" in reply:
        region = reply.rsplit("<answer>", 1)[1].split("</answer>", 1)[0]
    elif "</think>" in reply:
        region = reply.rsplit("</think>", 1)[1]
    elif "<think>" in reply:
        return None  # the reply ended inside its reasoning
    else:
        region = reply
    blocks = _VERILOG_BLOCK.findall(region)
    return blocks[-1].strip() + "\n" if blocks else None


def reward_extract(reply: str) -> str | None:
    """The training reward's extractor (rewards.extract.extract_verilog)."""
    from rewards.extract import extract_verilog

    return extract_verilog(reply).code
