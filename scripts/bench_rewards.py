"""Benchmark: the reward pool against a naive loop and an official-style loop, in one run.

Builds a realistic GRPO-like batch (default 20 tasks x 8 samples = 160 completions: correct, wrong and
syntax-broken designs) and scores it

* naively: ``score_completion`` for each completion in turn (one tool process at a time, no cache, no
  de-duplication), and
* with :class:`rewards.pool.RewardPool` (parallel workers, content-addressed cache),

on three batches: clean (no duplicates), 25% duplicates, and 10% infinite-loop candidates. Then, at n = 1 and
n = 20 samples per task, the pool against an *official-style* loop: what a benchmark's own harness does for each
completion, one at a time (compile the testbench, the reference and the extracted code with ``iverilog``, run
``vvp``, read the verdict line; no sanitizer, no gate, no reference check), in the same sandbox.

Every measurement starts cold: no score cache, no task facts in this process, an empty facts folder
(``VERIRL_CACHE_DIR``, see rewards.task_facts). Each is repeated ``--repeats`` times; the median and the range are
printed. Also printed: tool processes and milliseconds (CPU and wall) per completion by stage, and the CPU per
completion of this process and its tools on each side with the best pool/naive ratio that work allows on this
machine's cores (the naive loop runs the same engine, so on 2 cores that is about 2x), and the hostile batch's CPU
over the clean one's (figures the machine's load does not inflate as it does wall time). Nothing is asserted:
machines are noisy; read the ratios (on a shared machine, read them as lower bounds).

    python scripts/bench_rewards.py [--tasks 20] [--samples 8] [--workers N] [--repeats 3]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import resource
import statistics
import tempfile
import time

from rewards import task_checks
from rewards.extract import extract_verilog
from rewards.hierarchy import RewardConfig, score_completion
from rewards.pool import RewardPool, default_workers, node_cpus
from rewards.sandbox import Workspace
from rewards.task import Task
from rewards.toolchain import find_tool

TB = """module tb;
  reg clk = 0;
  reg {ins};
  wire [{ow}:0] y, y_ref;
  integer i, pass = 0, total = 0;
  {name} dut({conn}, .y(y));
  ref_{name} golden({conn}, .y(y_ref));
  initial begin
    for (i = 0; i < 200; i = i + 1) begin
      {{{rand}}} = {{$random, $random, $random}};
      #1 total = total + 1;
      if (y === y_ref) pass = pass + 1;
    end
    `VERIRL_REPORT(pass, total)
  end
endmodule
"""


def make_task(i: int, rng: random.Random) -> tuple[Task, list[str]]:
    """A combinational task with operands a, b (width w) and a correct design plus wrong variants."""
    w = rng.choice([4, 6, 8, 12, 16])
    name = f"unit{i}"
    op, wrong_ops = rng.choice([("a + b", ["a - b", "a | b", "a + b + 1"]),
                                ("a & b", ["a | b", "a ^ b", "~(a & b)"]),
                                ("(a > b) ? a : b", ["(a < b) ? a : b", "a", "b"]),
                                ("a ^ b ^ {w}'d1", ["a ^ b", "a | b", "a & b"]),
                                ("(a << 1) + b", ["(a << 2) + b", "a + b", "(a >> 1) + b"])])
    ow = w
    body = f"module {name}(input [{w - 1}:0] a, input [{w - 1}:0] b, output [{ow}:0] y);\n"

    def make(expr: str) -> str:
        return body + f"  assign y = {expr.replace('{w}', str(w))};\nendmodule\n"

    reference = make(op)
    tb = TB.format(ins=f"[{w - 1}:0] a, b", ow=ow, name=name, conn=".a(a), .b(b)", rand="a, b")
    task = Task(id=name, prompt=f"Implement {name}", top=name, reference=reference, testbench=tb)
    variants = [reference] + [make(wop) for wop in wrong_ops]
    return task, variants


def completions_for(task: Task, variants: list[str], samples: int, rng: random.Random, loops: float) -> list[str]:
    out = []
    for s in range(samples):
        r = rng.random()
        if r < loops:
            # hangs the simulator at the first input change (a zero-delay loop no compiler check sees)
            code = variants[0].replace("endmodule", f"  integer spin{s};\n  always @(a) begin spin{s} = 0; "
                                                    f"while (1) spin{s} = spin{s} + 1; end\nendmodule")
        elif r < 0.5:
            code = variants[0]
        elif r < 0.85:
            code = rng.choice(variants[1:])
        else:
            code = variants[0].replace("assign y =", "assign y = =")
        # a unique comment keeps completions distinct (no accidental duplicates in the clean batch)
        out.append(f"Sample {s} of {task.id}:\n```verilog\n// sample {s}\n{code}```")
    return out


