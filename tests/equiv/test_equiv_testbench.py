"""The generated equivalence testbench: comparison policy, timing, and designs it must accept."""

from __future__ import annotations

import pytest

from rewards.equiv_tb import InputLayout, Stimulus, generate_testbench, trace_testbench
from rewards.equivalence import EquivConfig, check_equivalence
from rewards.interface import extract_interface

pytestmark = pytest.mark.usefixtures("eda")

SIM = EquivConfig(method="simulation")


def _sim(golden: str, candidate: str, top: str | None = None, **kw):
    return check_equivalence(golden, candidate, top, config=EquivConfig(method="simulation", **kw))


# ------------------------------------------------------------------------------ Z policy, bit by bit
TRI = "module t(input a, input e, output [1:0] y); assign y = {a, e ? a : 1'bz}; endmodule"


@pytest.mark.parametrize("candidate, verdict", [
    (TRI, "equivalent"),                                                                     # zz vs zz
    ("module t(input a, input e, output [1:0] y); assign y[1] = a; bufif1 b(y[0], a, e); endmodule", "equivalent"),
    ("module t(input a, input e, output [1:0] y); assign y = {a, e ? a : 1'b0}; endmodule", "not_equivalent"),
    ("module t(input a, input e, output [1:0] y); assign y = {a, e ? a : 1'bx}; endmodule", "not_equivalent"),
    ("module t(input a, input e, output [1:0] y); assign y = {1'bz, e ? a : 1'bz}; endmodule", "not_equivalent"),
])
def test_a_golden_z_needs_a_candidate_z_bit_by_bit(candidate, verdict):
    for method in ("simulation", "auto"):
        assert check_equivalence(TRI, candidate, config=EquivConfig(method=method)).verdict == verdict


def test_a_golden_x_accepts_any_candidate_bit_and_only_that_bit():
    golden = "module t(input [1:0] a, output [1:0] y); assign y = {a[1], a[0] ? 1'bx : 1'b1}; endmodule"
    assert _sim(golden, "module t(input [1:0] a, output [1:0] y); assign y = {a[1], 1'b1}; endmodule").equivalent
    assert _sim(golden, "module t(input [1:0] a, output [1:0] y); assign y = {a[1], 1'bz}; endmodule").verdict \
        == "not_equivalent"  # the X is only where a[0] = 1
    assert _sim(golden, "module t(input [1:0] a, output [1:0] y); assign y = {~a[1], 1'b1}; endmodule").verdict \
        == "not_equivalent"


# ------------------------------------------------------------------------------ time zero and resets
def test_resets_are_asserted_before_the_first_edge():
    # Icarus' X-optimism: the golden's `if (q)` on an X takes the else branch and looks defined,
    # the re-encoded candidate's ~q stays X; with the reset asserted first both start from 0
    golden = """module r(input clk, input reset, output reg q);
      always @(posedge clk) if (reset) q <= 1'b0; else if (q) q <= 1'b0; else q <= 1'b1;
    endmodule"""
    candidate = """module r(input clk, input reset, output reg q);
      always @(posedge clk) q <= reset ? 1'b0 : ~q;
    endmodule"""
    assert _sim(golden, candidate).equivalent
    assert check_equivalence(golden, candidate).equivalent


def test_an_async_reset_acts_before_the_first_edge_and_a_sync_one_does_not():
    asyn = """module a(input clk, input rst, output reg q);
      always @(posedge clk or posedge rst) if (rst) q <= 1'b0; else q <= ~q;
    endmodule"""
    syn = asyn.replace("always @(posedge clk or posedge rst)", "always @(posedge clk)")
    res = _sim(asyn, syn, sequences=1, cycles=4, long_cycles=0, reset_pulses=0)
    assert res.verdict == "not_equivalent" and res.counterexample["time"] == 2  # the first check, no edge yet


