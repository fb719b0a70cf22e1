"""Fixtures for the evaluation tests: tiny benchmark checkouts in the original layouts, written here.

* ``ve_dir``: a VerilogEval-v2-shaped checkout with three problems per task (an AND gate, a 4-bit counter and a
  problem whose testbench times out before its stimulus ends, so its reference "fails" like Prob082 on Icarus),
  ``problems.txt``, ``_ifc.txt`` files for code completion and 1-shot ICL prefix files.
* ``rtllm_nested`` / ``rtllm_flat``: an RTLLM-shaped checkout (v2.0 nested layout with spaces in folder names, and
  the v1.1 flat layout) with an adder whose testbench reads a data file by relative path.
"""

from __future__ import annotations

import os
import shutil

import pytest

VE_STIM_COMB = """\
`timescale 1 ps/1 ps
`define OK 12
`define INCORRECT 13

module stimulus_gen (
  input clk,
  output reg a,
  output reg b
);
  initial begin
    {a, b} = 2'b00;
    repeat (40) @(posedge clk) {a, b} <= $random;
    #1 $finish;
  end
endmodule
"""

VE_TB_COMB = """
module tb();
  typedef struct packed {
    int errors;
    int errortime;
    int clocks;
  } stats;
  stats stats1;

  reg clk = 0;
  initial forever #5 clk = ~clk;

  logic a;
  logic b;
  logic out_ref;
  logic out_dut;

  wire tb_match;
  stimulus_gen stim1 (.clk, .*);
  RefModule good1 (.a(a), .b(b), .out(out_ref));
  TopModule top_module1 (.a(a), .b(b), .out(out_dut));

  final begin
    $display("Hint: Total mismatched samples is %1d out of %1d samples\\n", stats1.errors, stats1.clocks);
    $display("Simulation finished at %0d ps", $time);
    $display("Mismatches: %1d in %1d samples", stats1.errors, stats1.clocks);
  end

  assign tb_match = ({out_ref} === ({out_ref} ^ {out_dut} ^ {out_ref}));
  always @(posedge clk, negedge clk) begin
    stats1.clocks++;
    if (!tb_match) begin
      if (stats1.errors == 0) stats1.errortime = $time;
      stats1.errors++;
    end
  end

  initial begin
    #TIMEOUT_PS
    $display("TIMEOUT");
    $finish();
  end
endmodule
"""

VE_COUNTER_TB = """\
`timescale 1 ps/1 ps

module stimulus_gen (
  input clk,
  output reg reset
);
  initial begin
    reset = 1'b1;
    @(posedge clk) reset <= 1'b0;
    repeat (30) @(posedge clk) reset <= ($random % 9) == 0;
    #1 $finish;
  end
endmodule

module tb();
  typedef struct packed {
    int errors;
    int errortime;
    int clocks;
  } stats;
  stats stats1;

  reg clk = 0;
  initial forever #5 clk = ~clk;

  logic reset;
  logic [3:0] q_ref;
  logic [3:0] q_dut;

  wire tb_match;
  stimulus_gen stim1 (.clk, .*);
  RefModule good1 (.clk(clk), .reset(reset), .q(q_ref));
  TopModule top_module1 (.clk(clk), .reset(reset), .q(q_dut));

  final begin
    $display("Mismatches: %1d in %1d samples", stats1.errors, stats1.clocks);
  end

  assign tb_match = ({q_ref} === ({q_ref} ^ {q_dut} ^ {q_ref}));
  always @(posedge clk, negedge clk) begin
    stats1.clocks++;
    if (!tb_match) begin
      if (stats1.errors == 0) stats1.errortime = $time;
      stats1.errors++;
    end
  end

  initial begin
    #1000000
    $display("TIMEOUT");
    $finish();
  end
endmodule
"""