def build_batch(tasks, samples, rng, duplicates=0.0, loops=0.0):
    pairs = []
    for task, variants in tasks:
        comps = completions_for(task, variants, samples, rng, loops)
        for j in range(len(comps)):
            if j and rng.random() < duplicates:
                comps[j] = comps[rng.randrange(j)]
        pairs += [(task, c) for c in comps]
    return pairs


_FACTS = tempfile.TemporaryDirectory(prefix="verirl-bench-facts-")  # removed when the benchmark exits


def cold() -> None:
    """Forget every task fact of this process and point the machine's facts file at an empty folder."""
    task_checks.forget()
    os.environ["VERIRL_CACHE_DIR"] = tempfile.mkdtemp(dir=_FACTS.name)


def _cpu() -> float:
    """CPU seconds so far of this process (all threads) and of its waited-for children (the tools): what the
    machine's load does not inflate as it does wall time."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def naive(pairs, config, cpu: list | None = None):
    cold()
    start, before = time.perf_counter(), _cpu()
    scores = [score_completion(t, c, config) for t, c in pairs]
    if cpu is not None:
        cpu.append(_cpu() - before)
    return time.perf_counter() - start, scores


def pooled(pairs, config, workers, cpu: list | None = None):
    cold()
    with RewardPool(config, workers=workers) as pool:
        start, before = time.perf_counter(), _cpu()
        scores = pool.score(pairs)
        seconds = time.perf_counter() - start
    if cpu is not None:
        cpu.append(_cpu() - before)
    return seconds, scores


def official_style(pairs) -> tuple[float, list[bool], dict]:
    """One completion at a time, as a benchmark's harness does: compile, run, read the verdict; nothing else."""
    iverilog, vvp = find_tool("iverilog"), find_tool("vvp")
    header = '`define VERIRL_REPORT(p, t) begin $display("RESULT %0d %0d", (p), (t)); $finish; end\n'
    stages: dict = collections.defaultdict(lambda: [0, 0.0, 0.0])
    verdicts = []
    start = time.perf_counter()
    for task, completion in pairs:
        code = extract_verilog(completion).code or ""
        ref = task.reference.replace(f"module {task.top}", f"module ref_{task.top}")
        with Workspace({"tb.v": header + task.testbench, "ref.v": ref, "design.v": code}) as ws:
            comp = ws.run([iverilog, "-g2012", "-o", "sim.vvp", "tb.v", "ref.v", "design.v"], timeout=60)
            _book(stages, "compile", comp)
            passed = False
            if comp.ok:
                run = ws.run([vvp, "-n", "sim.vvp"], timeout=20)
                _book(stages, "simulate", run)
                words = [line.split() for line in run.stdout.splitlines() if line.startswith("RESULT ")]
                passed = len(words) == 1 and words[0][1] == words[0][2] != "0"
        verdicts.append(passed)
    return time.perf_counter() - start, verdicts, stages


def _book(stages, name, result) -> None:
    entry = stages[name]
    entry[0] += 1
    entry[1] += result.cpu_seconds
    entry[2] += result.elapsed


def stage_table(scores) -> dict:
    """Tool processes, CPU ms and wall ms per completion, by stage, over the scores computed (not cached)."""
    seen, stages = set(), collections.defaultdict(lambda: [0, 0.0, 0.0])
    for score in scores:
        if id(score) in seen:
            continue
        seen.add(id(score))
        for name, v in (score.detail.get("tools") or {}).items():
            entry = stages[name]
            entry[0] += v["runs"]
            entry[1] += v["cpu_s"]
            entry[2] += v["wall_s"]
    return stages


