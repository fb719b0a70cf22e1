"""rewards.interface: ports, parameters, clocks and resets from the pyslang front end."""

from __future__ import annotations

import pytest

from rewards.interface import InterfaceError, ModuleInterface, extract_interface

ASYNC_LOW = """
module counter #(parameter W = 4, parameter signed [7:0] K = -3) (
  input clk, input rst_n, input en, input signed [W-1:0] step,
  output reg [W-1:0] q, output wire wrap
);
  localparam L = 2;
  always @(posedge clk or negedge rst_n)
    if (!rst_n) q <= {W{1'b0}};
    else if (en) q <= q + step;
  assign wrap = &q;
endmodule
"""

SYNC_HIGH_NEG = """
module dff8p (input clk, input reset, input [7:0] d, output reg [7:0] q);
  always @(negedge clk)
    if (reset) q <= 8'h34;
    else q <= d;
endmodule
"""

HIER_TWO_CLOCKS = """
module stage (input c, input rn, input d, output reg o);
  always @(posedge c or negedge rn) if (~rn) o <= 1'b0; else o <= d;
endmodule
module top (input clk_a, input clk_b, input arst_n, input d, output y, output z);
  stage s1 (.c(clk_a), .rn(arst_n), .d(d), .o(y));
  stage s2 (.c(clk_b), .rn(arst_n), .d(y), .o(z));
endmodule
"""


def test_ports_parameters_and_async_reset():
    iface = extract_interface(ASYNC_LOW)
    assert iface.name == "counter" and iface.sequential
    ports = {p.name: p for p in iface.ports}
    assert [p.name for p in iface.ports] == ["clk", "rst_n", "en", "step", "q", "wrap"]
    assert ports["step"].width == 4 and ports["step"].signed and ports["step"].direction == "input"
    assert ports["q"].width == 4 and not ports["q"].signed and ports["q"].direction == "output"
    params = {p.name: p for p in iface.parameters}
    assert params["W"].value == "4" and not params["W"].local
    assert params["L"].local
    assert "3" in params["K"].value
    assert [(c.name, c.edge) for c in iface.clocks] == [("clk", "posedge")]
    assert [r.to_dict() for r in iface.resets] == [{"name": "rst_n", "polarity": "low", "kind": "async"}]
    assert [p.name for p in iface.data_inputs] == ["en", "step"]


def test_sync_reset_on_negedge_clock():
    iface = extract_interface(SYNC_HIGH_NEG)
    assert [(c.name, c.edge) for c in iface.clocks] == [("clk", "negedge")]
    assert [r.to_dict() for r in iface.resets] == [{"name": "reset", "polarity": "high", "kind": "sync"}]


def test_clocks_found_through_submodule_ports():
    iface = extract_interface(HIER_TWO_CLOCKS, "top")
    assert sorted(c.name for c in iface.clocks) == ["clk_a", "clk_b"]
    assert [r.to_dict() for r in iface.resets] == [{"name": "arst_n", "polarity": "low", "kind": "async"}]


def test_combinational_and_round_trip():
    iface = extract_interface("module m(input [3:0] a, b, output [4:0] s); assign s = a + b; endmodule")
    assert not iface.sequential and iface.clocks == () and iface.resets == ()
    data = iface.to_dict()
    assert data["kind"] == "combinational"
    assert ModuleInterface.from_dict(data) == iface


def test_reset_detected_when_or_ed_with_a_condition():
    src = """module c(input clk, input reset, output reg [3:0] q);
      always @(posedge clk) if (reset || q == 10) q <= 1; else q <= q + 1;
    endmodule"""
    assert [r.to_dict() for r in extract_interface(src).resets] == [
        {"name": "reset", "polarity": "high", "kind": "sync"}]


@pytest.mark.parametrize("source, needle", [
    ("module m(input a, output y); assign y = a & ; endmodule", "does not compile"),
    ("", "empty"),
    ("wire x;", "no module"),
    ("module a(input x); endmodule\nmodule b(input y); endmodule", "pass top"),
])
def test_clear_errors(source, needle):
    with pytest.raises(InterfaceError, match=needle):
        extract_interface(source)


def test_top_must_exist_and_be_plain():
    with pytest.raises(InterfaceError, match="not defined"):
        extract_interface("module a(input x); endmodule", "b")
    with pytest.raises(InterfaceError, match="plain Verilog identifier"):
        extract_interface("module a(input x); endmodule", "a; exec")