def test_clocks_that_always_coincide_are_also_driven_apart():
    golden = """module two(input c1, input c2, input [3:0] d, output reg [3:0] y);
      always @(posedge c1 or posedge c2) y <= d;
    endmodule"""
    # identical whenever every c2 edge coincides with a c1 edge
    candidate = golden.replace("always @(posedge c1 or posedge c2)", "always @(posedge c1)")
    assert _sim(golden, candidate).verdict == "not_equivalent"


def test_inputs_change_one_group_at_a_time():
    iface = extract_interface("""module m(input c1, input c2, input r, input [3:0] d, output reg [3:0] q);
      always @(posedge c1 or posedge r) if (r) q <= 0; else q <= d;
      always @(posedge c2) q <= ~d;
    endmodule""")
    layout = InputLayout.of(iface)
    assert layout.clocks == (("c1", 0), ("c2", 0)) and layout.resets == (("r", 1),)
    tb = generate_testbench(iface, Stimulus())
    assert "reg [1:0] ck = 2'd0;" in tb          # clocks start at 0 without an edge
    assert "reg [0:0] rs;" in tb                 # resets and data are X until time 1
    # every change is followed by its own check
    assert tb.count("settle;") >= 6


def test_trace_replay_sets_one_step_at_a_time():
    iface = extract_interface("module m(input clk, input rst, input [1:0] d, output reg [1:0] q);"
                              " always @(posedge clk) if (rst) q <= 0; else q <= d; endmodule")
    tb = trace_testbench(iface, [{"ck0": 0, "rs0": 1, "d": 2}, {"ck0": 1, "rs0": 1, "d": 2}])
    assert tb.count("#1 check;") == 2 and "stim = 2'h2;" in tb and "ck[0] = 1'b1;" in tb


# ------------------------------------------------------------------------------ no shared compilation unit
@pytest.mark.parametrize("golden, candidate, wrong", [
    # both define the same package
    ("package p; localparam K = 3; endpackage\nmodule m(input [3:0] a, output [3:0] y); assign y = a + p::K; endmodule",
     "package p; localparam K = 3; endpackage\nmodule m(input [3:0] a, output [3:0] y); import p::*; assign y = a + K; endmodule",
     "package p; localparam K = 2; endpackage\nmodule m(input [3:0] a, output [3:0] y); assign y = a + p::K; endmodule"),
    # both define the same $unit function, typedef and enum values
    (("function automatic [3:0] f(input [3:0] x); f = x ^ 4'h5; endfunction\n"
     "module m(input [3:0] a, output [3:0] y); assign y = f(a); endmodule"),
     ("function automatic [3:0] f(input [3:0] x); f = x ^ 4'h5; endfunction\n"
     "module m(input [3:0] a, output [3:0] y); assign y = f(a); endmodule"),
     ("function automatic [3:0] f(input [3:0] x); f = x ^ 4'h6; endfunction\n"
     "module m(input [3:0] a, output [3:0] y); assign y = f(a); endmodule")),
    (("typedef enum logic [1:0] {A, B, C} st_t;\nmodule m(input [1:0] a, output [1:0] y); st_t s; "
     "always @* if (a == 2'd1) s = B; else s = A; assign y = (s == B) ? 2'd3 : a; endmodule"),
     ("typedef enum logic [1:0] {A, B, C} st_t;\nmodule m(input [1:0] a, output [1:0] y); "
     "assign y = (a == B) ? 2'd3 : a; endmodule"),
     ("typedef enum logic [1:0] {B, A, C} st_t;\nmodule m(input [1:0] a, output [1:0] y); "
     "assign y = (a == B) ? 2'd3 : a; endmodule")),
    # the golden's `default_nettype none must not reach the candidate's implicit net
    ("`default_nettype none\nmodule m(input wire a, input wire b, output wire y); assign y = a & b; endmodule",
     "module m(input a, input b, output y); assign t = a & b; assign y = t; endmodule",
     "module m(input a, input b, output y); assign t = a | b; assign y = t; endmodule"),
    # a `timescale that covers only part of a file, and macros of the golden design
    ("`define W 4\n`timescale 1ns/1ps\nmodule m(input [`W-1:0] a, output [`W-1:0] y); assign y = ~a; endmodule",
     ("module sub(input [3:0] a, output [3:0] y); assign y = ~a; endmodule\n`timescale 1ns/1ps\n"
     "module m(input [3:0] a, output [3:0] y); sub u(.a(a), .y(y)); endmodule"),
     ("`ifdef W\nmodule m(input [3:0] a, output [3:0] y); assign y = ~a; endmodule\n`else\n"
     "module m(input [3:0] a, output [3:0] y); assign y = a; endmodule\n`endif\n")),
])
def test_golden_and_candidate_share_no_compilation_state(golden, candidate, wrong):
    for method in ("simulation", "auto"):
        config = EquivConfig(method=method)
        res = check_equivalence(golden, candidate, "m", config=config)
        assert res.verdict == "equivalent", (method, res.reason, res.log[-400:])
        assert check_equivalence(golden, wrong, "m", config=config).verdict == "not_equivalent", method


