"""Benchmark: where rewards run when training scales out, measured both ways in one run.

1. **Local pool vs Ray**: the same GRPO-like batch (scripts/bench_rewards.py's tasks: correct, wrong and broken
   designs) scored by the local thread pool and by Ray tasks (``--ray-address``: a cluster to join, default ``local``,
   a private Ray on this machine). Prints completions/s of each, their ratio, and whether the verdicts agree.
2. **Processes sharing a node**: N training processes on one node each scoring 1/N of the batch at the same time,
   with the per-node worker sizing (``LOCAL_WORLD_SIZE=N``: 2 x CPUs / N workers each) and with the old per-process
   sizing (2 x CPUs each, N-fold oversubscription), against one process scoring the whole batch. Prints wall time
   per completion and the ratio to one process.

Repetitions alternate the variants; figures are means with a 95% interval. Nothing is asserted: machines are noisy
(read the ratios; on a shared machine, re-measure when it is idle).

    python scripts/bench_cluster.py [--tasks 12] [--samples 8] [--repeats 5] [--processes 2] [--ray-address ADDR]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_rewards import build_batch, make_task

from rewards.hierarchy import RewardConfig
from rewards.pool import RewardPool, default_workers, node_cpus


def batch(args, rep: int):
    """The benchmark batch, with completions made unique per repetition (so no cache can answer them)."""
    rng = random.Random(args.seed)
    tasks = [make_task(i, rng) for i in range(args.tasks)]
    pairs = build_batch(tasks, args.samples, random.Random(1))
    return [(t, c.replace("```verilog\n", f"```verilog\n// rep {rep}\n", 1)) for t, c in pairs]


def interval(values: list[float]) -> str:
    mean = statistics.fmean(values)
    half = 1.96 * statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else float("nan")
    return f"{mean:8.2f} ± {half:5.2f}"


def throughput(args) -> None:
    config = RewardConfig()
    local = RewardPool(config, cache_size=0)
    ray_pool = RewardPool(config, cache_size=0, backend="ray", ray_address=args.ray_address)
    print(f"1. local pool ({local.workers} workers) vs Ray ({args.ray_address}, {ray_pool.workers} CPUs): "
          f"{len(batch(args, 0))} completions per batch, {args.repeats} repeats after one warm-up")
    rates: dict[str, list[float]] = {"local": [], "ray": []}
    agree = True
    for rep in range(args.repeats + 1):
        pairs = batch(args, rep)
        verdicts = {}
        for name, pool in (("local", local), ("ray", ray_pool)) if rep % 2 else (("ray", ray_pool),
                                                                                  ("local", local)):
            start = time.perf_counter()
            scores = pool.score(pairs)
            seconds = time.perf_counter() - start
            verdicts[name] = [(s.passed, s.failure) for s in scores]
            if rep:  # the first round warms both up (reference runs, Ray worker start-up)
                rates[name].append(len(pairs) / seconds)
        agree &= verdicts["local"] == verdicts["ray"]
    local.close()
    ray_pool.close()
    print(f"   local  completions/s {interval(rates['local'])}")
    print(f"   ray    completions/s {interval(rates['ray'])}")
    ratios = [r / q for r, q in zip(rates["ray"], rates["local"])]
    print(f"   ray / local          {interval(ratios)}   verdicts {'identical' if agree else 'DIFFER'}")


def _score_share(args, rep: int, index: int, processes: int, local_world_size: str | None, barrier, queue,
                 workers: int | None = None) -> None:
    if local_world_size is None:
        os.environ.pop("LOCAL_WORLD_SIZE", None)
    else:
        os.environ["LOCAL_WORLD_SIZE"] = local_world_size
    pairs = batch(args, rep)[index::processes]
    with RewardPool(RewardConfig(), cache_size=0, workers=workers) as pool:
        # every process validates each task's reference once: do that outside the measured window
        first = {task.id: (task, f"```verilog\n{task.reference}```") for task, _ in pairs}
        pool.score(list(first.values()))
        barrier.wait()
        start = time.monotonic()  # system-wide clock: comparable across processes
        pool.score(pairs)
        queue.put((start, time.monotonic(), len(pairs), pool.workers))


def sharing(args) -> None:
    n = args.processes
    ctx = mp.get_context("spawn")
    variants = {
        "1 process": (1, None, None),
        f"{n} processes, per-node sizing": (n, str(n), None),
        f"{n} processes, per-process sizing (old)": (n, None, None),
        # separates the effect of more concurrent jobs from that of more processes
        f"1 process, {n}x the workers": (1, None, n * default_workers()),
    }
    print(f"2. {n} processes sharing {node_cpus()} CPUs vs one process: wall ms per completion, {args.repeats} repeats "
          f"(default workers: {default_workers()} for 1 process)")
    per_completion: dict[str, list[float]] = {name: [] for name in variants}
    workers: dict[str, int] = {}
    for rep in range(args.repeats):
        for name, (processes, lws, nworkers) in variants.items():
            barrier, queue = ctx.Barrier(processes), ctx.Queue()
            procs = [ctx.Process(target=_score_share,
                                 args=(args, 1000 + rep, i, processes, lws, barrier, queue, nworkers))
                     for i in range(processes)]
            for p in procs:
                p.start()
            results = [queue.get(timeout=1800) for _ in procs]
            for p in procs:
                p.join()
            wall = max(end for _, end, _, _ in results) - min(start for start, _, _, _ in results)
            per_completion[name].append(1000 * wall / sum(k for _, _, k, _ in results))
            workers[name] = results[0][3]
    base = per_completion["1 process"]
    for name, values in per_completion.items():
        ratios = [v / b for v, b in zip(values, base)]
        print(f"   {name:42s} ({workers[name]:2d} workers each) {interval(values)} ms   x{interval(ratios)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--processes", type=int, default=2, help="training processes sharing the node (part 2)")
    parser.add_argument("--ray-address", default="local",
                        help="Ray cluster to join for part 1 (default: a private Ray on this machine)")
    parser.add_argument("--only", choices=("throughput", "sharing"), help="run one part")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.only != "sharing":
        throughput(args)
    if args.only != "throughput":
        sharing(args)


if __name__ == "__main__":
    main()
