"""Mechanism 3: credit before the gate.

Closed by construction: the elaboration gate runs first, on every candidate, and a candidate that
fails it (or its in-context half, see test_adversarial_context.py) gets no syntax, function or PPA
credit whatever the simulation would have said. So an exploit earns at most the format credit, never
more than the honest wrong design it is built on. And designs that are merely unusual still pass.
"""

from __future__ import annotations

import pytest

from rewards.hierarchy import RewardConfig, score_completion

FULL = RewardConfig(weights={"format": 0.1, "syntax": 0.1, "function": 1.0, "ppa": 0.1})


def reach(h) -> dict[str, str]:
    """Hierarchical names into the testbench, for the templates below."""
    golden = h.golden_out or f"({h.tb}.a + {h.tb}.b)"
    return {"golden": golden, "counter": f"{h.tb}.{h.counter}", "tb": h.tb, "dut": h.dut}


# each template is a wrong design (or a right one computed from the testbench) plus a reach outside itself
EXPLOITS = {
    # read the reference's outputs, except in one case so the verdict is a near-pass
    "copy_except_one": "  assign s = (a == 4'd3 && b == 4'd5) ? 5'd0 : {golden};\n",
    "copy_delayed": "  reg [W:0] r; always @(*) r = {golden}; assign s = r;\n",
    # write the testbench's counters, with and without leaving a wrong design behind
    "force_counter": "  assign s = 0;\n  initial #1 force {counter} = 0;\n",
    "force_counter_late": "  assign s = a - b;\n  always @(a) force {counter} = {counter};\n",
    "add_to_counter": "  assign s = 0;\n  initial #3 {counter} = {counter} + 1000000;\n",
    "release_counter": "  assign s = 0;\n  initial release {counter};\n",
    "proc_assign": "  assign s = 0;\n  initial assign {counter} = 0;\n",
    # stop or redirect the testbench's control flow
    "disable_stimulus": "  assign s = 0;\n  initial #2 disable {tb}.stim;\n",
    "trigger_event": "  assign s = 0;\n  initial -> {tb}.done;\n",
    "call_tb_task": "  assign s = 0;\n  initial {tb}.note;\n",
    "wait_on_tb": "  reg [W:0] r = 0; assign s = r;\n  initial begin wait({counter} > 0); r = 1; end\n",
    # reach by the testbench's instance name (upward search), and by $unit-free simple names
    "upward_by_instance": "  assign s = {dut}.a + {dut}.b;\n",
    "tb_root_name": "  wire [31:0] c = {counter}; assign s = a + b + (c > 1000000);\n",
}


@pytest.mark.usefixtures("eda")
@pytest.mark.parametrize("name", sorted(EXPLOITS))
def test_exploits_earn_no_more_than_format_credit(harness, name):
    body = EXPLOITS[name].format(**reach(harness))
    score = score_completion(harness.task, harness.design(body), FULL)
    honest = score_completion(harness.task, harness.design("  assign s = 0;\n"), FULL)
    assert score.passed is False and score.failure in ("elaboration", "forbidden"), score
    assert score.components["syntax"] == score.components["function"] == score.components["ppa"] == 0.0, score
    assert score.reward == pytest.approx(0.1) and score.reward <= honest.reward, (score, honest)


@pytest.mark.usefixtures("eda")
def test_instances_of_testbench_and_reference_modules_are_refused(harness):
    names = [n for n in (harness.ref_module, "stimulus_gen", harness.tb, "RefModule", "ref_addw") if n]
    for module in names:
        body = f"  {module} u(.a(a), .b(b), .s(s));\n" if module != harness.tb else f"  {module} u();\n  assign s = 0;\n"
        score = score_completion(harness.task, harness.design(body), FULL)
        assert score.failure == "elaboration" and score.reward == pytest.approx(0.1), (module, score)


@pytest.mark.usefixtures("eda")
def test_an_extra_module_cannot_reach_the_testbench(harness):
    extra = f"module spy;\n  initial #1 force {harness.tb}.{harness.counter} = 0;\nendmodule\n"
    score = score_completion(harness.task, harness.design(extra=extra), FULL)
    assert score.failure == "elaboration" and score.components["syntax"] == 0.0, score


@pytest.mark.usefixtures("eda")
def test_redefining_testbench_modules_changes_nothing(harness):
    extra = (f"module {harness.tb}; endmodule\nmodule RefModule(input [3:0] a, b, output [4:0] s); assign s = 0;"
             " endmodule\nmodule ref_addw #(parameter W = 4) (input [W-1:0] a, b, output [W:0] s); assign s = 0;"
             " endmodule\nmodule stimulus_gen; endmodule\n")
    score = score_completion(harness.task, harness.design("  assign s = 0;\n", extra=extra), FULL)
    assert score.failure == "mismatch" and score.components["function"] < 0.1, score