def print_stages(title: str, stages: dict, n: int) -> None:
    runs = sum(v[0] for v in stages.values())
    print(f"  {title}: {runs / n:.2f} processes per completion")
    for name, (count, cpu, wall) in sorted(stages.items(), key=lambda kv: -kv[1][0]):
        print(f"    {name:12s} {count / n:5.2f} proc  {1000 * cpu / n:7.1f} ms cpu  {1000 * wall / n:7.1f} ms wall")


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):5.2f}x [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None, help=f"default: {default_workers()}")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per figure (median and range printed)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    workers = args.workers or default_workers()
    rng = random.Random(args.seed)
    tasks = [make_task(i, rng) for i in range(args.tasks)]
    config = RewardConfig()
    batches = {
        "clean": build_batch(tasks, args.samples, random.Random(1)),
        "25% duplicates": build_batch(tasks, args.samples, random.Random(2), duplicates=0.25),
        "10% infinite loops": build_batch(tasks, args.samples, random.Random(3), loops=0.10),
    }
    print(f"{len(tasks)} tasks x {args.samples} samples, {workers} workers, {args.repeats} repeats, cold caches "
          f"(median [min-max]; timings on a shared machine are noisy)")
    print(f"{'batch':20s} {'naive c/s':>10s} {'pool c/s':>10s}  {'pool/naive speed-up':22s} verdicts")
    pool_times: dict[str, list[float]] = {}
    tables, cpu = {}, {}
    for name, pairs in batches.items():
        n_times, p_times, same = [], [], True
        cpu[name] = ([], [])
        for _ in range(args.repeats):
            t_naive, s_naive = naive(pairs, config, cpu[name][0])
            t_pool, s_pool = pooled(pairs, config, workers, cpu[name][1])
            n_times.append(t_naive)
            p_times.append(t_pool)
            same &= all(a.passed == b.passed and a.failure == b.failure for a, b in zip(s_naive, s_pool))
            tables[name] = (stage_table(s_naive), stage_table(s_pool))
        pool_times[name] = p_times
        n = len(pairs)
        print(f"{name:20s} {n / statistics.median(n_times):10.1f} {n / statistics.median(p_times):10.1f}  "
              f"{summary([a / b for a, b in zip(n_times, p_times)]):22s} {'identical' if same else 'DIFFER'}")
    ratios = [h / c for h, c in zip(pool_times["10% infinite loops"], pool_times["clean"])]
    print(f"pool time with 10% infinite loops / clean batch: {summary(ratios)}")
    cores = node_cpus()
    print(f"CPU per completion (this process and its tools; the load does not inflate it as it does wall time), and the "
          f"best pool/naive ratio that work allows on {cores} cores (naive CPU / (pool CPU / {cores})):")
    for name, pairs in batches.items():
        naive_cpu, pool_cpu = (statistics.median(x) for x in cpu[name])
        print(f"  {name:20s} naive {1000 * naive_cpu / len(pairs):6.1f} ms, pool {1000 * pool_cpu / len(pairs):6.1f} ms:"
              f" at best {cores * naive_cpu / pool_cpu:.2f}x")
    hostile = [h / c for h, c in zip(cpu["10% infinite loops"][1], cpu["clean"][1])]
    print(f"pool CPU with 10% infinite loops / clean batch: {summary(hostile)}")
    n = len(batches["clean"])
    print("per completion by stage (clean batch; the reference's own check is booked under 'reference'):")
    print_stages("naive loop", tables["clean"][0], n)
    print_stages("pool", tables["clean"][1], n)
    n = len(batches["10% infinite loops"])
    print_stages("pool, 10% infinite loops", tables["10% infinite loops"][1], n)

    print("official-style loop (compile + run per completion, one at a time, no checks) vs the pool (cold):")
    for per_task in (1, 20):
        pairs = build_batch(tasks, per_task, random.Random(10 + per_task))
        ratios, agree = [], True
        for _ in range(args.repeats):
            t_off, v_off, off_stages = official_style(pairs)
            t_pool, s_pool = pooled(pairs, config, workers)
            ratios.append(t_off / t_pool)
            agree &= all(bool(s.passed) == v for s, v in zip(s_pool, v_off))
        print(f"  n={per_task:<3d} ({len(pairs)} completions): pool {summary(ratios)} the official-style loop's speed; "
              f"verdicts {'identical' if agree else 'DIFFER'}")
        print_stages(f"official-style, n={per_task}", off_stages, len(pairs))
        print_stages(f"pool, n={per_task}", stage_table(s_pool), len(pairs))


if __name__ == "__main__":
    main()
