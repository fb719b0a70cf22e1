"""Small tasks used by the reward-engine tests."""

from __future__ import annotations

import dataclasses

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


# ------------------------------------------------------------------------------------------------------------------
# One design on the three harnesses, for the adversarial suites (tests/rewards/test_adversarial_*.py).
# The design is a parameterised adder; the verirl and RTLLM testbenches override its width parameter (as RTLLM's
# asyn_fifo and multi_pipe_4bit do), the VerilogEval one does not (as VerilogEval never does).

ADDW_BODY = "  assign s = a + b;\n"


def addw_header(top: str, default: int = 4) -> str:
    return f"module {top} #(parameter W = {default}) (input [W-1:0] a, b, output [W:0] s);\n"


def addw_module(top: str, body: str = ADDW_BODY, default: int = 4) -> str:
    return addw_header(top, default) + body + "endmodule\n"


ADDW_VERIRL_TB = """module tb;
  reg [3:0] a, b;
  wire [4:0] s, s_ref;
  integer i, pass = 0, total = 0;
  event done;
  addw #(.W(4)) dut(.a(a), .b(b), .s(s));
  ref_addw #(.W(4)) golden(.a(a), .b(b), .s(s_ref));
  task note; total = total; endtask
  initial begin : stim
    for (i = 0; i < 256; i = i + 1) begin
      {a, b} = i; #1;
      total = total + 1;
      if (s === s_ref) pass = pass + 1;
    end
    `VERIRL_REPORT(pass, total)
  end
endmodule
"""

ADDW_VE_TB = """`timescale 1 ps/1 ps
`define OK 12
`define INCORRECT 13

module stimulus_gen(input clk, output reg [3:0] a, output reg [3:0] b);
  initial begin a = 0; b = 0; end
  always @(posedge clk) {a, b} <= {a, b} + 8'd1;
  task wavedrom_start(input [511:0] title = ""); endtask
endmodule

module tb();
  reg clk = 0;
  initial forever #5 clk = ~clk;
  wire [3:0] a, b;
  wire [4:0] s_ref, s_dut;
  integer errors = 0, clocks = 0;
  event done;
  task note; errors = errors; endtask
  stimulus_gen stim1(.clk(clk), .a(a), .b(b));
  RefModule good1(.a(a), .b(b), .s(s_ref));
  TopModule top_module1(.a(a), .b(b), .s(s_dut));
  always @(negedge clk) begin
    clocks = clocks + 1;
    if (s_ref !== s_dut) errors = errors + 1;
  end
  initial begin : stim
    #2570 $finish;
  end
  final begin
    $display("Hint: Total mismatched samples is %1d out of %1d samples", errors, clocks);
    $display("Mismatches: %1d in %1d samples", errors, clocks);
  end
endmodule
"""

ADDW_RTLLM_TB = """`timescale 1ns/1ps
module tb_addw;
  reg [3:0] a, b;
  wire [4:0] s;
  integer i, errors = 0;
  event done;
  addw #(.W(4)) uut(.a(a), .b(b), .s(s));
  task note; errors = errors; endtask
  initial begin : stim
    for (i = 0; i < 256; i = i + 1) begin
      {a, b} = i; #1;
      if (s !== a + b) begin
        errors = errors + 1;
        $display("Error: a=%0d b=%0d s=%0d", a, b, s);
      end
    end
    if (errors == 0) $display("===========Your Design Passed===========");
    else $display("=========== Error ===========");
    $finish;
  end
endmodule
"""


@dataclasses.dataclass(frozen=True)
class Harness:
    """A task and the testbench names an attacker would aim at."""

    name: str
    task: Task
    tb: str  # the testbench's root module
    dut: str  # the testbench's instance of the candidate
    counter: str  # a testbench variable the verdict depends on
    golden_out: str | None  # the reference's output, as a hierarchical path
    ref_module: str | None  # the reference's module name in the simulation
    overrides: bool  # whether the testbench overrides the design's parameters

    @property
    def top(self) -> str:
        return self.task.top

    def source(self, body: str = ADDW_BODY, default: int = 4, extra: str = "") -> str:
        return addw_module(self.top, body, default) + extra

    def design(self, body: str = ADDW_BODY, default: int = 4, extra: str = "") -> str:
        """The design as a model would answer: in a fenced block."""
        return "```verilog\n" + self.source(body, default, extra) + "```\n"


def make_harness(name: str) -> Harness:
    if name == "verirl":
        task = Task(id="addw", prompt="", top="addw", reference=addw_module("addw"), testbench=ADDW_VERIRL_TB)
        return Harness(name, task, "tb", "dut", "pass", "tb.golden.s", "ref_addw", True)
    if name == "verilog-eval":
        task = Task(id="Prob900_addw", prompt="", top="TopModule", reference=addw_module("RefModule"),
                    testbench=ADDW_VE_TB, harness="verilog-eval", tb_top="tb")
        return Harness(name, task, "tb", "top_module1", "errors", "tb.good1.s", "RefModule", False)
    if name == "rtllm":
        task = Task(id="addw_rtllm", prompt="", top="addw", reference=addw_module("addw"), testbench=ADDW_RTLLM_TB,
                    harness="rtllm")
        return Harness(name, task, "tb_addw", "uut", "errors", None, None, True)
    raise ValueError(name)


HARNESSES = ("verirl", "verilog-eval", "rtllm")


@pytest.fixture(params=HARNESSES)
def harness(request) -> Harness:
    return make_harness(request.param)
