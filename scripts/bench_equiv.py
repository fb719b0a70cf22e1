"""Benchmark the equivalence checker on VerilogEval v2 spec-to-RTL references and their mutants.

For every problem: the reference (module renamed ``TopModule``), two single-point mutants of it
(operator swap, constant change, reset polarity flip, branch removal; each mutant must compile with
the problem's own testbench), and two equivalent rewrites (a wrapper that adds a level of hierarchy,
and a swap of the operands of a commutative operator where the source has one). Every pair is
checked by simulation only, by formal only, and by the default ``auto`` method; the problem's own
testbench is run on the same mutants. Printed: the mutation score of each method next to the
testbenches' kills, false alarms on equivalent rewrites, and checks per second by method.

    python scripts/bench_equiv.py [--bench ../shared/bench/verilog-eval-v2] [--limit N] [--workers 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import sys
import time
from concurrent import futures

SWAPS = {"&": "|", "|": "&", "^": "&", "+": "-", "-": "+", "==": "!=", "!=": "==", "<": ">", ">": "<",
         ">=": "<", "&&": "||", "||": "&&", "<<": ">>", ">>": "<<", "*": "+"}
COMMUTATIVE = ("&", "|", "^", "+", "==", "!=", "&&", "||")
MUTATION_KINDS = ("operator_swap", "constant_change", "reset_polarity_flip", "branch_removal")


@dataclasses.dataclass
class Mutant:
    kind: str
    where: str
    code: str


def _body_tokens(tokens):
    """Indices of significant tokens in module bodies, outside bracketed ranges (``[W-1:0]``)."""
    from rewards.lexer import COMMENT, SPACE

    out = []
    depth = 0
    in_header = False
    for i, tok in enumerate(tokens):
        if tok.kind in (SPACE, COMMENT):
            continue
        if tok.text == "module":
            in_header = True
        elif in_header and tok.text == ";":
            in_header = False
            continue
        if tok.text == "[":
            depth += 1
        elif tok.text == "]":
            depth -= 1
        elif depth == 0 and not in_header:
            out.append(i)
    return out


def _line(source: str, pos: int) -> int:
    return source.count("\n", 0, pos) + 1


def mutation_sites(source: str, reset_names: set[str]) -> dict[str, list[tuple[str, str]]]:
    """For each mutation kind, the possible mutants as ``(where, code)``."""
    from rewards.lexer import NUMBER, tokenize

    tokens = tokenize(source)
    body = _body_tokens(tokens)
    sig = [i for i, t in enumerate(tokens) if t.significant]
    nxt = {sig[k]: sig[k + 1] for k in range(len(sig) - 1)}
    prv = {sig[k + 1]: sig[k] for k in range(len(sig) - 1)}

    def rebuild(repl: dict[int, str]) -> str:
        return "".join(repl.get(i, t.text) for i, t in enumerate(tokens))

    sites: dict[str, list[tuple[str, str]]] = {k: [] for k in MUTATION_KINDS}
    for i in body:
        tok = tokens[i]
        at = f"line {_line(source, tok.start)}"
        if tok.text in SWAPS and tokens[prv.get(i, i)].text not in ("@", "#"):
            if tok.text == "<=" or (tok.text in ("-", "+") and tokens[prv.get(i, i)].text in ("(", "=", ",")):
                continue
            sites["operator_swap"].append((f"{at}: {tok.text} -> {SWAPS[tok.text]}", rebuild({i: SWAPS[tok.text]})))
        elif tok.kind == NUMBER and tokens[prv.get(i, i)].text != "#":
            new = _bump(tok.text)
            if new is not None:
                sites["constant_change"].append((f"{at}: {tok.text} -> {new}", rebuild({i: new})))
        elif tok.text in reset_names and tokens[prv.get(i, i)].text in ("(", "!", "~"):
            before = prv[i]
            after = nxt.get(i)
            if after is None or tokens[after].text not in (")", "||", "&&"):
                continue
            if tokens[before].text in ("!", "~"):
                sites["reset_polarity_flip"].append((f"{at}: {tokens[before].text}{tok.text} -> {tok.text}",
                                                     rebuild({before: ""})))
            elif _is_condition(tokens, prv, before):
                sites["reset_polarity_flip"].append((f"{at}: {tok.text} -> !{tok.text}",
                                                     rebuild({i: "!" + tok.text})))
        elif tok.text == "else":
            end = _statement_end(tokens, sig, sig.index(i) + 1)
            if end is not None:
                repl = {k: "" for k in range(i, end + 1)}
                sites["branch_removal"].append((f"{at}: else branch removed", rebuild(repl)))
    return sites


def _is_condition(tokens, prv, open_paren: int) -> bool:
    keyword = prv.get(open_paren)
    return keyword is not None and tokens[keyword].text in ("if",)


def _statement_end(tokens, sig, k: int) -> int | None:
    """Token index of the end of the statement starting at significant position ``k``."""
    if k >= len(sig):
        return None
    first = tokens[sig[k]].text
    if first == "begin":
        depth = 0
        for j in range(k, len(sig)):
            text = tokens[sig[j]].text
            if text == "begin":
                depth += 1
            elif text == "end":
                depth -= 1
                if depth == 0:
                    return sig[j]
        return None
    if first in ("if", "case", "casez", "casex", "for", "fork"):
        return None
    for j in range(k, len(sig)):
        text = tokens[sig[j]].text
        if text == ";":
            return sig[j]
        if text in ("begin", "end", "endcase", "if"):
            return None
    return None


def _bump(text: str) -> str | None:
    """A different constant of the same size: flip/increment the last digit."""
    if text.startswith("'"):
        body = text.lstrip("'")
        signed = body[:1] in ("s", "S")
        base = body[1:2] if signed else body[:1]
        digits = body[2:] if signed else body[1:]
        prefix = text[: len(text) - len(digits)]
        if not digits or digits[-1].lower() in "xz?_":
            return None
        radix = {"b": 2, "o": 8, "d": 10, "h": 16}.get(base.lower())
        if radix is None:
            return None
        last = int(digits[-1], radix)
        new = (last + 1) % radix if last + 1 < radix else last - 1
        return prefix + digits[:-1] + format(new, "x" if radix == 16 else "o" if radix == 8 else "d")
    if text.isdigit():
        return str(int(text) + 1)
    return None


def make_mutants(name: str, source: str, reset_names: set[str], count: int, seed: int, valid) -> list[Mutant]:
    """Up to ``count`` mutants of different kinds (random site per kind) accepted by ``valid(code)``."""
    rng = random.Random(f"{seed}:{name}")
    sites = mutation_sites(source, reset_names)
    kinds = [k for k in MUTATION_KINDS if sites[k]]
    rng.shuffle(kinds)
    chosen: list[Mutant] = []
    for kind in kinds * 2:  # a second round when fewer kinds than wanted apply
        if len(chosen) >= count:
            break
        options = [s for s in sites[kind] if s[1] != source and s[1] not in {m.code for m in chosen}]
        rng.shuffle(options)
        for where, code in options[:4]:
            if valid(code):
                chosen.append(Mutant(kind, where, code))
                break
    return chosen


def wrapper_rewrite(source: str, iface, top: str) -> str:
    """An equivalent design with one more level of hierarchy (ports connected by name)."""
    from rewards.sanitize import rename_modules

    inner = rename_modules(source, {top: f"{top}_core"})
    decls = []
    for p in iface.ports:
        rng = f"[{p.width - 1}:0] " if p.width > 1 else ""
        decls.append(f"  {p.direction} wire {rng}{p.name}")
    conns = ", ".join(f".{p.name}({p.name})" for p in iface.ports)
    return inner + f"\nmodule {top} (\n" + ",\n".join(decls) + f"\n);\n  {top}_core u_core ({conns});\nendmodule\n"


def commutative_rewrite(source: str) -> str | None:
    """Swap the two operands of the first commutative operator whose operands are single identifiers."""
    from rewards.lexer import IDENT, tokenize

    tokens = tokenize(source)
    sig = [i for i, t in enumerate(tokens) if t.significant]
    body = set(_body_tokens(tokens))
    safe = {"(", ")", "=", ";", ",", "?", ":", "<=", "begin"}
    for k in range(2, len(sig) - 2):
        op = tokens[sig[k]]
        if op.text not in COMMUTATIVE or sig[k] not in body:
            continue
        left, right = tokens[sig[k - 1]], tokens[sig[k + 1]]
        before, after = tokens[sig[k - 2]].text, tokens[sig[k + 2]].text
        if left.kind == IDENT and right.kind == IDENT and before in safe and after in safe and before != ":":
            repl = {sig[k - 1]: right.text, sig[k + 1]: left.text}
            return "".join(repl.get(i, t.text) for i, t in enumerate(tokens))
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--bench", default=os.path.join(here, "..", "..", "shared", "bench", "verilog-eval-v2"))
    parser.add_argument("--limit", type=int, default=0, help="first N problems only (0: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1, help="mutant selection seed")
    parser.add_argument("--json", default=None, help="write per-pair results to this JSON file")
    parser.add_argument("--rtllm", default=os.path.join(here, "..", "..", "shared", "bench", "rtllm", "v1.1"),
                        help="RTLLM v1.1 folder: self-equivalence, rewrites and mutants of its verified designs "
                        "with the auto method ('' to skip)")
    args = parser.parse_args(argv)

    from rewards.equivalence import EquivConfig, check_equivalence
    from rewards.interface import extract_interface
    from rewards.sanitize import rename_modules, sanitize_candidate
    from rewards.simulate import simulate
    from rewards.task import Task

    folder = os.path.join(args.bench, "dataset_spec-to-rtl")
    if not os.path.isdir(folder):
        print(f"benchmark folder not found: {folder} (pass --bench PATH/verilog-eval-v2)", file=sys.stderr)
        return 2
    names = sorted(f[: -len("_ref.sv")] for f in os.listdir(folder) if f.endswith("_ref.sv"))
    if args.limit:
        names = names[: args.limit]

    def tb_verdict(name: str, ref: str, test: str, code: str) -> str:
        task = Task(id=name, prompt="", top="TopModule", reference=ref, testbench=test, harness="verilog-eval")
        sim = simulate(task, sanitize_candidate(code, "TopModule").code, run_timeout=20.0)
        if sim.passed:
            return "pass"
        return "fail" if sim.failure in ("mismatch", "timeout") else f"invalid:{sim.failure}"

    # 1. problems, mutants (checked against the problem's own testbench), rewrites
    t0 = time.monotonic()
    problems = []

    def prepare(name: str):
        with open(os.path.join(folder, f"{name}_ref.sv")) as fh:
            ref = fh.read()
        with open(os.path.join(folder, f"{name}_test.sv")) as fh:
            test = fh.read()
        gold = rename_modules(ref, {"RefModule": "TopModule"})
        iface = extract_interface(gold, "TopModule")
        tb_kills: dict[str, str] = {}

        def valid(code: str) -> bool:
            verdict = tb_verdict(name, ref, test, code)
            tb_kills[code] = verdict
            return not verdict.startswith("invalid")

        mutants = make_mutants(name, gold, {r.name for r in iface.resets}, 2, args.seed, valid)
        pairs = [("mutant", m.kind, m.where, m.code, tb_kills[m.code]) for m in mutants]
        pairs.append(("rewrite", "self", "", gold, None))
        pairs.append(("rewrite", "wrapper", "", wrapper_rewrite(gold, iface, "TopModule"), None))
        swapped = commutative_rewrite(gold)
        if swapped is not None:
            pairs.append(("rewrite", "commutative", "", swapped, None))
        return name, gold, iface, pairs

    with futures.ThreadPoolExecutor(args.workers) as pool:
        problems = list(pool.map(prepare, names))
    prep_seconds = time.monotonic() - t0

    # 2. the checks, by method
    jobs = [(name, gold, iface, pair) for name, gold, iface, pairs in problems for pair in pairs]
    results: dict[str, list[dict]] = {}
    wall: dict[str, float] = {}
    for method in ("simulation", "formal", "auto"):
        config = EquivConfig(method=method)

        def one(job, config=config):
            name, gold, iface, (role, kind, where, code, tb) = job
            start = time.monotonic()
            res = check_equivalence(gold, code, "TopModule", config=config)
            return {"problem": name, "role": role, "kind": kind, "where": where, "tb": tb, "verdict": res.verdict,
                    "method": res.method, "seconds": time.monotonic() - start, "reason": res.reason[:200],
                    "fault": res.fault,
                    "sequential": iface.sequential}

        start = time.monotonic()
        with futures.ThreadPoolExecutor(args.workers) as pool:
            results[method] = list(pool.map(one, jobs))
        wall[method] = time.monotonic() - start

    # 3. report
    mutants = [r for r in results["auto"] if r["role"] == "mutant"]
    n_mut = len(mutants)
    tb_killed = sum(r["tb"] == "fail" for r in mutants)
    kinds = ", ".join(f"{k}={sum(r['kind'] == k for r in mutants)}" for k in MUTATION_KINDS)
    print(f"VerilogEval v2 spec-to-RTL: {len(problems)} problems, {n_mut} valid mutants (kinds: {kinds}), "
          f"prepared in {prep_seconds:.1f} s")
    print(f"  benchmark testbenches kill {tb_killed}/{n_mut} of these mutants "
          "(the issue quotes 223/249 on its own mutant set)")
    for method in ("simulation", "formal", "auto"):
        rows = results[method]
        muts = [r for r in rows if r["role"] == "mutant"]
        rewrites = [r for r in rows if r["role"] == "rewrite"]
        killed = sum(r["verdict"] in ("not_equivalent", "interface_mismatch") for r in muts)
        undecided = sum(r["verdict"] == "error" for r in muts)
        false_alarms = [r for r in rewrites if r["verdict"] in ("not_equivalent", "interface_mismatch")]
        unsupported = [r for r in rewrites if r["verdict"] == "error"]
        missed_vs_tb = [r for r in muts if r["tb"] == "fail" and r["verdict"] not in ("not_equivalent",
                                                                                     "interface_mismatch")]
        times = [r["seconds"] for r in rows]
        decided_by = {m: sum(r["method"] == m for r in rows) for m in ("formal", "simulation")}
        print(f"  {method:10s}: killed {killed}/{n_mut} mutants ({100.0 * killed / max(n_mut, 1):.1f}%), "
              f"errors/undecided {undecided}; missed where the testbench kills: {len(missed_vs_tb)}; "
              f"rewrites {len(rewrites)}: false alarms {len(false_alarms)}, not decided {len(unsupported)} "
              f"({', '.join(sorted({r['problem'] for r in unsupported})[:4])}{' ...' if len(unsupported) > 4 else ''})")
        print(f"  {'':10s}  {len(rows)} checks in {wall[method]:.1f} s with {args.workers} workers = "
              f"{len(rows) / wall[method]:.1f} checks/s; per check median {statistics.median(times):.3f} s, "
              f"p90 {sorted(times)[int(0.9 * (len(times) - 1))]:.3f} s, max {max(times):.2f} s; decided by {decided_by}")
        for r in missed_vs_tb[:10]:
            print(f"      missed: {r['problem']} {r['kind']} {r['where']} -> {r['verdict']} {r['reason'][:80]}")
        for r in false_alarms[:10]:
            print(f"      FALSE ALARM: {r['problem']} {r['kind']} -> {r['verdict']} {r['reason'][:120]}")
    if args.rtllm:
        results["rtllm"] = bench_rtllm(args.rtllm, args.seed, args.workers)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


def bench_rtllm(folder: str, seed: int, workers: int) -> list[dict]:
    """RTLLM v1.1 verified designs: each against itself, a wrapper rewrite and two compiling mutants."""
    from rewards.equivalence import check_equivalence
    from rewards.interface import extract_interface, module_names
    from rewards.sanitize import sanitize_candidate
    from rewards.syntax import check_syntax

    if not os.path.isdir(folder):
        print(f"RTLLM folder not found: {folder} (skipped)")
        return []
    jobs = []
    for design in sorted(os.listdir(folder)):
        path = os.path.join(folder, design)
        files = sorted(f for f in os.listdir(path) if f.startswith("verified_") and f.endswith(".v")) \
            if os.path.isdir(path) else []
        if not files:
            continue
        with open(os.path.join(path, files[0])) as fh:
            gold = fh.read()
        names = module_names(gold)
        top = next((n for n in names if n == f"verified_{design}"), None)
        iface = extract_interface(gold, top)
        top = iface.name

        def valid(code: str, top=top) -> bool:
            return check_syntax(sanitize_candidate(code, top).code, top).ok

        mutants = make_mutants(design, gold, {r.name for r in iface.resets}, 2, seed, valid)
        jobs.append((design, top, gold, "rewrite", "self", gold))
        jobs.append((design, top, gold, "rewrite", "wrapper", wrapper_rewrite(gold, iface, top)))
        jobs += [(design, top, gold, "mutant", m.kind, m.code) for m in mutants]

    def one(job):
        design, top, gold, role, kind, code = job
        start = time.monotonic()
        res = check_equivalence(gold, code, top)
        return {"design": design, "role": role, "kind": kind, "verdict": res.verdict, "method": res.method,
                "seconds": time.monotonic() - start, "reason": res.reason[:200]}

    start = time.monotonic()
    with futures.ThreadPoolExecutor(workers) as pool:
        rows = list(pool.map(one, jobs))
    wall = time.monotonic() - start
    muts = [r for r in rows if r["role"] == "mutant"]
    rewrites = [r for r in rows if r["role"] == "rewrite"]
    killed = sum(r["verdict"] in ("not_equivalent", "interface_mismatch") for r in muts)
    ok = sum(r["verdict"] == "equivalent" for r in rewrites)
    by = {m: sum(r["method"] == m for r in muts if r["verdict"] == "not_equivalent") for m in ("formal", "simulation")}
    print(f"RTLLM v1.1: {len({r['design'] for r in rows})} designs; rewrites (self, wrapper) equivalent "
          f"{ok}/{len(rewrites)}; mutants killed {killed}/{len(muts)} (auto; by {by}); "
          f"{len(rows)} checks in {wall:.1f} s, median {statistics.median(r['seconds'] for r in rows):.3f} s")
    for r in rewrites:
        if r["verdict"] != "equivalent":
            print(f"      rewrite not proven: {r['design']} {r['kind']} -> {r['verdict']} {r['reason'][:120]}")
    for r in muts:
        if r["verdict"] not in ("not_equivalent", "interface_mismatch"):
            print(f"      mutant survived: {r['design']} {r['kind']} -> {r['verdict']} {r['reason'][:100]}")
    return rows


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sys.exit(main())
