"""What the formal model must not be trusted with, and the text Yosys reads (no EDA tools needed)."""

from __future__ import annotations

import pytest

from rewards.equiv_hazards import find_hazards
from rewards.formal import Unfaithful, formal_text
from rewards.interface import elaborate, interface_of_instance


def _kinds(src: str, top: str | None = None, candidate: bool = True) -> set[str]:
    owners, inst = elaborate(src, top)
    iface = interface_of_instance(inst)
    kinds = {h.kind for h in find_hazards(inst, {c.name for c in iface.clocks}, candidate=candidate)}
    del owners
    return kinds


CLEAN = [
    ("module m(input clk, input rst, input en, output reg [3:0] q); always @(posedge clk) if (rst) q <= 0; "
    "else if (en) q <= q + 1; endmodule"),
    ("module m(input clk, input [3:0] a, output reg [3:0] q, output reg [3:0] r); integer i; "
    "always @(posedge clk) for (i = 0; i < 4; i = i + 1) q[i] <= a[i]; "
    "always @* begin r = 0; for (i = 0; i < 4; i = i + 1) r[i] = a[3 - i]; end endmodule"),
    "module m(input a, input b, output reg y); always @(a or b) y = a & b; endmodule",
    "module m(input a, input b, output reg [1:0] y); always @* y[0] = a; always @* y[1] = b; endmodule",
    ("module m(input [3:0] a, output reg [1:0] y); always @* casez (a) 4'b1???: y = 3; 4'b01??: y = 2; "
    "default: y = 0; endcase endmodule"),
    ("module m(input clk, input rst, input in, output reg out); reg s; always @(posedge clk or posedge rst) "
    "if (rst) s <= 0; else s <= in; always @* case (s) 1'b0: out = 0; default: out = 1; endcase endmodule"),
    ("module m(input clk, input [3:0] a, output reg [3:0] c); reg [3:0] b; "
    "always @(posedge clk) begin c = b; b = a; end endmodule"),
    ("module s(input a, output y); assign y = a; endmodule\n"
    "module m(input [1:0] a, output [1:0] y); s u0(.a(a[0]), .y(y[0])); s u1(.a(a[1]), .y(y[1])); endmodule"),
    "module m(input [1:0] s, input a, output reg y); always_comb begin y = 0; if (s == 2'd1) y = a; end endmodule",
]


@pytest.mark.parametrize("src", CLEAN)
def test_ordinary_designs_have_no_hazards(src):
    assert _kinds(src, "m") == set()