def test_dollar_identifiers_in_ports_are_driven_and_compared():
    # the canonical text (rewards.sanitize) refuses `$` inside identifiers as defence in depth, so
    # check_equivalence reports such a design as refused; the testbench itself handles the names
    from rewards.equivalence import simulate_equivalence

    golden = "module m(input a$b, input c, output y$z); assign y$z = a$b & c; endmodule"
    same = "module m(input a$b, input c, output y$z); assign y$z = ~(~a$b | ~c); endmodule"
    wrong = "module m(input a$b, input c, output y$z); assign y$z = a$b | c; endmodule"
    iface = extract_interface(golden)
    assert simulate_equivalence(golden, same, iface, SIM).verdict == "equivalent"
    assert simulate_equivalence(golden, wrong, iface, SIM).verdict == "not_equivalent"
    res = check_equivalence(golden, same)
    assert res.verdict in ("equivalent", "error")
    if res.verdict == "error":
        assert res.fault == "golden" and "not allowed" in res.reason


@pytest.mark.parametrize("golden, same, wrong", [
    ("module m(input \\a+b , input c, output y); assign y = \\a+b  ^ c; endmodule",
     "module m(input \\a+b , input c, output y); assign y = c ^ \\a+b ; endmodule",
     "module m(input \\a+b , input c, output y); assign y = c; endmodule"),
    ("module m(input [1:0] c [0:2], output [1:0] z [0:2]); assign z = c; endmodule",
     ("module m(input [1:0] c [0:2], output [1:0] z [0:2]); assign z[0] = c[0]; assign z[1] = c[1]; "
     "assign z[2] = c[2]; endmodule"),
     ("module m(input [1:0] c [0:2], output [1:0] z [0:2]); assign z[0] = c[0]; assign z[1] = c[2]; "
     "assign z[2] = c[1]; endmodule")),
    ("module m(input a, input en, inout io, output y); assign io = en ? a : 1'bz; assign y = io; endmodule",
     "module m(input a, input en, inout io, output y); bufif1 b(io, a, en); assign y = io; endmodule",
     "module m(input a, input en, inout io, output y); assign io = a; assign y = io; endmodule"),
])
def test_unusual_but_legal_ports(golden, same, wrong):
    assert check_equivalence(golden, same, "m").verdict == "equivalent"
    assert check_equivalence(golden, wrong, "m").verdict == "not_equivalent"


def test_partial_credit_counts_sequences():
    golden = """module c(input clk, input rst, input en, output reg [3:0] q);
      always @(posedge clk) if (rst) q <= 0; else if (en) q <= q + 1;
    endmodule"""
    deep = golden.replace("q <= q + 1;", "q <= (q == 4'd12) ? 4'd0 : q + 1;")
    res = check_equivalence(golden, deep, config=EquivConfig(method="simulation", partial_credit=True))
    assert res.verdict == "not_equivalent" and res.sequences == 9
    assert 0 <= res.sequences_passed < res.sequences and res.sequence_fraction < 1.0


