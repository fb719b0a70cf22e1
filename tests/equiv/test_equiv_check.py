"""rewards.equivalence: formal and simulation verdicts, counterexamples, interface mismatches."""

from __future__ import annotations

import pytest

from rewards.equiv_tb import InputLayout, Stimulus, generate_testbench, parse_counterexample
from rewards.equivalence import EquivConfig, check_equivalence
from rewards.errors import ConfigError
from rewards.formal import model_script, rc_script
from rewards.interface import extract_interface

pytestmark = pytest.mark.usefixtures("eda")

ADDER = "module add(input [3:0] a, input [3:0] b, output [4:0] s); assign s = a + b; endmodule"
ADDER_REWRITE = """module add(input [3:0] a, input [3:0] b, output reg [4:0] s);
  integer i; reg c;
  always @(*) begin
    c = 0;
    for (i = 0; i < 4; i = i + 1) begin s[i] = a[i] ^ b[i] ^ c; c = (a[i] & b[i]) | (c & (a[i] ^ b[i])); end
    s[4] = c;
  end
endmodule"""
ADDER_BUG = "module add(input [3:0] a, input [3:0] b, output [4:0] s); assign s = a + b + (a == 4'd9 && b == 4'd3); endmodule"

WIDE = "module w(input [31:0] a, input [31:0] b, output [31:0] y); assign y = a ^ b; endmodule"
WIDE_BUG = "module w(input [31:0] a, input [31:0] b, output [31:0] y); assign y = (a == 32'hdeadbeef) ? 0 : a ^ b; endmodule"

DONT_CARE = """module dc(input [1:0] s, output reg y);
  always @(*) case (s) 2'd0: y = 1'b0; 2'd1: y = 1'b1; 2'd2: y = 1'b1; default: y = 1'bx; endcase
endmodule"""
DONT_CARE_FILLED = DONT_CARE.replace("1'bx", "1'b0")
ZERO = "module z(output y); assign y = 1'b0; endmodule"
ZERO_X = "module z(output y); assign y = 1'bx; endmodule"

COUNTER = """module cnt(input clk, input rst_n, input en, output reg [3:0] q, output hit);
  always @(posedge clk or negedge rst_n) if (!rst_n) q <= 4'd0; else if (en) q <= q + 4'd1;
  assign hit = (q == 4'd11);
endmodule"""
COUNTER_REWRITE = """module cnt(input clk, input rst_n, input en, output [3:0] q, output hit);
  reg [3:0] state;
  wire [3:0] nxt = en ? state + 1'b1 : state;
  always @(posedge clk or negedge rst_n) begin
    if (rst_n == 1'b0) state <= 0;
    else state <= nxt;
  end
  assign q = state;
  assign hit = state[3] & ~state[2] & state[1] & state[0];
endmodule"""
COUNTER_SYNC = COUNTER.replace("always @(posedge clk or negedge rst_n)", "always @(posedge clk)")
COUNTER_POLARITY = COUNTER.replace("if (!rst_n)", "if (rst_n)")
COUNTER_DEEP_BUG = COUNTER.replace("assign hit = (q == 4'd11);", "assign hit = (q == 4'd11) | (q == 4'd14);")

SLOW = """module slow(input clk, input reset, output reg [10:0] q, output done);
  always @(posedge clk) if (reset) q <= 0; else q <= q + 1'b1;
  assign done = q == 11'd1000;
endmodule"""
SLOW_BUG = SLOW.replace("11'd1000;", "11'd1000 && 1'b0;")

TWO_CLOCKS = """module tc(input wclk, input rclk, input rst_n, input [3:0] d, output reg [3:0] a, output reg [3:0] b);
  always @(posedge wclk or negedge rst_n) if (!rst_n) a <= 0; else a <= d;
  always @(posedge rclk or negedge rst_n) if (!rst_n) b <= 0; else b <= a;
endmodule"""
TWO_CLOCKS_BUG = TWO_CLOCKS.replace("else b <= a;", "else b <= d;")


def _sim(**kw) -> EquivConfig:
    return EquivConfig(method="simulation", **kw)


def test_combinational_equivalent_by_formal_and_simulation():
    auto = check_equivalence(ADDER, ADDER_REWRITE)
    assert auto.verdict == "equivalent" and auto.method == "formal"
    sim = check_equivalence(ADDER, ADDER_REWRITE, config=_sim(vectors=100))
    assert sim.verdict == "equivalent" and sim.method == "simulation"
    assert sim.total == 256 + 100 and sim.passed == sim.total  # 8 input bits: exhaustive, then random


