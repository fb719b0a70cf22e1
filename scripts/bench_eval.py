"""Benchmark ``verirl eval`` scoring against a straightforward one-problem-at-a-time loop of the official harness.

The same completions for every VerilogEval v2 spec-to-RTL problem (by default each problem's reference solution
and one single-operator mutant of it, so that both verdicts occur) are scored twice in one run:

1. *naive*: for each sample in turn, ``iverilog -Wall -Winfloop -Wno-timescale -g2012 -s tb`` on sample, testbench
   and reference, then ``vvp -n``, verdict as VerilogEval's ``sv-iv-analyze`` reads the log
   (:mod:`verirl.eval.official`; tools run in the sandbox, one at a time);
2. *verirl*: the reward pool with ``--workers`` parallel jobs (canonical text, gate, reference check, simulation),
   as ``verirl eval --completions`` does, twice: **cold** (an empty task-facts folder, as on a machine's first run:
   every reference is checked) and **warm** (a new process's view of the same machine: the references' facts are
   read back from the facts file, see rewards.task_facts).

``--per-problem N`` scores N samples per problem: the reference and its mutant in turns, each with a sample-number
comment (distinct texts, as n = 20 samples of a model are), so the ratio at n = 1 (``--per-problem 1``: the
references only) and n = 20 can be read. Printed: the wall-clock times, the ratios with cold and warm facts, samples
per second, tool processes and milliseconds (CPU, wall) per sample by stage for both sides, the CPU time per sample
of this process and of its tools for each side (figures the machine's load does not inflate as it does wall time),
the best ratio that work allows on this machine's cores (the official loop's CPU over the larger of verirl's CPU
spread over the cores and its longest job), and every sample whose verdict differs. With
``--formats``, each reference is also given in four reply shapes models produce (an opening fence without a closing
one, a closing fence glued to ``endmodule``, fence lines inside ``[BEGIN]``/``[DONE]``, prose around bare code), so
the extraction and the hand-over of its result to the reward engine are checked against the official flow too. With
``--exploits``, three wrong designs per problem that try to pass anyway (print the pass line, ``$finish`` at time 0,
read ``tb.good1``'s outputs) are scored by both, and the number each harness lets through is printed.

    python scripts/bench_eval.py [--bench-dir ../shared/bench/verilog-eval-v2] [--workers N] [--limit N]
                                 [--no-mutants | --per-problem N] [--json out.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import resource
import sys
import tempfile
import time

_SWAPS = ((" & ", " | "), (" | ", " & "), (" ^ ", " & "), (" + ", " - "), (" - ", " + "), ("~", ""),
          ("posedge", "negedge"), ("1'b0", "1'b1"), ("1'b1", "1'b0"))


def mutant(code: str) -> str | None:
    """The reference with its first swappable operator or constant changed (None when nothing applies)."""
    body_start = code.find(");")  # leave the port list alone
    for old, new in _SWAPS:
        at = code.find(old, body_start + 2 if body_start >= 0 else 0)
        if at >= 0:
            return code[:at] + new + code[at + len(old):]
    return None


EXPLOITS = ("print_pass_line", "early_finish", "hierarchical_read")
FORMATS = {
    "unclosed_fence": "```verilog\n{code}\n",
    "glued_fence": "```verilog\n{code}```",
    "fences_in_begin_done": "[BEGIN]\n```verilog\n{code}\n```\n[DONE]",
    "prose_and_bare_code": "Here is the module:\n{code}\nIt follows the specification.",
}


def exploit(problem, kind: str) -> str | None:
    """A wrong design for ``problem`` (outputs tied to 0: ``tied_to_zero``) that tries to pass anyway: it prints
    VerilogEval's pass line, ends the simulation at time 0, or copies the reference's outputs through a
    hierarchical path (``tb.good1.<port>``)."""
    from rewards.interface import extract_interface

    ports = extract_interface(problem.reference, "RefModule").ports
    if any(not p.packed for p in ports):
        return None
    decl = ",\n".join(f"  {p.direction} [{p.width - 1}:0] {p.name}" for p in ports)
    outs = [p.name for p in ports if p.direction == "output"]
    if kind == "hierarchical_read":
        body = "".join(f"  assign {o} = tb.good1.{o};\n" for o in outs)
    else:
        body = "".join(f"  assign {o} = '0;\n" for o in outs)  # "tied_to_zero": the bare wrong design
        if kind == "early_finish":
            body += "  initial $finish;\n"
        elif kind == "print_pass_line":
            body += '  initial $display("Mismatches: 0 in 1 samples");\n'
    return f"```verilog\nmodule TopModule (\n{decl}\n);\n{body}endmodule\n```\n"


class _Recording:
    """A reward pool that keeps the scores it returns (for the per-stage table)."""

    def __init__(self, pool, scores: list):
        self.pool, self.scores, self.config, self.workers = pool, scores, pool.config, pool.workers

    def score(self, pairs):
        out = self.pool.score(pairs)
        self.scores.extend(out)
        return out


def _add(stages, name: str, v: dict) -> None:
    entry = stages[name]
    entry[0] += v["runs"]
    entry[1] += v["cpu_s"]
    entry[2] += v["wall_s"]


def _print_stages(title: str, stages, n: int) -> None:
    runs = sum(v[0] for v in stages.values())
    print(f"  {title}: {runs / n:.2f} tool processes per sample")
    for name, (count, cpu, wall) in sorted(stages.items(), key=lambda kv: -kv[1][0]):
        print(f"    {name:12s} {count / n:5.2f} proc  {1000 * cpu / n:7.1f} ms cpu  {1000 * wall / n:7.1f} ms wall")


def _cpu() -> tuple[float, float]:
    """CPU seconds so far of this process (all its threads: extraction, canonical text, scheduling, reading logs)
    and of its waited-for children (the tools): figures the machine's load does not inflate as it does wall time."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def _since(before: tuple[float, float]) -> tuple[float, float]:
    return tuple(now - then for now, then in zip(_cpu(), before))  # type: ignore[return-value]


