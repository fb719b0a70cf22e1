"""Benchmark: reward pool vs a naive one-completion-at-a-time loop, in one run.

Builds a realistic GRPO-like batch (default 20 tasks x 8 samples = 160 completions: correct,
wrong, syntax-broken designs) and scores it

* naively: ``score_completion`` for each completion in turn (one tool subprocess at a time,
  no cache, no de-duplication), and
* with :class:`rewards.pool.RewardPool` (parallel workers, content-addressed cache),

on three batches: clean (no duplicates), 25% duplicates, and 10% infinite-loop candidates.
Prints completions/second for both and their ratio. Nothing here is asserted: machines are
noisy; read the ratios.

    python scripts/bench_rewards.py [--tasks 20] [--samples 8] [--workers N]
"""

from __future__ import annotations

import argparse
import random
import time

from rewards import hierarchy
from rewards.hierarchy import RewardConfig, score_completion
from rewards.pool import RewardPool, default_workers
from rewards.task import Task

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
    make = lambda expr: body + f"  assign y = {expr.replace('{w}', str(w))};\nendmodule\n"  # noqa: E731
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


def naive(pairs, config):
    hierarchy._PREP_CACHE.clear()
    start = time.perf_counter()
    scores = [score_completion(t, c, config) for t, c in pairs]
    return time.perf_counter() - start, scores


def pooled(pairs, config, workers):
    hierarchy._PREP_CACHE.clear()
    with RewardPool(config, workers=workers) as pool:
        start = time.perf_counter()
        scores = pool.score(pairs)
        return time.perf_counter() - start, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None, help=f"default: {default_workers()}")
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
    print(f"{len(tasks)} tasks x {args.samples} samples, {workers} workers")
    print(f"{'batch':22s} {'naive c/s':>10s} {'pool c/s':>10s} {'speedup':>8s} {'pool s':>7s}  verdicts")
    pool_times = {}
    for name, pairs in batches.items():
        t_naive, s_naive = naive(pairs, config)
        t_pool, s_pool = pooled(pairs, config, workers)
        pool_times[name] = t_pool
        same = all(a.passed == b.passed and a.failure == b.failure for a, b in zip(s_naive, s_pool))
        n = len(pairs)
        print(f"{name:22s} {n / t_naive:10.1f} {n / t_pool:10.1f} {t_naive / t_pool:7.2f}x {t_pool:7.2f}  "
              f"{'identical' if same else 'DIFFER'}")
    ratio = pool_times["10% infinite loops"] / pool_times["clean"]
    print(f"pool time with 10% infinite loops / clean batch: {ratio:.2f}x")


if __name__ == "__main__":
    main()