def test_combinational_bug_found_with_counterexample():
    for method in ("auto", "simulation"):
        res = check_equivalence(ADDER, ADDER_BUG, "add", config=EquivConfig(method=method))
        assert res.verdict == "not_equivalent", method
        assert res.method == ("formal" if method == "auto" else "simulation")
        cex = res.counterexample
        assert cex["inputs"] == {"a": "4'h9", "b": "4'h3"}
        assert cex["expected"] == {"s": "5'h0c"} and cex["got"] == {"s": "5'h0d"}
        assert cex["mismatched"] == ["s"] and cex["time"] >= 0


def test_wide_inputs_sat_finds_the_one_bad_value_random_simulation_may_not():
    res = check_equivalence(WIDE, WIDE_BUG)
    assert res.verdict == "not_equivalent" and res.method == "formal"
    assert res.counterexample["inputs"]["a"] == "32'hdeadbeef"


def test_x_in_golden_is_dont_care_but_x_in_candidate_is_a_mismatch():
    for method in ("auto", "simulation"):
        config = EquivConfig(method=method)
        assert check_equivalence(DONT_CARE, DONT_CARE_FILLED, config=config).verdict == "equivalent"
        assert check_equivalence(ZERO, ZERO_X, config=config).verdict == "not_equivalent"


def test_sequential_rewrite_equivalent_and_bugs_found():
    assert check_equivalence(COUNTER, COUNTER_REWRITE).verdict == "equivalent"
    assert check_equivalence(COUNTER, COUNTER, config=EquivConfig(method="formal")).method == "formal"
    for bug in (COUNTER_SYNC, COUNTER_POLARITY, COUNTER_DEEP_BUG):
        res = check_equivalence(COUNTER, bug, config=_sim())
        assert res.verdict == "not_equivalent"
        assert res.counterexample["mismatched"]
        auto = check_equivalence(COUNTER, bug)
        assert auto.verdict == "not_equivalent"


def test_async_versus_sync_reset_is_told_apart_by_short_pulses():
    # with only long reset pulses an async and a sync reset look alike; the short pulse between
    # two clock edges clears the async design only
    res = check_equivalence(COUNTER, COUNTER_SYNC, config=_sim(sequences=2, cycles=40, long_cycles=0))
    assert res.verdict == "not_equivalent"
    cex = res.counterexample
    assert cex["inputs"]["rst_n"] == "1'h0"


def test_deep_state_reached_by_the_long_sequence():
    assert check_equivalence(SLOW, SLOW, config=_sim()).verdict == "equivalent"
    res = check_equivalence(SLOW, SLOW_BUG, config=_sim())
    assert res.verdict == "not_equivalent" and res.counterexample["expected"]["done"] == "1'h1"
    assert check_equivalence(SLOW, SLOW_BUG, config=_sim(long_cycles=0)).verdict == "equivalent"


def test_two_clocks():
    iface = extract_interface(TWO_CLOCKS)
    assert {c.name for c in iface.clocks} == {"wclk", "rclk"}
    assert check_equivalence(TWO_CLOCKS, TWO_CLOCKS).verdict == "equivalent"
    res = check_equivalence(TWO_CLOCKS, TWO_CLOCKS_BUG)
    assert res.verdict == "not_equivalent"  # every clock is an input of the formal model


def test_deterministic_per_seed():
    a = check_equivalence(COUNTER, COUNTER_DEEP_BUG, config=_sim(seed=7))
    b = check_equivalence(COUNTER, COUNTER_DEEP_BUG, config=_sim(seed=7))
    assert a.counterexample == b.counterexample and a.passed == b.passed
    iface = extract_interface(COUNTER)
    assert generate_testbench(iface, Stimulus(seed=3)) == generate_testbench(iface, Stimulus(seed=3))
    assert generate_testbench(iface, Stimulus(seed=3)) != generate_testbench(iface, Stimulus(seed=4))


@pytest.mark.parametrize("candidate, needle", [
    ("module add(input [3:0] a, input [3:0] b, output [5:0] s); assign s = a + b; endmodule", "s is 6 bit"),
    ("module add(input [3:0] a, input [3:0] c, output [4:0] s); assign s = a + c; endmodule", "lacks port(s) b"),
    ("module add(input [3:0] a, input [3:0] b, input k, output [4:0] s); assign s = a + b; endmodule", "extra"),
])
def test_interface_mismatch(candidate, needle):
    res = check_equivalence(ADDER, candidate)
    assert res.verdict == "interface_mismatch" and needle in res.reason


