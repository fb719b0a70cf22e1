"""Shared constants and the mock LLM of the data-pipeline tests (imported by name: conftest puts
this folder on sys.path)."""

from __future__ import annotations

import os
import re
import threading
import time

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
CORPUS = os.path.join(FIXTURES, "corpus")
BENCH_VE = os.path.join(FIXTURES, "bench_ve")
BENCH_RTLLM = os.path.join(FIXTURES, "bench_rtllm")


def fence(code: str) -> str:
    return f"Here is the implementation.\n```verilog\n{code.strip()}\n```\n"


#: what the mock LLM answers when asked to regenerate module `top` (by design: some right, some wrong)
REWRITES = {
    # equivalent rewrites
    "adder8": fence("""module adder8(input [7:0] a, input [7:0] b, input cin, output [7:0] sum, output cout);
  assign {cout, sum} = {1'b0, a} + {1'b0, b} + {8'd0, cin};
endmodule"""),
    "up_counter": fence("""module up_counter(input clk, input rst_n, input en, output reg [3:0] count);
  always @(posedge clk or negedge rst_n)
    if (~rst_n) count <= 0;
    else count <= en ? count + 1'b1 : count;
endmodule"""),
    "shreg": fence("""module shreg(input clk, input rst, input din, output reg [3:0] q);
  always @(posedge clk) q <= rst ? 4'b0000 : {q[2:0], din};
endmodule"""),
    "parity_core": fence("""module parity_core(input [7:0] data, output odd);
  assign odd = data[0] ^ data[1] ^ data[2] ^ data[3] ^ data[4] ^ data[5] ^ data[6] ^ data[7];
endmodule"""),
    "alu8": fence("""module alu8(input [2:0] op, input [7:0] a, input [7:0] b, output reg [7:0] y, output zero);
  always @* begin
    y = a >> 1;
    if (op == 3'd0) y = a + b;
    else if (op == 3'd1) y = a - b;
    else if (op == 3'd2) y = a & b;
    else if (op == 3'd3) y = a | b;
    else if (op == 3'd4) y = a ^ b;
    else if (op == 3'd5) y = ~a;
    else if (op == 3'd6) y = {a[6:0], 1'b0};
  end
  assign zero = ~|y;
endmodule"""),
    # wrong ones
    "mux4": fence("""module mux4(input [1:0] sel, input [3:0] d0, input [3:0] d1, input [3:0] d2, input [3:0] d3,
            output [3:0] y);
  assign y = sel == 2'd0 ? d0 : sel == 2'd1 ? d2 : sel == 2'd2 ? d1 : d3;
endmodule"""),
    "popcount8": fence("""module popcount8(input [7:0] data, output [3:0] ones);
  assign ones = data[0] + data[1] + data[2] + data[3] + data[4] + data[5] + data[6];
endmodule"""),
    "parity_top": fence("""module parity_top(input [7:0] data, output parity, output [3:0] ones);
  assign parity = ^data;
  assign ones = data[0] + data[1] + data[2] + data[3] + data[4] + data[5] + data[6] + data[7];
endmodule"""),
    "dual_shift": "I am sorry, but I cannot write this module.",
}
#: modules the round trip keeps with the answers above
EXPECTED_KEPT = {"adder8", "up_counter", "shreg", "parity_core", "alu8"}
EXPECTED_DROPS = {"mux4": "not_equivalent", "popcount8": "not_equivalent", "parity_top": "interface_mismatch",
                  "dual_shift": "no_code"}

_DESCRIBE_TOP = re.compile(r"specification of module `(\w+)`")
_REGEN_TOP = re.compile(r"module named `(\w+)`")


class MockLLM:
    """State of the mock server: request log and switches for failure modes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.requests: list[dict] = []
        self.auth: list[str | None] = []
        self.delay = 0.0
        self.fail_with: int | None = None
        self.reject_tops: set[str] = set()
        self.variants: dict[str, list[str]] = {}
        """top → answers given to choices 0, 1, 2, ... in turn (instead of REWRITES[top])"""
        self.max_choices: int | None = None
        """answer at most this many choices whatever `n` asks (servers that ignore `n`)"""

    def answer(self, body: dict) -> tuple[int, dict]:
        with self.lock:
            self.requests.append(body)
        if self.delay:
            time.sleep(self.delay)
        if self.fail_with:
            return self.fail_with, {"error": {"message": "mock failure"}}
        user = body["messages"][-1]["content"]
        n = int(body.get("n", 1))
        n = n if self.max_choices is None else min(n, self.max_choices)
        describe = _DESCRIBE_TOP.search(user)
        if describe:
            top = describe.group(1)
            text = (f"The module {top} implements the behaviour shown: every output is a function of the inputs "
                    f"(and of its registers for sequential logic), with the port list given.")
        else:
            match = _REGEN_TOP.search(user)
            top = match.group(1) if match else "?"
            text = REWRITES.get(top, "No idea.")
        if top in self.reject_tops:
            return 400, {"error": {"message": "context length exceeded"}}
        texts = [self.variants[top][i % len(self.variants[top])] if top in self.variants else text
                 for i in range(n)]
        return 200, {"id": "mock", "object": "chat.completion", "model": body.get("model"),
                     "choices": [{"index": i, "message": {"role": "assistant", "content": t},
                                  "finish_reason": "stop"} for i, t in enumerate(texts)]}




def make_repo(root, files: dict, links: dict | None = None):
    """Write a fixture repository: ``files`` maps relative paths to text (UTF-8) or bytes; ``links`` maps
    relative link paths to their (relative or absolute) targets. Returns ``root`` as a string."""
    root = str(root)
    for rel, content in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(content if isinstance(content, bytes) else content.encode("utf-8"))
    for rel, target in (links or {}).items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(target, path)
    return root


def jsonl(path) -> list[dict]:
    """The objects of a JSONL file."""
    import json

    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
