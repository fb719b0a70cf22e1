"""``verirl equiv``: is a candidate design equivalent to a golden design, and how strongly?

Prints one JSON object (verdict, strength, method, counterexample, reason, ...) and exits 0 when the
designs are equivalent at least as strongly as ``--min-strength`` (``proven`` > ``bounded`` >
``simulated``), 1 when they are not equivalent (``not_equivalent`` or ``interface_mismatch``), 2
otherwise: an error (a design that does not compile, a formal-only check the model cannot make, a
missing tool) or an equivalence weaker than ``--min-strength``.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--golden", required=True, metavar="A.v", help="golden (reference) Verilog file")
    parser.add_argument("--candidate", required=True, metavar="B.v", help="candidate Verilog file")
    parser.add_argument("--top", default=None, help="module to compare (default: the golden file's only top module)")
    parser.add_argument("--method", choices=("auto", "formal", "simulation"), default="auto",
                        help="auto: formal first, simulation when formal neither proves nor refutes (default)")
    parser.add_argument("--min-strength", choices=("simulated", "bounded", "proven"), default="simulated",
                        help="weakest equivalence that exits 0 (default: simulated)")
    parser.add_argument("--seed", type=int, default=1, help="stimulus seed (default 1)")
    parser.add_argument("--sequences", type=int, default=None, help="sequential: reset-started sequences")
    parser.add_argument("--cycles", type=int, default=None, help="sequential: cycles per sequence")
    parser.add_argument("--vectors", type=int, default=None, help="combinational: random vectors")
    parser.add_argument("--formal-timeout", type=float, default=None, help="seconds for the Yosys runs")
    parser.add_argument("--formal-depth", type=int, default=None, help="most steps of the k-induction from reset")
    parser.add_argument("--log", action="store_true", help="include the tool log tail in the JSON")


def run(args: argparse.Namespace) -> int:
    from rewards.equivalence import EquivConfig, check_equivalence
    from rewards.errors import VerirlRewardError

    sources = {}
    for role in ("golden", "candidate"):
        path = getattr(args, role)
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                sources[role] = fh.read()
        except OSError as exc:
            print(json.dumps({"verdict": "error", "reason": f"cannot read --{role} {path}: {exc.strerror}"}))
            return 2
    overrides = {name: getattr(args, name) for name in ("sequences", "cycles", "vectors", "formal_timeout",
                                                        "formal_depth")
                 if getattr(args, name) is not None}
    try:
        config = EquivConfig(method=args.method, seed=args.seed, min_strength=args.min_strength, **overrides)
        result = check_equivalence(sources["golden"], sources["candidate"], args.top, config=config)
    except (VerirlRewardError, ValueError) as exc:
        print(json.dumps({"verdict": "error", "reason": str(exc)}))
        return 2
    out = result.to_dict()
    if not args.log:
        out.pop("log", None)
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    if result.meets(config.min_strength):
        return 0
    if result.verdict in ("not_equivalent", "interface_mismatch"):
        return 1
    return 2