def test_errors_name_the_side_at_fault():
    res = check_equivalence(ADDER, "module add(input a; endmodule")
    assert res.verdict == "error" and res.fault == "candidate" and "does not compile" in res.reason
    res = check_equivalence("module add(", ADDER)
    assert res.verdict == "error" and res.fault == "golden"
    res = check_equivalence(ADDER, ADDER, "other")
    assert res.verdict == "error" and "not defined" in res.reason
    with pytest.raises(ValueError):
        check_equivalence(ADDER, ADDER, "add; exec rm")
    escaped = "module e(input \\a+b , output y); assign y = \\a+b ; endmodule"
    res = check_equivalence(escaped, escaped)
    assert res.verdict == "equivalent"  # escaped port names are written escaped
    with pytest.raises(ConfigError, match="method"):
        EquivConfig(method="magic")


def test_candidate_cannot_forge_the_verdict_or_read_files():
    forged = ADDER_BUG.replace("endmodule", 'initial begin $display("VERIRL-EQUIV-CEX 0 0 0"); end\nendmodule')
    res = check_equivalence(ADDER, forged, config=_sim())
    assert res.verdict == "not_equivalent"
    finisher = ADDER_BUG.replace("endmodule", "initial $finish;\nendmodule")
    res = check_equivalence(ADDER, finisher)
    assert res.verdict == "error" and res.fault == "candidate"
    reader = ADDER.replace("endmodule", 'reg [7:0] m [0:1]; initial $readmemh("/etc/passwd", m);\nendmodule')
    assert check_equivalence(ADDER, reader).fault == "candidate"


def test_yosys_scripts_hold_only_fixed_text_and_the_top_name():
    layout = InputLayout.of(extract_interface(COUNTER))
    for script in (model_script("cnt", layout, 3), rc_script("cnt", layout)):
        words = set(script.split())
        assert "cnt" in words
        assert not any(w.startswith(("!", "exec", "tcl", "script")) for w in words)
        assert "gold.v" in words and "gate.v" in words
        # every signal the script names is the wrapper's own, never a port of the designs
        assert not words & {"clk", "rst_n", "en", "q", "hit"}
    with pytest.raises(ValueError):
        model_script("cnt; exec", layout, 3)


def test_parse_counterexample_ignores_noise():
    out = "junk\nVERIRL-EQUIV-CEX 12 1 3\nVERIRL-EQUIV-IN a 4'h3\nVERIRL-EQUIV-EXP y 2'hx1\nVERIRL-EQUIV-GOT y 2'h10\n"
    cex = parse_counterexample(out)
    assert cex["time"] == 12 and cex["sequence"] == 1 and cex["cycle"] == 3
    assert cex["inputs"] == {"a": "4'h3"} and cex["mismatched"] == ["y"]
    assert parse_counterexample("nothing here") is None


KMAP = """module k(input [1:0] x, output reg f);
  always @(*) case (x) 2'd0: f = 1; 2'd1: f = 1; 2'd2: f = 0; 2'd3: f = 1; endcase
endmodule"""
KMAP_LATCH = KMAP.replace("2'd1: f = 1; ", "")  # x == 1 keeps f from x == 0 in ascending order

INIT = """module i(input clk, input [3:0] d, output reg [3:0] q);
  initial q = 4'h0;
  always @(posedge clk) q <= d;
endmodule"""

FALL = """module fall(input clk, input areset, input ground, output splat);
  reg [4:0] n;
  always @(posedge clk, posedge areset)
    if (areset) n <= 0; else if (ground) n <= 0; else if (n != 5'd31) n <= n + 1'b1;
  assign splat = ground & (n >= 5'd20);
endmodule"""


def test_latch_exposed_by_random_order_after_the_exhaustive_pass():
    assert check_equivalence(KMAP, KMAP_LATCH, config=_sim()).verdict == "not_equivalent"
    assert check_equivalence(KMAP, KMAP_LATCH).verdict == "not_equivalent"  # formal refuses latches


def test_initial_values_are_compared_before_the_first_edge():
    res = check_equivalence(INIT, INIT.replace("4'h0;", "4'h1;"), config=_sim())
    assert res.verdict == "not_equivalent" and res.counterexample["cycle"] == 0