@pytest.mark.parametrize("src, kind", [
    ("module m(input a, input b, output reg y); always @(a) y = a & b; endmodule", "sensitivity"),
    ("module m(input a, input b, input c, output reg y); always @(a or c) y = a & b | c; endmodule", "sensitivity"),
    (("module m(input [3:0] a, input [3:0] b, output reg [3:0] y); function [3:0] f(input [3:0] x); "
     "f = x + b; endfunction always @* y = f(a); endmodule"), "sensitivity"),
    ("module m(input a, input b, output y); assign y = a; assign y = b; endmodule", "multi_driver"),
    (("module m(input clk, input a, input b, output reg y); always @(posedge clk) y <= a; "
     "always @(posedge clk) y <= b; endmodule"), "multi_driver"),
    ("module m(input a, output y); assign a = 1'b0; assign y = a; endmodule", "multi_driver"),
    (("module s(input a, output y); assign y = a; endmodule\n"
     "module m(input a, input b, output y); s u1(.a(a), .y(y)); s u2(.a(b), .y(y)); endmodule"), "multi_driver"),
    ("module m(input [1:0] a, output [1:0] y); assign y[0] = a[0]; assign y[1:0] = a; endmodule", "multi_driver"),
    (("module m(input clk, input a, output reg y, output reg z); always @(posedge clk) y = a; "
     "always @(posedge clk) z = y; endmodule"), "race"),
    ("module m(input a, input en, output y); assign y = en ? a : 1'bz; endmodule", "tristate"),
    ("module m(input [3:0] a, output [3:0] y); assign y = 'z; endmodule", "tristate"),
    ("module m(input a, output y); tri t; assign t = a; assign y = t; endmodule", "tristate"),
    ("module m(input a, input e, output y); bufif1 g(y, a, e); endmodule", "tristate"),
    ("module m(inout a, input b); assign a = b; endmodule", "tristate"),
    ("module m(input a, output y); wand w; assign w = a; assign y = w; endmodule", "tristate"),
    (("module m(input [3:0] a, output reg [1:0] y); always @* casex (a) 4'b1xxx: y = 3; default: y = 0; endcase "
     "endmodule"), "casex"),
    ("module m(input a, output y); assign #1 y = a; endmodule", "timing"),
    ("module m(input a, output reg y); always #5 y = a; endmodule", "timing"),
    ("module m(output reg clk); initial begin clk = 0; forever #5 clk = ~clk; end endmodule", "timing"),
    ("module m(input clk, input a, output reg y); always begin @(posedge clk); y <= a; end endmodule", "timing"),
    ("module m(input clk, input a, output reg y); always @(posedge clk) y <= #1 a; endmodule", "timing"),
    ("module m(input clk, input a, output reg y); always @(posedge clk) begin wait (a); y <= a; end endmodule",
     "timing"),
    ("module m(input a, output reg y); always @* begin force y = a; end endmodule", "procedural"),
    (("module m(input clk, input rst, input in, output reg out); reg s; always @(posedge clk) "
     "if (rst) s <= 0; else s <= in; always @* case (s) 1'b0: out = 0; default: out = 1; endcase endmodule"),
     "time_zero"),
    ("module m(output reg [1:0] y); always @* y = 2'd1; endmodule", "time_zero"),
])
def test_each_mechanism_is_found(src, kind):
    assert kind in _kinds(src, "m")


def test_time_zero_matters_for_the_candidate_only():
    src = ("module m(input clk, input rst, input in, output reg out); reg s; always @(posedge clk) "
           "if (rst) s <= 0; else s <= in; always @* case (s) 1'b0: out = 0; default: out = 1; endcase endmodule")
    assert "time_zero" not in _kinds(src, "m", candidate=False)


def test_formal_text_drops_what_only_synthesis_reads():
    src = ("module m(input [1:0] s, input a, output reg y);\n"
           "  (* full_case, parallel_case *) always_comb case (s) // synopsys full_case parallel_case\n"
           "    2'd0: y = a; /* synthesis translate_off */ 2'd1: y = ~a; /* synthesis translate_on */\n"
           "  endcase\nendmodule\n")
    text = formal_text(src)
    assert "full_case" not in text and "translate" not in text and "(*" not in text
    assert "2'd1: y = ~a;" in text and "always @*" in text and "always_comb" not in text
    assert text.count("\n") == src.count("\n")  # line numbers kept
    assert formal_text("module m(input a, output y); always @(*) y = a; endmodule").count("(*)") == 1


@pytest.mark.parametrize("src", [
    "`ifdef SYNTHESIS\nmodule m; endmodule\n`endif\n",
    "`ifndef YOSYS\nmodule m; endmodule\n`endif\n",
    "`ifdef __ICARUS__\n`else\nmodule m; endmodule\n`endif\n",
    "module m(output [31:0] y); assign y = `__LINE__; endmodule\n",
])
def test_conditionals_on_tool_macros_refuse_the_formal_check(src):
    with pytest.raises(Unfaithful):
        formal_text(src)


def test_conditionals_on_the_designs_own_macros_are_fine():
    formal_text("`define SYNTHESIS\n`ifdef SYNTHESIS\nmodule m; endmodule\n`endif\n")
    formal_text("`ifdef MY_OPTION\nmodule m; endmodule\n`endif\n")
