"""Tasks and completions for the reward-backend tests: every level (format, syntax, simulation, equivalence, PPA),
passing and failing designs, plus a task whose first simulation hangs until its worker is killed."""

from __future__ import annotations

import os
import tempfile

from rewards.hierarchy import RewardConfig
from rewards.sandbox import Limits, SandboxConfig
from rewards.simulate import SimLimits
from rewards.task import Task

ADDER_REF = "module adder(input [3:0] a, b, output [4:0] s);\n  assign s = a + b;\nendmodule\n"
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
# The same testbench, except that its first run creates GATE/started, keeps it open (the test finds the hanging
# simulator by that open file: the sources are gone from its workspace) and then simulates forever (the job hangs on
# its worker until the test kills that worker); every later run, finding the file, checks the design normally.
GATED_TB = ADDER_TB.replace("  initial begin\n", """  integer fd;
  initial begin
    fd = $fopen("GATE/started", "r");
    if (fd == 0) begin
      fd = $fopen("GATE/started", "w");
      forever #1;
    end
    $fclose(fd);
""", 1)
COUNTER_REF = """module counter(input clk, input rst, output reg [3:0] q);
  always @(posedge clk) if (rst) q <= 4'd0; else q <= q + 4'd1;
endmodule
"""


def fenced(code: str) -> str:
    return f"```verilog\n{code}```"


GOOD = fenced(ADDER_REF)
WRONG = fenced(ADDER_REF.replace("a + b", "a - b"))
BIG = fenced("module adder(input [3:0] a, b, output [4:0] s);\n"
             "  wire [4:0] t = a + b; wire [4:0] u = t * 5'd1; assign s = u + 5'd0 + (a & 4'd0);\nendmodule\n")
BROKEN = fenced("module adder(input [3:0] a, b, output [4:0] s)\n  assign s = a +;\nendmodule\n")
COUNTER_GOOD = fenced(COUNTER_REF)
COUNTER_WRONG = fenced(COUNTER_REF.replace("q + 4'd1", "q + 4'd2"))

#: every level on, PPA included
ALL_LEVELS = RewardConfig(weights={"format": 0.1, "syntax": 0.1, "function": 1.0, "ppa": 0.5})


def tasks() -> dict[str, Task]:
    return {
        "adder": Task(id="adder", prompt="4-bit adder", top="adder", reference=ADDER_REF, testbench=ADDER_TB),
        # no testbench: the function level is an equivalence check against the reference
        "adder_eq": Task(id="adder_eq", prompt="4-bit adder", top="adder", reference=ADDER_REF),
        "counter_eq": Task(id="counter_eq", prompt="counter", top="counter", reference=COUNTER_REF),
    }


def batch() -> list[tuple[Task, str]]:
    t = tasks()
    return ([(t["adder"], c) for c in (GOOD, WRONG, BIG, BROKEN, "no code here", GOOD)]
            + [(t["adder_eq"], c) for c in (GOOD, WRONG, BIG)]
            + [(t["counter_eq"], c) for c in (COUNTER_GOOD, COUNTER_WRONG)])


def verdict(score) -> dict:
    """What must be identical wherever a completion is scored (timings are not)."""
    return {"reward": score.reward, "passed": score.passed, "failure": score.failure,
            "components": score.components}


def gate_dir() -> str:
    """A folder the sandboxed tools (user nobody) can write the gate file into."""
    path = tempfile.mkdtemp(prefix="verirl-gate-", dir="/tmp")
    os.chmod(path, 0o777)
    return path


def gated_task(gate: str) -> Task:
    return Task(id="adder_gated", prompt="4-bit adder", top="adder", reference=ADDER_REF,
                testbench=GATED_TB.replace("GATE", gate))


#: for the gated task: no reference run (it would hit the gate first), and limits far above the time the test
#: takes to kill the hanging job's worker, so the hang is never mistaken for the design's timeout
GATED_CONFIG = RewardConfig(validate_reference=False, sim=SimLimits(max_timeout=600.0),
                            sandbox=SandboxConfig(limits=Limits(cpu_seconds=600)))
