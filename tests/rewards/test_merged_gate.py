"""The gate inside the simulation's compile (rewards.merged_gate): one compiler run where there were two, and exactly
the verdicts the two separate runs give.

Every design of the adversarial suites (exploits, context attacks, correct designs) and a set of ordinary right,
wrong and broken designs is scored twice on each harness: once as the engine does it, once with the joint run
turned off (the gate alone, then the simulation's own compile). Verdict, failure class, credit and partial credit
must be identical. Then the mechanisms one by one: the gate's processes never run, what makes the run separate,
and the compile log the official VerilogEval analysis reads.
"""

from __future__ import annotations

import importlib.util
import os
import re

import pytest

from rewards import merged_gate
from rewards.hierarchy import RewardConfig, score_completion
from rewards.sanitize import sanitize_candidate
from rewards.simulate import compile_candidate


def _sibling(name: str):
    spec = importlib.util.spec_from_file_location(f"verirl_tests_{name}", os.path.join(os.path.dirname(__file__),
                                                                                        f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_GATE = _sibling("test_adversarial_gate")
CORRECT, EXPLOITS, reach = _GATE.CORRECT, _GATE.EXPLOITS, _GATE.reach

#: reaches outside the design that only some parameter values, or a testbench name, select
CONTEXT = [
    "  if (W == 4) begin : g assign s = {target}; end else begin : g assign s = 0; end\n",
    "  generate if (W < 5) begin : g assign s = {target}; end else begin : g assign s = 0; end endgenerate\n",
    "  case (W) 4: begin : g assign s = {target}; end default: begin : g assign s = 0; end endcase\n",
    "  if ($bits({tb}.a) > 1) begin : g assign s = {target}; end else begin : g assign s = a + b; end\n",
    "  assign s = a + b;\n  defparam {tb}.{dut}.W = 8;\n",
    "  assign s = a + b;\n  defparam {dut}.W = 4;\n",
    "  assign s = {dut}.a + {dut}.b;\n",
]


def hier_target(h) -> str:
    return h.golden_out or f"({h.tb}.a + {h.tb}.b)"


pytestmark = pytest.mark.usefixtures("eda")

FULL = RewardConfig(weights={"format": 0.1, "syntax": 0.1, "function": 1.0, "ppa": 0.0})

ORDINARY = {
    "right": "  assign s = a + b;\n",
    "wrong": "  assign s = a - b;\n",
    "near_miss": "  assign s = (a == 4'd3) ? 5'd0 : a + b;\n",
    "syntax_error": "  assign s = a +;\n",
    "missing_semicolon": "  assign s = a + b\n",
    "unknown_module": "  adder_cell u(.x(a), .y(b), .z(s));\n",
    "undeclared_name": "  assign s = a + c;\n",
    "port_width_warning": "  wire [1:0] t = a;\n  assign s = a + b + t[1:0];\n",
    "zero_delay_loop": "  reg r = 0;\n  always r = ~r;\n  assign s = a + b;\n",
    "endless_initial": "  integer k = 0;\n  assign s = a + b;\n  always @(a) begin k = 0; while (1) k = k + 1; end\n",
    "sequential": "  reg [W:0] r = 0;\n  always @(a or b) r <= a + b;\n  assign s = r;\n",
    "helper_used": "  helper u(.x(a), .y(b), .z(s));\n",
    "helper_unused": "  assign s = a + b;\n",
    "defparam_outside": "  assign s = a + b;\n  defparam nowhere.P = 1;\n",
    "local_named_like_tb": "  wire [W:0] tb = a + b;\n  assign s = tb;\n",
}
HELPER = "module helper #(parameter N = 4) (input [N-1:0] x, y, output [N:0] z);\n  assign z = x + y;\nendmodule\n"


def _corpus(h) -> dict[str, str]:
    out = {f"ordinary/{k}": h.design(v, extra=HELPER if k.startswith("helper") else "") for k, v in ORDINARY.items()}
    out |= {f"exploit/{k}": h.design(v.format(**reach(h))) for k, v in EXPLOITS.items()}
    for i, v in enumerate(CONTEXT):
        body = v.format(target=hier_target(h), tb=h.tb, dut=h.dut)
        for default in (4, 8):
            out[f"context/{i}/W={default}"] = h.design(body, default=default)
    for k, (body, opts) in CORRECT.items():
        src = opts.get("prelude", "") + h.source(body, extra=opts.get("extra", ""))
        out[f"correct/{k}"] = f"```verilog\n{src}```"
    return out


def _verdict(score):
    return (score.passed, score.failure, score.reward, score.components, score.detail.get("pass_fraction"),
            score.detail.get("failure_stage"))


def test_the_joint_run_gives_the_separate_runs_verdicts(harness, monkeypatch):
    corpus = _corpus(harness)
    joint = {name: score_completion(harness.task, text, FULL) for name, text in corpus.items()}
    monkeypatch.setattr(merged_gate, "mergeable", lambda *a: "turned off by the test")
    separate = {name: score_completion(harness.task, text, FULL) for name, text in corpus.items()}
    differ = {name: (_verdict(joint[name]), _verdict(separate[name])) for name in corpus
              if _verdict(joint[name]) != _verdict(separate[name])}
    assert not differ, differ
    merged = {name for name, s in joint.items() if "gate" not in s.detail.get("tools", {})
              and s.detail.get("tools", {}).get("compile")}
    # the joint run decided these on its own (else this test would compare the separate path with itself)
    assert {"ordinary/right", "ordinary/wrong", "ordinary/near_miss", "ordinary/syntax_error",
            "ordinary/endless_initial", "ordinary/helper_used", "correct/generate_loop", "correct/own_hierarchy",
            "correct/defparam_own_instance", "correct/macros_and_ifdef"} <= merged, sorted(merged)
    assert all(separate[name].detail["tools"].get("gate", {}).get("runs") == 1 for name in merged)


def test_the_gates_processes_never_run(harness):
    """With floating inputs the gate's instance would spin forever in these blocks; in the testbench it does not.
    They are dropped from the image the simulator runs, so the design passes, in one compile."""
    spin = ("  assign s = a + b;\n  integer k = 0;\n"
            "  always @(*) if (a === 4'bzzzz) while (1) k = k + 1;\n"
            "  initial begin #1; while (b === 4'bzzzz) k = k + 1; end\n"
            "  final if (a === 4'bzzzz) while (1) k = k + 1;\n")
    score = score_completion(harness.task, harness.design(spin), FULL)
    assert score.passed is True, score
    assert "gate" not in score.detail["tools"] and score.detail["tools"]["compile"]["runs"] == 1


@pytest.mark.parametrize("case,reason", [
    ("  assign s = plus(a, b);\n  function [W:0] plus(input [W-1:0] x, y); plus = x + y; endfunction\n",
     "function evaluated by the gate's nets"),
    ("  assign s = a + b;\n  wire [3:0] stimulus_gen = a;\n", "names the trusted sources define"),
])
def test_what_makes_the_gate_run_alone(harness, case, reason):
    if reason.startswith("names") and harness.name != "verilog-eval":
        case = case.replace("stimulus_gen", harness.tb)
    score = score_completion(harness.task, harness.design(case), FULL)
    assert score.passed is True, score
    assert reason in score.detail.get("gate_alone", ""), score.detail
    assert score.detail["tools"]["gate"]["runs"] == 1


def test_an_unused_helper_module_makes_the_gate_run_alone(harness):
    score = score_completion(harness.task, harness.design(extra=HELPER), FULL)
    assert score.passed is True and "not elaborated under the gate's root" in score.detail["gate_alone"]


def _first_occurrences(log: str) -> list[str]:
    seen: dict[str, None] = {}
    for line in log.splitlines():
        seen.setdefault(line, None)
    return list(seen)


def test_the_joint_log_reads_as_the_separate_compile(harness):
    """Messages the gate's instance adds repeat, after it, a message of the testbench's instance; lines about the
    gate's own file are gone. So VerilogEval's analysis (first matching line wins) reads the same letter."""
    body = ("  reg [W:0] r;\n  always_comb begin end\n  always @(*) r = a[W+1:W-1] + b;\n  assign s = a + b;\n"
            "  helper u(.x(a[0]), .y(b), .z());\n")
    state_top = harness.task.top
    sanitized = sanitize_candidate(harness.source(body, extra=HELPER), state_top, timescale="1ps/1ps")
    with compile_candidate(harness.task, sanitized, gate=True) as joint:
        assert joint.merged and joint.failure is None
        joint_log = joint.output
    with compile_candidate(harness.task, sanitized.code) as alone:
        separate_log = alone.output
    assert merged_gate.GATE_FILE not in joint_log and "zzzz_verirl_gate" not in joint_log
    assert _first_occurrences(joint_log) == _first_occurrences(separate_log)
    assert separate_log.strip()  # the design does warn


def test_a_reference_scored_as_its_own_candidate_is_checked_once(harness, tmp_path, monkeypatch):
    """The first completion of a task that is the reference (up to the per-run renaming and blank lines) runs once:
    that run is the reference's own check."""
    from rewards import task_checks

    monkeypatch.setenv("VERIRL_CACHE_DIR", str(tmp_path))  # nothing known about the task on this "machine"
    task_checks.forget()
    ref = harness.task.reference if harness.name != "verilog-eval" else \
        harness.task.reference.replace("RefModule", harness.top)
    score = score_completion(harness.task, f"Here it is.\n```verilog\n\n\n{ref}\n```", FULL)
    assert score.passed is True
    assert {k: v["runs"] for k, v in score.detail["tools"].items()} == {"compile": 1, "reference/simulate": 1}
    wrong = score_completion(harness.task, harness.design("  assign s = a - b;\n"), FULL)
    assert wrong.failure == "mismatch" and {k: v["runs"] for k, v in wrong.detail["tools"].items()} == {
        "compile": 1, "simulate": 1}  # the facts are known now



#: many compiler warnings: the engine's ``log`` keeps the last few KB, ``compile_log`` the output from its beginning
FLAG = "module first_flag(input [7:0] x);\nendmodule\nmodule pad8(input [7:0] x, output [7:0] y);\n  assign y = x;\nendmodule\n"
NOISY = "  assign s = a + b;\n  first_flag f0 (.x(a));\n" + "".join(f"  pad8 p{i} (.x(a[0]), .y());\n" for i in range(80))
NOISY_DESIGNS = {"right": (NOISY, (True, None)), "wrong": (NOISY.replace("a + b", "a - b"), (False, "mismatch")),
                 "syntax_error": ("  assign s = a +;\n" + "  assign = ;\n" * 100, (False, "syntax"))}


@pytest.mark.parametrize("kind", sorted(NOISY_DESIGNS))
def test_the_compile_log_is_kept_from_its_beginning(harness, kind, monkeypatch):
    """``verirl eval``'s official analysis reads the first matching line of the compiler's output; the engine keeps
    that output (up to 64 KiB) in ``Score.detail["compile_log"]``, from the one compile that ran, and a syntax error
    found by the joint run reads as the gate alone reports it."""
    body, verdict = NOISY_DESIGNS[kind]
    score = score_completion(harness.task, harness.design(body, extra=FLAG), FULL)
    assert (score.passed, score.failure) == verdict, score
    log, full = score.detail["log"], score.detail["compile_log"]
    assert log.startswith("...\n") and len(full) > len(log)  # the tail alone has lost the first lines
    first = full.splitlines()[0]
    assert ("candidate.v:2: syntax error" if kind == "syntax_error" else "first_flag") in first, first
    assert first not in log
    assert score.detail["tools"]["compile"]["runs"] == 1  # kept from the one compile, nothing compiled again
    monkeypatch.setattr(merged_gate, "mergeable", lambda *a: "turned off by the test")
    separate = score_completion(harness.task, harness.design(body, extra=FLAG), FULL)
    assert separate.detail["tools"]["gate"]["runs"] == 1
    if kind == "syntax_error":  # the gate alone decided it: the joint run's messages are the gate's
        assert (separate.detail["log"], separate.detail["compile_log"]) == (log, full)
    else:
        assert _unprefixed(separate.detail["compile_log"].splitlines()[0]) == _unprefixed(first)


def _unprefixed(line: str) -> str:
    return re.sub(r"verirl_c[0-9a-f]+_", "", line)  # the per-run module prefix