def test_instance_arrays_and_generate_blocks():
    src = """module ff(input c, input d, output reg q); always @(posedge c) q <= d; endmodule
    module top(input clk, input [3:0] d, output [3:0] q, output [3:0] r);
      ff bank [3:0] (.c(clk), .d(d), .q(q));
      genvar i;
      generate for (i = 0; i < 4; i = i + 1) begin : g
        ff one (.c(clk), .d(d[i]), .q(r[i]));
      end endgenerate
    endmodule"""
    iface = extract_interface(src, "top")
    assert iface.sequential and [(c.name, c.edge) for c in iface.clocks] == [("clk", "posedge")]
    assert iface.internal_clocks == ()


CLOCKING = """
module sub(input c, input d, output reg q); always @(posedge c) q <= d; endmodule
module top(input [1:0] clks, input clk, input rst_in, input d, output reg q, output q2, output reg q3,
           output reg q4);
  wire nclk = ~clk;
  wire g;
  reg div;
  assign g = clks[1];
  always @(posedge clks[0]) q <= d;
  sub u(.c(nclk), .d(d), .q(q2));
  always @(posedge g or posedge rst_in) if (rst_in) q3 <= 0; else q3 <= d;
  always @(posedge clk) div <= ~div;
  always @(posedge div) q4 <= d;
endmodule
"""


def test_clocks_from_bit_selects_inverted_nets_and_renamed_nets():
    iface = extract_interface(CLOCKING, "top")
    clocks = {(c.name, c.bit): c.edge for c in iface.clocks}
    assert clocks[("clks", 0)] == "posedge"          # posedge clks[0]
    assert clocks[("clks", 1)] == "posedge"          # through `assign g = clks[1]`
    assert clocks[("clk", None)] == "both"           # posedge clk and, through ~clk, its negedge
    assert iface.internal_clocks == ("div",)         # a divided clock is not an input bit
    assert [r.to_dict() for r in iface.resets] == [{"name": "rst_in", "polarity": "high", "kind": "async"}]
    assert ModuleInterface.from_dict(iface.to_dict()) == iface


@pytest.mark.parametrize("test, polarity", [
    ("if (!rst_in) q <= 0;", "low"), ("if (rst_in) q <= 0;", "high"), ("if (rst_in == 1'b0) q <= 0;", "low"),
    ("if (~rst_in) q <= 0;", "low"), ("if (rst_in != 1'b0) q <= 0;", "high"),
])
def test_reset_polarity_comes_from_the_logic(test, polarity):
    # the name `rst_in` ends like an active-low name; only the test decides
    src = f"""module c(input clk, input rst_in, input en, output reg [3:0] q);
      always @(posedge clk) begin if (en) begin {test} else q <= q + 1; end end
    endmodule"""
    assert [r.to_dict() for r in extract_interface(src).resets] == [
        {"name": "rst_in", "polarity": polarity, "kind": "sync"}]


def test_a_port_named_like_a_reset_without_a_reset_test_is_data():
    src = """module c(input clk, input rst_n, input [3:0] d, output reg [3:0] q);
      always @(posedge clk) q <= d ^ {4{rst_n}};
    endmodule"""
    iface = extract_interface(src)
    assert iface.resets == () and "rst_n" in [p.name for p in iface.data_inputs]


def test_unpacked_array_and_dollar_ports_and_partial_timescale():
    src = """module sub(input a, output y); assign y = a; endmodule
`timescale 1ns/1ps
module m(input a$b, input [1:0] c [0:2], output [1:0] z [0:2], output y);
  sub u(.a(a$b), .y(y));
  assign z = c;
endmodule"""
    iface = extract_interface(src, "m")   # only part of the file has a `timescale: legal for Icarus
    ports = {p.name: p for p in iface.ports}
    assert ports["a$b"].width == 1
    assert ports["c"].unpacked == ((0, 2),) and ports["c"].width == 6 and ports["c"].element_width == 2
    assert not ports["z"].packed
    assert ModuleInterface.from_dict(iface.to_dict()) == iface