# ------------------------------------------------------------------------------ strobes
# Before, a strobe that loads a constant (`if (i_wr) busy <= 1;`) was taken for a synchronous reset:
# held inactive except for a few reset pulses, so a bug that needs many writes was never reached.
WRITES = """module wc(input clk, input rst, input {p}, input [3:0] d, output reg busy, output reg [3:0] last,
  output full);
  reg [2:0] n;
  always @(posedge clk) if ({t}) busy <= 1'b1; else busy <= 1'b0;
  always @(posedge clk) if (rst) n <= 0; else if ({t}) begin n <= n + 1; last <= d; end
  assign full = {full};
endmodule"""


@pytest.mark.parametrize("port, test", [("i_wr", "i_wr"), ("wr_n", "!wr_n"), ("push", "push == 1'b1"),
                                        ("wen", "~wen")])
def test_a_strobe_that_loads_a_constant_is_exercised_not_held_like_a_reset(port, test):
    golden = WRITES.format(p=port, t=test, full="(n == 3'd7)")
    wrong = WRITES.format(p=port, t=test, full="(n == 3'd7) & ~(n[0] & n[1] & n[2])")  # after 7 writes
    result = _sim(golden, wrong)
    assert result.verdict == "not_equivalent"
    assert [r["name"] for r in result.interface["resets"]] == ["rst"]
    assert [s["name"] for s in result.interface["strobes"]] == [port]
    assert _sim(golden, golden).equivalent and check_equivalence(golden, golden).equivalent


# A one-shot: a one-cycle `start` runs 24 cycles; a start while busy is an error until reset. Its end
# is reached only by a single-cycle pulse followed by 24 quiet cycles, which random or slowly
# changing levels (the only stimulus before strobes were pulsed) almost never give.
ONE_SHOT = """module os(input clk, input rst, input {p}, output reg busy, output reg done);
  reg [4:0] n; reg err;
  always @(posedge clk)
    if (rst) begin busy <= 0; n <= 0; done <= 0; err <= 0; end
    else if ({t}) begin if (busy) err <= 1'b1; busy <= ~busy & ~err; n <= 0; done <= 0; end
    else if (busy) begin n <= n + 1; if (n == 5'd23) begin busy <= 0; done <= {d}; end end
endmodule"""


@pytest.mark.parametrize("port, test, seed", [("start", "start", 1), ("start", "start", 2),
                                              ("go_n", "!go_n", 3), ("i_stb", "i_stb == 1'b1", 4)])
def test_strobes_are_pulsed_with_quiet_stretches_at_their_active_level(port, test, seed):
    golden, wrong = (ONE_SHOT.format(p=port, t=test, d=d) for d in ("1'b1", "1'b0"))
    assert _sim(golden, wrong, seed=seed).verdict == "not_equivalent"
    assert _sim(golden, golden, seed=seed).equivalent


def test_the_testbench_pulses_strobes_and_holds_clearing_ones_at_the_start():
    iface = extract_interface("""module m(input clk, input rst, input we_n, input ld, input [1:0] d,
        output reg [1:0] q, output reg f);
      always @(posedge clk) if (rst) q <= 0; else if (!we_n) q <= d;
      always @(posedge clk) if (ld) f <= 1'b1; else f <= 1'b0;
    endmodule""")
    assert [(s.name, s.active_low, s.clears) for s in iface.strobes] == [("we_n", True, False), ("ld", False, True)]
    tb = generate_testbench(iface, Stimulus())
    layout = InputLayout.of(iface)
    we, ld = layout.data.index(("we_n", 0)), layout.data.index(("ld", 0))
    assert f"stim[{we}] = sp[0] ? 1'b0 : 1'b1;" in tb and f"stim[{we}] = 1'b0; sp[0] = 2;" in tb
    assert f"stim[{ld}] = sp[1] ? 1'b1 : 1'b0;" in tb
    assert f"if (slot < open_until) stim[{ld}] = 1'b1;" in tb and f"open_until) stim[{we}]" not in tb
    comb = extract_interface("module c(input en, input [1:0] a, output y); assign y = en ? a[0] : a[1]; endmodule")
    assert "strobe_mask" not in generate_testbench(comb, Stimulus())
