"""``verirl doctor``: what tools and sandbox features this machine has, with a live self-test."""

from __future__ import annotations

import argparse
import json
import platform
import sys

from rewards.errors import VerirlRewardError
from rewards.sandbox import capabilities
from rewards.toolchain import tool_versions

_SELF_TEST = """module top(input [3:0] a, b, output [4:0] s);
  assign s = a + b;
endmodule
"""
_SELF_TB = """module tb;
  reg [3:0] a, b; wire [4:0] s, r; integer i, ok = 0;
  top dut(.a(a), .b(b), .s(s)); ref_top golden(.a(a), .b(b), .s(r));
  initial begin
    for (i = 0; i < 256; i = i + 1) begin {a, b} = i; #1; if (s === r) ok = ok + 1; end
    `VERIRL_REPORT(ok, 256)
  end
endmodule
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON report")


def run(args: argparse.Namespace) -> int:
    from verirl import __version__

    report = {
        "verirl": __version__,
        "python": platform.python_version(),
        "tools": tool_versions(),
        "sandbox": capabilities(),
        "self_test": _self_test(),
    }
    required_missing = [t for t in ("iverilog", "vvp", "yosys") if not report["tools"][t]]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"verirl {report['verirl']} on Python {report['python']}")
        for tool, version in report["tools"].items():
            print(f"  {tool:10s} {version or 'MISSING (apt-get install -y ' + tool.replace('vvp', 'iverilog') + ')'}")
        caps = report["sandbox"]
        print("sandbox:")
        print(f"  resource limits (prlimit): {'yes' if caps['prlimit'] else 'NO - install util-linux'}")
        print(f"  tools run as nobody:       {'yes' if caps['drop_privileges'] else 'no (verirl is not running as root)'}")
        print(f"  private network namespace: {'yes' if caps['isolate_network'] else 'no'}")
        print(f"self-test (compile, simulate, synthesize a 4-bit adder): {report['self_test']}")
    return 1 if required_missing or report["self_test"] != "ok" else 0


def _self_test() -> str:
    from rewards.hierarchy import RewardConfig, score_completion
    from rewards.task import Task

    task = Task(id="doctor", prompt="", top="top", reference=_SELF_TEST, testbench=_SELF_TB)
    try:
        score = score_completion(task, _SELF_TEST, RewardConfig(weights={"format": 1, "syntax": 1,
                                                                          "function": 1, "ppa": 1}))
    except VerirlRewardError as exc:  # pragma: no cover - reported, not raised
        return f"failed: {exc}"
    if score.passed and score.components.get("ppa") == 1.0:
        return "ok"
    return f"failed: {score.failure} {score.detail.get('reason') or score.detail.get('log')}"