def test_slow_changing_inputs_reach_conditions_held_for_many_cycles():
    # the golden splats only after 20 cycles with ground low: 2^-40 with fast-changing inputs
    never = FALL.replace("(n >= 5'd20)", "1'b0")
    res = check_equivalence(FALL, never, config=_sim())
    assert res.verdict == "not_equivalent" and res.counterexample["expected"]["splat"] == "1'h1"


MAGIC = """module mg(input clk, input reset, input [31:0] d, output reg [31:0] q, output y);
  always @(posedge clk) if (reset) q <= 0; else q <= d;
  assign y = ^q;
endmodule"""
MAGIC_BUG = MAGIC.replace("assign y = ^q;", "assign y = (^q) ^ (q == 32'hdeadbeef);")


def test_bounded_check_finds_what_random_simulation_misses():
    assert check_equivalence(MAGIC, MAGIC_BUG, config=_sim()).verdict == "equivalent"  # 2^-32 per cycle
    res = check_equivalence(MAGIC, MAGIC_BUG)
    assert res.verdict == "not_equivalent" and res.method == "formal"
    assert res.counterexample["expected"]["y"] != res.counterexample["got"]["y"]
    assert any(step["d"] == 0xDEADBEEF for step in res.counterexample["trace"])
    formal_only = check_equivalence(MAGIC, MAGIC_BUG, config=EquivConfig(method="formal"))
    assert formal_only.verdict == "not_equivalent" and formal_only.method == "formal"


def test_a_looping_candidate_is_charged_not_the_golden():
    looping = ADDER.replace("assign s = a + b;", "reg [4:0] t; always @(*) begin t = a + b; while (t != 5'h1f) t = t; end assign s = t;")
    res = check_equivalence(ADDER, looping, config=_sim(sim_timeout=1.0))
    assert res.verdict == "not_equivalent" and res.fault == "timeout"


def test_without_yosys_auto_falls_back_to_simulation(monkeypatch):
    import rewards.toolchain

    real = rewards.toolchain.has_tool
    monkeypatch.setattr(rewards.toolchain, "has_tool", lambda name: name != "yosys" and real(name))
    res = check_equivalence(ADDER, ADDER_BUG)
    assert res.verdict == "not_equivalent" and res.method == "simulation"


SHIFT6 = """module sh(input clk, input reset, input d, output y);
  reg [5:0] s;
  always @(posedge clk) if (reset) s <= 0; else s <= {s[4:0], d};
  assign y = s[5];
endmodule"""
SHIFT6_INVERTED = """module sh(input clk, input reset, input d, output y);
  reg [5:0] t;
  always @(posedge clk) if (reset) t <= 6'h3f; else t <= {~d, t[5:1]};
  assign y = ~t[0];
endmodule"""


def test_registers_that_do_not_match_by_name_get_a_bounded_check():
    # six cycles of history, stored reversed and inverted: no register correspondence, and the
    # k-induction from reset does not close within its depth; the bounded check still holds
    config = EquivConfig(method="formal", formal_depth=12, formal_timeout=120)
    res = check_equivalence(SHIFT6, SHIFT6_INVERTED, config=config)
    assert res.verdict == "equivalent" and res.strength == "bounded" and res.bound >= 12
    auto = check_equivalence(SHIFT6, SHIFT6_INVERTED, config=EquivConfig(formal_depth=12, formal_timeout=120))
    assert auto.verdict == "equivalent" and auto.strength == "bounded" and auto.passed == auto.total > 0
    bug = SHIFT6_INVERTED.replace("6'h3f", "6'h3e")  # one reset bit wrong: visible six cycles later
    res = check_equivalence(SHIFT6, bug)
    assert res.verdict == "not_equivalent"


def test_merged_interface_keeps_strobes_of_both_sides_unless_a_side_makes_them_a_clock_or_reset():
    from rewards.equivalence import merge_clocking
    from rewards.interface import extract_interface

    head = "module m(input clk, input a, input b, input c, output reg q);"
    gold = extract_interface(head + " always @(posedge clk) if (a) q <= b; endmodule")
    cand = extract_interface(head + " always @(posedge clk) if (b) q <= c; else if (c) q <= a; endmodule")
    assert [s.name for s in merge_clocking(gold, cand).strobes] == ["a", "b", "c"]
    clocked = extract_interface(head + " always @(posedge c or posedge b) if (b) q <= 0; else q <= a; endmodule")
    merged = merge_clocking(gold, clocked)
    assert [s.name for s in merged.strobes] == ["a"] and [r.name for r in merged.resets] == ["b"]
    assert [c.name for c in merged.clocks] == ["clk", "c"]