VE_PROBLEMS = {
    "Prob001_and2": {
        "prompt": "\nI would like you to implement a module named TopModule with the following\ninterface. All input "
                  "and output ports are one bit unless otherwise\nspecified.\n\n - input  a\n - input  b\n - output "
                  "out\n\nThe module should compute the logical AND of a and b.\n\n",
        "ifc": "module TopModule (\n  input a,\n  input b,\n  output out\n);\n",
        "ref": "module RefModule (\n  input a,\n  input b,\n  output out\n);\n\n  assign out = a & b;\n\nendmodule\n",
        "test": VE_STIM_COMB + VE_TB_COMB.replace("TIMEOUT_PS", "1000000"),
    },
    "Prob002_count4": {
        "prompt": "\nI would like you to implement a module named TopModule with the following\ninterface.\n\n"
                  " - input  clk\n - input  reset\n - output q (4 bits)\n\nBuild a 4-bit binary counter with a "
                  "synchronous active-high reset to 0.\n",
        "ifc": "module TopModule (\n  input clk,\n  input reset,\n  output reg [3:0] q\n);\n",
        "ref": "module RefModule (\n  input clk,\n  input reset,\n  output reg [3:0] q\n);\n\n"
               "  always @(posedge clk)\n    if (reset) q <= 4'd0;\n    else q <= q + 4'd1;\n\nendmodule\n",
        "test": VE_COUNTER_TB,
    },
    "Prob003_slowtb": {
        "prompt": "\nImplement a module named TopModule that computes out = a & b (inputs a, b; output out).\n",
        "ifc": "module TopModule (\n  input a,\n  input b,\n  output out\n);\n",
        "ref": "module RefModule (\n  input a,\n  input b,\n  output out\n);\n\n  assign out = a & b;\n\nendmodule\n",
        # the timeout fires long before the 40-cycle stimulus ends: the reference fails its own testbench
        "test": VE_STIM_COMB + VE_TB_COMB.replace("TIMEOUT_PS", "50"),
    },
}

ICL_SPEC = ("\nQuestion:\nImplement a hardware module named TopModule that passes its input to its output.\n\n"
            " - input  in_\n - output out\n\nEnclose your code with [BEGIN] and [DONE]. Only output the code "
            "snippet\nand do NOT output anything else.\n\nAnswer:\n[BEGIN]\nmodule TopModule (\n  input in_,\n"
            "  output out\n);\n  assign out = in_;\nendmodule\n[DONE]\n")
ICL_CC = ("\n// Implement the Verilog module based on the following description.\n//\n// Pass the input to the "
          "output.\n\nmodule TopModule (\n  input in_,\n  output out\n);\n\n  assign out = in_;\n\nendmodule\n")

RTLLM_DESC = """Please act as a professional verilog designer.

Implement a 4-bit adder with carry out.

Module name:
    adder4
Input ports:
    a[3:0], b[3:0]: operands.
Output ports:
    sum[4:0]: a + b.

Give me the complete code.
"""
RTLLM_REF = """\
module verified_adder4 (
  input [3:0] a,
  input [3:0] b,
  output [4:0] sum
);
  wire [4:0] c;
  assign c[0] = 1'b0;
  genvar i;
  generate
    for (i = 0; i < 4; i = i + 1) begin : bits
      fa u (.x(a[i]), .y(b[i]), .ci(c[i]), .s(sum[i]), .co(c[i+1]));
    end
  endgenerate
  assign sum[4] = c[4];
endmodule

module fa (input x, input y, input ci, output s, output co);
  assign s = x ^ y ^ ci;
  assign co = (x & y) | (ci & (x ^ y));
endmodule
"""
RTLLM_TB = """\
`timescale 1ns/1ps
module adder4_tb;
  reg [3:0] a, b;
  wire [4:0] sum;
  reg [12:0] vectors [0:15];
  integer i, error;

  adder4 uut (.a(a), .b(b), .sum(sum));

  initial begin
    $readmemh("vectors.txt", vectors);
    error = 0;
    for (i = 0; i < 16; i = i + 1) begin
      {a, b} = vectors[i][12:5];
      #5;
      if (sum !== vectors[i][4:0]) error = error + 1;
    end
    if (error == 0) begin
      $display("===========Your Design Passed===========");
    end else begin
      $display("===========Test completed with %d /16 failures===========", error);
    end
    $finish;
  end
endmodule
"""


