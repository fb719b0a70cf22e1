"""Benchmark the equivalence checker: soundness and kills per mutation operator, false alarms, speed.

For every VerilogEval v2 spec-to-RTL problem: the reference (module renamed ``TopModule``), mutants
from every operator of :mod:`rewards.equiv_mutants` (clock edges, derived clocks, resets, X/Z,
pragmas, multiple drivers, sensitivity lists, races, and the classic operator swap / constant change
/ reset polarity flip / branch removal; each mutant must compile with the problem's own testbench),
and equivalent rewrites (the reference itself, a wrapper, a commutative swap, clock aliases,
pragmas the simulator ignores). Every pair is checked with each method; the problem's testbench is
run on the same mutants. Printed per operator: mutants, the testbench's kills, each method's kills
and verdict strengths, kills the testbench makes that a method misses, and **unsound proofs** (a
mutant called ``proven`` although a simulation -- the testbench or the checker's own -- tells it
apart; ``bounded`` mutants a deeper simulation refutes are counted apart: a bound is not a proof);
per rewrite: false alarms and strengths; per method: checks per second.

    python scripts/bench_equiv.py [--bench ../shared/bench/verilog-eval-v2] [--limit N] [--workers 2]
                                  [--per-operator 1] [--operators a,b] [--methods auto,simulation,formal]
                                  [--rtllm ../shared/bench/rtllm/v1.1] [--json out.json]

Timings depend on the machine's load: run it on an idle machine for figures to compare.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import time
from concurrent import futures

KILLED = ("not_equivalent", "interface_mismatch")


def main(argv: list[str] | None = None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", default=os.path.join(here, "..", "..", "shared", "bench", "verilog-eval-v2"))
    parser.add_argument("--limit", type=int, default=0, help="first N problems only (0: all)")
    parser.add_argument("--step", type=int, default=1, help="every STEP-th problem only")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1, help="mutant selection seed")
    parser.add_argument("--per-operator", type=int, default=1, help="mutants per operator and problem")
    parser.add_argument("--operators", default="", help="comma-separated operators (default: all)")
    parser.add_argument("--methods", default="auto,simulation,formal", help="methods to run, comma-separated")
    parser.add_argument("--json", default=None, help="write per-pair results to this JSON file")
    parser.add_argument("--rtllm", default=os.path.join(here, "..", "..", "shared", "bench", "rtllm", "v1.1"),
                        help="RTLLM v1.1 folder: rewrites and mutants of its verified designs ('' to skip)")
    args = parser.parse_args(argv)

    from rewards.equiv_mutants import OPERATORS

    operators = [o for o in args.operators.split(",") if o] or list(OPERATORS)
    unknown = [o for o in operators if o not in OPERATORS]
    if unknown:
        print(f"unknown operator(s) {unknown}; known: {', '.join(OPERATORS)}", file=sys.stderr)
        return 2
    methods = [m for m in args.methods.split(",") if m]
    folder = os.path.join(args.bench, "dataset_spec-to-rtl")
    results: dict[str, list[dict]] = {}
    if os.path.isdir(folder):
        results.update(bench_verilog_eval(folder, args, operators, methods))
    else:
        print(f"benchmark folder not found: {folder} (pass --bench PATH/verilog-eval-v2)", file=sys.stderr)
        if not args.rtllm:
            return 2
    if args.rtllm:
        results["rtllm"] = bench_rtllm(args.rtllm, args, operators)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


def _pairs_for(name: str, gold: str, top: str, args, operators, valid) -> list[dict]:
    from rewards.equiv_mutants import REWRITES, make_mutants
    from rewards.interface import extract_interface

    iface = extract_interface(gold, top)
    pairs = [{"problem": name, "role": "mutant", "family": m.family, "kind": m.kind, "where": m.where,
              "code": m.code} for m in make_mutants(name, gold, iface, top, args.per_operator, args.seed, valid,
                                                     operators)]
    for kind, rewrite in REWRITES.items():
        code = rewrite(gold, iface, top)
        if code is not None:
            pairs.append({"problem": name, "role": "rewrite", "family": "rewrite", "kind": kind, "where": "",
                          "code": code})
    return pairs


def bench_verilog_eval(folder: str, args, operators: list[str], methods: list[str]) -> dict[str, list[dict]]:
    from rewards.equivalence import EquivConfig, check_equivalence
    from rewards.interface import extract_interface
    from rewards.sanitize import rename_modules, sanitize_candidate
    from rewards.simulate import simulate
    from rewards.task import Task

    names = sorted(f[: -len("_ref.sv")] for f in os.listdir(folder) if f.endswith("_ref.sv"))[:: args.step]
    if args.limit:
        names = names[: args.limit]

    def prepare(name: str):
        with open(os.path.join(folder, f"{name}_ref.sv")) as fh:
            ref = fh.read()
        with open(os.path.join(folder, f"{name}_test.sv")) as fh:
            test = fh.read()
        gold = rename_modules(ref, {"RefModule": "TopModule"})
        verdicts: dict[str, str] = {}
        task = Task(id=name, prompt="", top="TopModule", reference=ref, testbench=test, harness="verilog-eval")

        def valid(code: str) -> bool:
            try:
                extract_interface(code, "TopModule")  # the checker's front end must read it too
                sim = simulate(task, sanitize_candidate(code, "TopModule").code, run_timeout=20.0)
            except Exception:  # noqa: BLE001 - a refused construct is not a valid mutant
                return False
            # a testbench kill is a mismatch; a timeout (with no mismatch) is reported apart
            verdicts[code] = "pass" if sim.passed else ("fail" if sim.failure == "mismatch" else "timeout"
                                                         if sim.failure == "timeout" else f"invalid:{sim.failure}")
            return not verdicts[code].startswith("invalid")

        pairs = _pairs_for(name, gold, "TopModule", args, operators, valid)
        for pair in pairs:
            pair["tb"] = verdicts.get(pair["code"])
            pair["gold"] = gold
        return pairs

    t0 = time.monotonic()
    with futures.ThreadPoolExecutor(args.workers) as pool:
        jobs = [p for pairs in pool.map(prepare, names) for p in pairs]
    prep = time.monotonic() - t0
    results: dict[str, list[dict]] = {}
    wall: dict[str, float] = {}
    for method in methods:
        config = EquivConfig(method=method)

        def one(pair, config=config):
            start = time.monotonic()
            res = check_equivalence(pair["gold"], pair["code"], "TopModule", config=config)
            row = {k: v for k, v in pair.items() if k not in ("gold", "code")}
            row.update(verdict=res.verdict, strength=res.strength, method=res.method, fault=res.fault,
                       seconds=time.monotonic() - start, reason=res.reason[:200], hazards=res.hazards[:3])
            return row

        start = time.monotonic()
        with futures.ThreadPoolExecutor(args.workers) as pool:
            results[method] = list(pool.map(one, jobs))
        wall[method] = time.monotonic() - start
    report(results, wall, prep, len(names), f"VerilogEval v2 spec-to-RTL ({len(names)} problems)")
    return results


def report(results: dict[str, list[dict]], wall: dict[str, float], prep: float, problems: int, title: str) -> None:
    any_rows = next(iter(results.values()), [])
    mutants = [r for r in any_rows if r["role"] == "mutant"]
    timeouts = sum(r.get("tb") == "timeout" for r in mutants)
    print(f"{title}: {len(mutants)} mutants, {len(any_rows) - len(mutants)} rewrites, prepared in {prep:.1f} s; "
          f"the testbenches time out on {timeouts} mutants without a mismatch (not counted as kills)")
    # ground truth: a mutant is different when any simulation tells it apart
    different: set[tuple] = set()
    for rows in results.values():
        for r in rows:
            if r["role"] == "mutant" and (r.get("tb") == "fail" or (r["verdict"] in KILLED and r["method"])):
                different.add((r["problem"], r["kind"], r["where"]))
    ops = list(dict.fromkeys(r["kind"] for r in mutants))
    header = f"  {'operator':24s} {'n':>4s} {'tb':>4s}"
    for method in results:
        header += f" | {method[:10]:>10s} kill miss unsound strengths"
    print(header)
    totals = collections.Counter()
    for op in ops + ["ALL"]:
        sel = [r for r in any_rows if r["role"] == "mutant" and (op == "ALL" or r["kind"] == op)]
        keys = {(r["problem"], r["kind"], r["where"]) for r in sel}
        tb_kills = sum(r.get("tb") == "fail" for r in sel)
        line = f"  {op:24s} {len(sel):4d} {tb_kills:4d}"
        for method, rows in results.items():
            mine = [r for r in rows if (r["problem"], r["kind"], r["where"]) in keys and r["role"] == "mutant"]
            killed = sum(r["verdict"] in KILLED for r in mine)
            missed = sum(r.get("tb") == "fail" and r["verdict"] not in KILLED for r in mine)
            unsound = [r for r in mine if r["strength"] == "proven"
                       and (r["problem"], r["kind"], r["where"]) in different]
            shallow = [r for r in mine if r["strength"] == "bounded"
                       and (r["problem"], r["kind"], r["where"]) in different]
            strengths = collections.Counter(r["strength"] or r["verdict"][:6] for r in mine)
            line += f" | {'':10s} {killed:4d} {missed:4d} {len(unsound):7d} " + \
                ",".join(f"{k}:{v}" for k, v in sorted(strengths.items()))
            if op == "ALL":
                totals[(method, "unsound")] = len(unsound)
                totals[(method, "shallow")] = len(shallow)
                for r in unsound[:10]:
                    print(f"      UNSOUND {method}: {r['problem']} {r['kind']} {r['where']} -> {r['strength']}")
            for r in mine:
                if op != "ALL" and r.get("tb") == "fail" and r["verdict"] not in KILLED and method == "auto":
                    print(f"      auto misses a testbench kill: {r['problem']} {r['kind']} {r['where']} -> "
                          f"{r['verdict']}/{r['strength']} {r['reason'][:80]}")
        print(line)
    for method, rows in results.items():
        rewrites = [r for r in rows if r["role"] == "rewrite"]
        false = [r for r in rewrites if r["verdict"] in KILLED]
        undecided = [r for r in rewrites if r["verdict"] == "error"]
        strengths = collections.Counter(r["strength"] for r in rewrites if r["verdict"] == "equivalent")
        times = sorted(r["seconds"] for r in rows)
        print(f"  {method:10s}: rewrites {len(rewrites)}: false alarms {len(false)}, not decided {len(undecided)} "
              f"({', '.join(sorted({r['problem'] for r in undecided})[:4])}), strengths {dict(strengths)}")
        print(f"  {'':10s}  {len(rows)} checks in {wall[method]:.1f} s = {len(rows) / max(wall[method], 1e-9):.1f} "
              f"checks/s; per check median {statistics.median(times):.3f} s, p90 "
              f"{times[int(0.9 * (len(times) - 1))]:.3f} s, max {times[-1]:.2f} s; unsound proofs "
              f"{totals[(method, 'unsound')]}; bounded checks that a deeper simulation refutes "
              f"{totals[(method, 'shallow')]}")
        for r in false[:10]:
            print(f"      FALSE ALARM: {r['problem']} {r['kind']} -> {r['verdict']} {r['reason'][:120]}")


def bench_rtllm(folder: str, args, operators: list[str]) -> list[dict]:
    """RTLLM v1.1 verified designs: rewrites and compiling mutants, auto and simulation."""
    from rewards.equivalence import EquivConfig, check_equivalence
    from rewards.interface import extract_interface, module_names
    from rewards.sanitize import sanitize_candidate
    from rewards.syntax import check_syntax

    if not os.path.isdir(folder):
        print(f"RTLLM folder not found: {folder} (skipped)")
        return []
    jobs = []
    t0 = time.monotonic()
    for design in sorted(os.listdir(folder))[:: args.step]:
        path = os.path.join(folder, design)
        files = sorted(f for f in os.listdir(path) if f.startswith("verified_") and f.endswith(".v")) \
            if os.path.isdir(path) else []
        if not files:
            continue
        with open(os.path.join(path, files[0])) as fh:
            gold = fh.read()
        names = module_names(gold)
        top = extract_interface(gold, f"verified_{design}" if f"verified_{design}" in names else None).name

        def valid(code: str, top=top) -> bool:
            try:
                extract_interface(code, top)
                return check_syntax(sanitize_candidate(code, top).code, top).ok
            except Exception:  # noqa: BLE001
                return False

        for pair in _pairs_for(design, gold, top, args, operators, valid):
            pair.update(gold=gold, top=top)
            jobs.append(pair)
    prep = time.monotonic() - t0
    results: dict[str, list[dict]] = {}
    wall: dict[str, float] = {}
    for method in ("auto", "simulation"):
        config = EquivConfig(method=method)

        def one(pair, config=config):
            start = time.monotonic()
            res = check_equivalence(pair["gold"], pair["code"], pair["top"], config=config)
            row = {k: v for k, v in pair.items() if k not in ("gold", "code", "top")}
            row.update(verdict=res.verdict, strength=res.strength, method=res.method, fault=res.fault,
                       seconds=time.monotonic() - start, reason=res.reason[:200], hazards=res.hazards[:3])
            return row

        start = time.monotonic()
        with futures.ThreadPoolExecutor(args.workers) as pool:
            results[method] = list(pool.map(one, jobs))
        wall[method] = time.monotonic() - start
    report(results, wall, prep, 0, "RTLLM v1.1")
    return results["auto"]


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sys.exit(main())