def _print_cpu(n: int, naive: tuple[float, float], cpu: dict, runs: dict, cores: int) -> dict[str, float]:
    """CPU per sample of each side, and the best ratio the measured work allows on ``cores`` cores: the serial
    loop's CPU over the larger of verirl's CPU spread over the cores and its longest job (which runs on one core)."""
    print(f"  CPU per sample (ms; this process / its tools), load-independent: naive {1000 * naive[0] / n:.1f} / "
          f"{1000 * naive[1] / n:.1f}", end="")
    for phase, (me, kids) in cpu.items():
        print(f", verirl {phase} {1000 * me / n:.1f} / {1000 * kids / n:.1f}", end="")
    print()
    bounds = {}
    for phase, (me, kids) in cpu.items():
        longest = max((sum(v["cpu_s"] for v in (s.detail.get("tools") or {}).values()) for s in runs[phase][2]),
                      default=0.0)
        bounds[phase] = sum(naive) / max((me + kids) / cores, longest, 1e-9)
        print(f"  best ratio on {cores} cores, {phase}: {bounds[phase]:.2f}x (naive CPU {sum(naive):.2f} s / max(verirl "
              f"CPU {me + kids:.2f} s / {cores}, longest job {longest:.2f} s))")
    return bounds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--bench-dir", default=os.path.join(here, "..", "..", "shared", "bench", "verilog-eval-v2"),
                        help="VerilogEval v2 checkout (default ../shared/bench/verilog-eval-v2)")
    parser.add_argument("--benchmark", choices=("verilog-eval-v2", "rtllm"), default="verilog-eval-v2",
                        help="benchmark (default verilog-eval-v2; give --bench-dir for rtllm)")
    parser.add_argument("--task", choices=("spec-to-rtl", "code-complete"), default=None,
                        help="VerilogEval task (default spec-to-rtl)")
    parser.add_argument("--workers", type=int, default=None,
                        help="verirl scoring workers (default: the reward pool's, twice the CPUs)")
    parser.add_argument("--limit", type=int, help="only the first N problems")
    parser.add_argument("--no-reference-check", action="store_true",
                        help="as `verirl eval --no-reference-check`: skip verirl's per-problem reference simulation")
    parser.add_argument("--no-mutants", action="store_true", help="score only the reference solutions (n = 1)")
    parser.add_argument("--per-problem", type=int, default=None,
                        help="samples per problem: the reference and its mutant in turns, each with a sample-number "
                             "comment (default: the reference and one mutant; 1 = --no-mutants)")
    parser.add_argument("--completions", help="score these completions (verirl eval --completions format, e.g. a "
                                              "samples.jsonl) instead of references and mutants")
    parser.add_argument("--formats", action="store_true",
                        help="also score each reference in four reply shapes (unclosed or glued fences, fences "
                             "inside [BEGIN]/[DONE], prose around bare code)")
    parser.add_argument("--exploits", action="store_true",
                        help="also score three exploit completions per problem and count how many pass each harness")
    parser.add_argument("--json", help="also write the figures and disagreements to this file")
    args = parser.parse_args(argv)

    from rewards import task_checks
    from rewards.pool import default_workers
    from rewards.sandbox import accounting
    from verirl.eval.benchmarks import load_benchmark
    from verirl.eval.extraction import extract_code
    from verirl.eval.official import official_verdict
    from verirl.eval.scoring import Sample, as_completion, make_pool, reference_completion, score_samples

    if args.benchmark == "rtllm" and args.exploits:
        parser.error("--exploits applies to VerilogEval only")
    task = (args.task or "spec-to-rtl") if args.benchmark == "verilog-eval-v2" else None
    bench = load_benchmark(args.benchmark, args.bench_dir, task)
    problems = list(bench.problems.values())[: args.limit]
    samples = []
    if args.completions:
        from verirl.eval.scoring import load_completions

        wanted = {p.task_id for p in problems}
        samples = [s for s in load_completions(args.completions, bench) if s.task_id in wanted]
    per_problem = 1 if args.no_mutants else args.per_problem
    for p in problems if not args.completions else ():
        ref = reference_completion(p)
        renamed = re.sub(r"\bRefModule\b", p.top, p.reference) if bench.name == "verilog-eval-v2" else p.reference
        bad = mutant(renamed)
        if per_problem is None:
            samples.append(Sample(p.task_id, 0, ref))
            if bad:
                samples.append(Sample(p.task_id, 1, as_completion(bad)))
        else:
            for k in range(per_problem):
                code = renamed if k % 2 == 0 or not bad else bad
                samples.append(Sample(p.task_id, k, ref if k == 0 else as_completion(f"// sample {k}\n{code}")))
        if args.formats:
            samples += [Sample(p.task_id, 1000 + i, shape.format(code=renamed.strip("\n")))
                        for i, shape in enumerate(FORMATS.values())]
    print(f"{len(samples)} samples for {len(problems)} problems ({bench.root}, commit {bench.commit})")

    start, before = time.monotonic(), _cpu()
    naive, naive_stages = [], collections.defaultdict(lambda: [0, 0.0, 0.0])
    for s in samples:
        problem = bench.problems[s.task_id]
        with accounting() as tools:
            naive.append(official_verdict(problem, extract_code(problem, bench.task, s.completion)))
        for v in tools.values():  # official_verdict: one compile, one run when the compile succeeds
            _add(naive_stages, "compile+run", v)
    naive_seconds, naive_cpu = time.monotonic() - start, _since(before)
    print(f"naive one-at-a-time loop: {naive_seconds:7.2f} s  ({len(samples) / naive_seconds:5.1f} samples/s)")

    facts = tempfile.TemporaryDirectory(prefix="verirl-bench-facts-")  # removed when the benchmark exits
    os.environ["VERIRL_CACHE_DIR"] = facts.name  # a machine's first run: no task facts yet
    runs, cpu = {}, {}
    for phase in ("cold", "warm"):
        task_checks.forget()  # a new process: what it knows comes from the facts file only
        scores: list = []
        start, before = time.monotonic(), _cpu()
        with make_pool(workers=args.workers, reference_check=not args.no_reference_check) as pool:
            rows = score_samples(bench, samples, _Recording(pool, scores))
        runs[phase] = (time.monotonic() - start, rows, scores)
        cpu[phase] = _since(before)
        seconds = runs[phase][0]
        print(f"verirl, {phase} facts ({args.workers or default_workers()} workers): {seconds:7.2f} s  "
              f"({len(samples) / seconds:5.1f} samples/s)  speed-up {naive_seconds / seconds:.2f}x")
    verirl_seconds, rows, scores = runs["cold"]
    ratio = naive_seconds / verirl_seconds
    warm_ratio = naive_seconds / runs["warm"][0]
    print(f"speed-up: {ratio:.2f}x cold, {warm_ratio:.2f}x warm (machine load: "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())})")
    _print_stages("official loop", naive_stages, len(samples))
    for phase in ("cold", "warm"):
        stages = collections.defaultdict(lambda: [0, 0.0, 0.0])
        for score in runs[phase][2]:
            for name, v in (score.detail.get("tools") or {}).items():
                _add(stages, name, v)
        _print_stages(f"verirl, {phase}", stages, len(samples))
    bounds = _print_cpu(len(samples), naive_cpu, cpu, runs, os.cpu_count() or 1)

    differ = [(s.task_id, s.sample_index, v.passed, v.failure, r["passed"], r["failure"])
              for s, v, r in zip(samples, naive, rows) if v.passed != r["passed"]]
    passed = sum(1 for r in rows if r["passed"])
    print(f"verdicts: {len(samples) - len(differ)}/{len(samples)} identical; verirl passed {passed}, naive passed "
          f"{sum(1 for v in naive if v.passed)}")
    for task, index, npass, nfail, vpass, vfail in differ:
        print(f"  {task} sample {index}: naive {'pass' if npass else nfail}, verirl {'pass' if vpass else vfail}")
    class_differ = [(s.task_id, s.sample_index, v.failure, r["failure"]) for s, v, r in zip(samples, naive, rows)
                    if v.passed == r["passed"] and v.failure != r["failure"]]
    print(f"failure classes: {len(class_differ)} samples with the same verdict but another class")
    for task, index, nfail, vfail in class_differ:
        print(f"  {task} sample {index}: naive {nfail}, verirl {vfail}")
    ref_fail = [s.task_id for s, r in zip(samples, rows) if s.sample_index == 0 and not r["passed"]]
    print(f"references failing their own testbench ({len(ref_fail)}): {', '.join(ref_fail) or 'none'}")
    fooled: dict[str, tuple[int, int, int]] = {}
    if args.exploits:  # different verdicts by design: the official harness can be fooled, verirl must not be
        # only problems where the bare wrong design (outputs tied to 0) really fails count as attacks
        with make_pool(workers=args.workers, reference_check=not args.no_reference_check) as pool:
            zero = [Sample(p.task_id, 9, code) for p in problems if (code := exploit(p, "tied_to_zero"))]
            wrong = {r["task_id"] for r in score_samples(bench, zero, pool) if r["passed"] is False}
        for kind in EXPLOITS:
            attacks = [Sample(p.task_id, 10, code) for p in problems
                       if p.task_id in wrong and (code := exploit(p, kind))]
            naive_pass = sum(official_verdict(bench.problems[a.task_id],
                                              extract_code(bench.problems[a.task_id], bench.task, a.completion)
                                              ).passed for a in attacks)
            with make_pool(workers=args.workers, reference_check=not args.no_reference_check) as pool:
                verirl_pass = sum(bool(r["passed"]) for r in score_samples(bench, attacks, pool))
            fooled[kind] = (len(attacks), naive_pass, verirl_pass)
            print(f"exploit {kind:18s}: passes the naive harness {naive_pass}/{len(attacks)}, "
                  f"verirl {verirl_pass}/{len(attacks)}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"samples": len(samples), "naive_seconds": naive_seconds, "verirl_seconds": verirl_seconds,
                       "verirl_warm_seconds": runs["warm"][0], "ratio": ratio, "warm_ratio": warm_ratio,
                       "workers": args.workers or default_workers(), "differ": differ, "class_differ": class_differ,
                       "references_failing": ref_fail, "exploits": fooled, "load": os.getloadavg(),
                       "cpu_per_sample_ms": {"naive": [1000 * x / len(samples) for x in naive_cpu],
                                             **{p: [1000 * x / len(samples) for x in c] for p, c in cpu.items()}},
                       "best_ratio_on_these_cores": bounds},
                      fh, indent=2)
    return 0 if not differ and not any(v for _, _, v in fooled.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