def rtllm_vectors() -> str:
    rows = []
    for i in range(16):
        a, b = (i * 7 + 3) % 16, (i * 5 + 11) % 16
        rows.append(f"{(a << 9) | (b << 5) | (a + b):04x}")
    return "\n".join(rows) + "\n"


def write_ve(root: str) -> str:
    for task, dataset in (("spec-to-rtl", "dataset_spec-to-rtl"), ("code-complete", "dataset_code-complete-iccad2023")):
        folder = os.path.join(root, dataset)
        os.makedirs(folder, exist_ok=True)
        for name, files in VE_PROBLEMS.items():
            prompt = files["prompt"]
            if task == "code-complete":
                prompt = prompt.strip().splitlines()[-1] + "\n\n" + files["ifc"]
                with open(os.path.join(folder, f"{name}_ifc.txt"), "w") as fh:
                    fh.write(files["ifc"])
            for part, text in (("prompt.txt", prompt), ("ref.sv", files["ref"]), ("test.sv", files["test"])):
                with open(os.path.join(folder, f"{name}_{part}"), "w") as fh:
                    fh.write(text)
        with open(os.path.join(folder, "problems.txt"), "w") as fh:
            fh.write("\n".join(VE_PROBLEMS) + "\n")
    icl = os.path.join(root, "icl-examples")
    os.makedirs(icl, exist_ok=True)
    with open(os.path.join(icl, "verilog-example-prefix_spec-to-rtl_1-shot.txt"), "w") as fh:
        fh.write(ICL_SPEC)
    with open(os.path.join(icl, "verilog-example-prefix_code-complete-iccad2023_1-shot.txt"), "w") as fh:
        fh.write(ICL_CC)
    with open(os.path.join(root, "README.txt"), "w") as fh:
        fh.write("test fixture\nCommit            : " + "ab" * 20 + "\n")
    return root


def write_rtllm_design(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    for name, text in (("design_description.txt", RTLLM_DESC), ("verified_adder4.v", RTLLM_REF),
                       ("testbench.v", RTLLM_TB), ("vectors.txt", rtllm_vectors()), ("makefile", "all:\n")):
        with open(os.path.join(folder, name), "w") as fh:
            fh.write(text)


@pytest.fixture(scope="session")
def ve_dir(tmp_path_factory) -> str:
    return write_ve(str(tmp_path_factory.mktemp("verilog-eval")))


@pytest.fixture(scope="session")
def rtllm_nested(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("rtllm-v2"))
    write_rtllm_design(os.path.join(root, "Arithmetic", "Adder Units", "adder4"))
    return root


@pytest.fixture(scope="session")
def rtllm_flat(tmp_path_factory, rtllm_nested) -> str:
    root = str(tmp_path_factory.mktemp("rtllm-v1"))
    shutil.copytree(os.path.join(rtllm_nested, "Arithmetic", "Adder Units", "adder4"), os.path.join(root, "adder4"))
    return root


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A tiny causal LM + tokenizer (verirl.models.tiny) that has seen some Verilog."""
    from verirl.models.tiny import build_tiny_model

    texts = [files["ref"] for files in VE_PROBLEMS.values()] + [RTLLM_REF, RTLLM_DESC, ICL_SPEC] * 2
    return build_tiny_model(str(tmp_path_factory.mktemp("tiny")), texts, vocab_size=400, hidden_size=64,
                            num_layers=1, num_heads=1, max_position_embeddings=2048)
