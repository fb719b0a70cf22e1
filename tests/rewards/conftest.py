"""Small tasks used by the reward-engine tests."""

from __future__ import annotations

import pytest

from rewards.task import Task

ADDER_REF = """module adder(input [3:0] a, b, output [4:0] s);
  assign s = a + b;
endmodule
"""

ADDER_TB = """module tb;
  reg [3:0] a, b;
  wire [4:0] s, s_ref;
  integer i, pass = 0, total = 0;
  adder dut(.a(a), .b(b), .s(s));
  ref_adder golden(.a(a), .b(b), .s(s_ref));
  initial begin
    for (i = 0; i < 256; i = i + 1) begin
      {a, b} = i; #1;
      total = total + 1;
      if (s === s_ref) pass = pass + 1;
    end
    `VERIRL_REPORT(pass, total)
  end
endmodule
"""

COUNTER_REF = """module counter(input clk, input rst, output reg [3:0] q);
  always @(posedge clk) if (rst) q <= 4'd0; else q <= q + 4'd1;
endmodule
"""

COUNTER_TB = """`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 1;
  wire [3:0] q, q_ref;
  integer cycle, pass = 0, total = 0;
  counter dut(.clk(clk), .rst(rst), .q(q));
  ref_counter golden(.clk(clk), .rst(rst), .q(q_ref));
  always #5 clk = ~clk;
  initial begin
    for (cycle = 0; cycle < 40; cycle = cycle + 1) begin
      @(negedge clk);
      rst = (cycle < 2);
      total = total + 1;
      if (q === q_ref) pass = pass + 1;
    end
    `VERIRL_REPORT(pass, total)
  end
endmodule
"""

# A VerilogEval-style testbench: counts mismatches and prints the official summary line in a final block.
VE_REF = """module RefModule(input [3:0] in, output [3:0] out);
  assign out = ~in;
endmodule
"""

VE_TB = """`timescale 1 ps/1 ps
module tb();
  reg clk = 0;
  initial forever #5 clk = ~clk;
  reg [3:0] in = 0;
  wire [3:0] out_ref, out_dut;
  integer errors = 0, clocks = 0;
  RefModule good1(.in(in), .out(out_ref));
  TopModule top_module1(.in(in), .out(out_dut));
  always @(posedge clk) begin
    clocks = clocks + 1;
    if (out_ref !== out_dut) errors = errors + 1;
    in <= in + 1;
  end
  initial begin
    #400 $finish;
  end
  final begin
    $display("Mismatches: %1d in %1d samples", errors, clocks);
  end
endmodule
"""


def fenced(code: str) -> str:
    return f"Here is the design.\n```verilog\n{code}```\n"


@pytest.fixture
def adder_task() -> Task:
    return Task(id="adder", prompt="4-bit adder", top="adder", reference=ADDER_REF, testbench=ADDER_TB)


@pytest.fixture
def counter_task() -> Task:
    return Task(id="counter", prompt="counter", top="counter", reference=COUNTER_REF, testbench=COUNTER_TB)


@pytest.fixture
def ve_task() -> Task:
    return Task(id="Prob_not", prompt="invert", top="TopModule", reference=VE_REF, testbench=VE_TB,
                harness="verilog-eval", tb_top="tb")