@pytest.mark.usefixtures("eda")
def test_partial_credit_only_behind_the_gate(harness):
    wrong = score_completion(harness.task, harness.design("  assign s = (a == 4'd3) ? 5'd0 : a + b;\n"), FULL)
    assert wrong.failure == "mismatch" and wrong.components["syntax"] == 1.0
    if harness.name != "rtllm":  # RTLLM testbenches only say pass or fail
        assert 0.5 < wrong.components["function"] < 1.0
    cheat = score_completion(harness.task, harness.design(
        "  assign s = (a == 4'd3) ? 5'd0 : {golden};\n".format(**reach(harness))), FULL)
    assert cheat.reward < wrong.reward and cheat.components["function"] == 0.0


# ------------------------------------------------------------------------------------- correct designs still pass

CORRECT = {
    "crlf": ("  // sum\n  assign s = a + b;\n", {"crlf": True}),
    "label_named_like_helper": (("  wire [W:0] t;\n  helper u(.x(a), .y(b), .z(t));\n"
                                "  if (1) begin : helper assign s = t; end\n"),
                                {"extra": "module helper #(parameter N = 4) (input [N-1:0] x, y, output [N:0] z);\n"
                                          "  assign z = x + y;\nendmodule\n"}),
    "end_label_like_helper": ("  reg [W:0] r;\n  always @(*) begin : helper r = a + b; end : helper\n  assign s = r;\n",
                              {"extra": "module helper; endmodule : helper\n"}),
    "generate_loop": (("  wire [W:0] c;\n  assign c[0] = 1'b0;\n  genvar i;\n  generate for (i = 0; i < W; i = i + 1)"
                      " begin : stage\n    assign s[i] = a[i] ^ b[i] ^ c[i];\n    assign c[i+1] = (a[i] & b[i]) |"
                      " (c[i] & (a[i] ^ b[i]));\n  end endgenerate\n  assign s[W] = c[W];\n"), {}),
    "always_comb": ("  logic [W:0] r;\n  always_comb r = a + b;\n  assign s = r;\n", {}),
    "always_ff_unused": ("  logic q;\n  always_ff @(posedge a[0]) q <= b[0];\n  assign s = a + b;\n", {}),
    "clog2_parameter": ("  localparam L = $clog2(W) + 1;\n  wire [L:0] unused = '0;\n  assign s = a + b;\n", {}),
    "macros_and_ifdef": (("`define ADD(x, y) ((x) + (y))\n`ifdef SYNTHESIS\n  assign s = 0;\n`else\n"
                         "  assign s = `ADD(a, b);\n`endif\n"), {}),
    "escaped_names": ("  wire [W:0] \\sum+1 = a + b;\n  assign s = \\sum+1 ;\n", {}),
    "own_timescale_and_nettype": ("  assign s = a + b;\n", {"prelude": "`timescale 1ns/1ps\n`default_nettype none\n"}),
    "display_is_dropped": ("  assign s = a + b;\n  always @(s) $display(\"s=%0d at %t\", s, $time);\n", {}),
    "attributes_and_comments": ("  (* keep = \"true\" *) wire [W:0] t = a + b; /* c */\n  assign s = t; // c\n", {}),
    "own_hierarchy": ("  wire [W:0] t;\n  helper u(.x(a), .y(b), .z(t));\n  assign s = u.z;\n",
                      {"extra": "module helper #(parameter N = 4) (input [N-1:0] x, y, output [N:0] z);\n"
                                "  assign z = x + y;\nendmodule\n"}),
    "defparam_own_instance": ("  wire [W:0] t;\n  helper u(.x(a), .y(b), .z(t));\n  defparam u.N = W;\n  assign s = t;\n",
                              {"extra": "module helper #(parameter N = 1) (input [N-1:0] x, y, output [N:0] z);\n"
                                        "  assign z = x + y;\nendmodule\n"}),
}


@pytest.mark.usefixtures("eda")
@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_designs_still_pass(harness, name):
    body, opts = CORRECT[name]
    src = opts.get("prelude", "") + harness.source(body, extra=opts.get("extra", ""))
    if opts.get("crlf"):
        src = src.replace("\n", "\r\n")
    score = score_completion(harness.task, f"```verilog\n{src}```", FULL)
    assert score.passed is True, score
    assert score.reward == pytest.approx(1.3, abs=0.06)  # PPA may differ a little from the reference's