# ------------------------------------------------------------------------------ strobes and enables
@pytest.mark.parametrize("port, test, body, reset", [
    # a constant loaded while the port is active: a reset only when the name says so
    ("i_wr", "if (i_wr)", "busy <= 1'b1; else busy <= 1'b0;", None),
    ("load", "if (load)", "busy <= 1'b1; else busy <= ~busy;", None),
    ("go_n", "if (!go_n)", "busy <= 1'b0; else busy <= ~busy;", None),
    ("i_reset", "if (i_reset)", "busy <= 1'b0; else busy <= ~busy;", ("high", "sync")),
    ("srst", "if (srst)", "busy <= 1'b0; else busy <= ~busy;", ("high", "sync")),
    ("clear", "if (clear == 1'b1)", "busy <= 1'b0; else busy <= ~busy;", ("high", "sync")),
    ("rst_in", "if (!rst_in)", "busy <= 1'b0; else busy <= ~busy;", ("low", "sync")),
    ("resetn", "if (~resetn)", "busy <= 1'b0; else busy <= ~busy;", ("low", "sync")),
    ("init", "if (init)", "busy <= 1'b0; else busy <= ~busy;", ("high", "sync")),
])
def test_a_synchronous_constant_load_is_a_reset_only_when_named_like_one(port, test, body, reset):
    src = f"module m(input clk, input {port}, output reg busy); always @(posedge clk) {test} {body} endmodule"
    iface = extract_interface(src)
    if reset is None:
        assert iface.resets == ()
        low = test.startswith("if (!")
        assert [s.to_dict() for s in iface.strobes] == [
            {"name": port, "polarity": "low" if low else "high", "clears": True}]
        assert port in [p.name for p in iface.data_inputs]  # still driven as data (pulsed)
    else:
        assert [r.to_dict() for r in iface.resets] == [{"name": port, "polarity": reset[0], "kind": reset[1]}]
        assert iface.strobes == ()


def test_an_asynchronous_reset_is_a_reset_whatever_its_name():
    src = """module m(input clk, input zap, input d, output reg q);
      always @(posedge clk or posedge zap) if (zap) q <= 0; else q <= d;
    endmodule"""
    iface = extract_interface(src)
    assert [r.to_dict() for r in iface.resets] == [{"name": "zap", "polarity": "high", "kind": "async"}]
    assert iface.strobes == ()


@pytest.mark.parametrize("decl, logic, expected", [
    # an enable tested by an if, and an active-low write strobe
    ("input en, input we_n, input [3:0] d", "always @(posedge clk) if (en) q <= d; else if (!we_n) q <= 0;",
     {"en": "high", "we_n": "low"}),
    # through an inverting net and inside a conjunction
    ("input wr_n, input valid, input [3:0] d", "wire w = ~wr_n;\n always @(posedge clk) if (w && valid) q <= d;",
     {"wr_n": "low", "valid": "high"}),
    # a conjunction negated as a whole says nothing about either signal's level
    ("input a, input b, input [3:0] d", "always @(posedge clk) if (!(a && b)) q <= d;", {}),
    # a condition of a combinational process (a next-state decoder) and of a ?: in an assign
    ("input start, input stop, input [3:0] d",
     ("reg [3:0] n; wire [3:0] m = stop ? 4'd0 : n;\n always @* begin n = q; if (start) n = d; end\n"
      " always @(posedge clk) q <= m;"), {"start": "high", "stop": "high"}),
    # no test at all: named like a strobe (active low from the suffix); `data` is not
    ("input i_ce, input rd_n, input data", "always @(posedge clk) q <= {q[1:0], i_ce ^ rd_n, data};",
     {"i_ce": "high", "rd_n": "low"}),
    # through a sub-module port
    ("input ena, input [3:0] d", "sub u(.c(clk), .e(ena), .d(d), .q(q));", {"ena": "high"}),
])
def test_strobes_from_the_logic_first_and_the_name_second(decl, logic, expected):
    sub = ("module sub(input c, input e, input [3:0] d, output reg [3:0] q); "
           "always @(posedge c) if (e) q <= d; endmodule\n")
    src = sub + f"module m(input clk, input rst, {decl}, output reg [3:0] q);\n {logic}\nendmodule"
    iface = extract_interface(src, "m")
    assert {s.name: s.to_dict()["polarity"] for s in iface.strobes} == expected
    assert all(not s.clears for s in iface.strobes)
    assert ModuleInterface.from_dict(iface.to_dict()) == iface


def test_no_strobes_in_a_combinational_design_nor_on_vectors_clocks_or_resets():
    comb = extract_interface("module m(input en, input [1:0] a, output y); assign y = en ? a[0] : a[1]; endmodule")
    assert comb.strobes == ()
    seq = extract_interface("""module m(input clk, input rst_n, input [1:0] en, output reg q);
      always @(posedge clk or negedge rst_n) if (!rst_n) q <= 0; else if (en[0] && clk) q <= en[1];
    endmodule""")
    assert seq.strobes == ()
