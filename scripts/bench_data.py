"""Throughput and memory of `verirl data build` on a synthetic corpus.

    python scripts/bench_data.py --modules 100000 --tools-sample 400 --workdir /tmp/verirl-bench-data

Generates a corpus of random, distinct Verilog modules (combinational expression trees,
counters/accumulators with sync or async resets, case-statement decoders) as JSONL, then:

1. **tools run**: the first ``--tools-sample`` modules through the full filter chain (pyslang split,
   structure, exact dedupe, Icarus compile, Yosys synth, MinHash, decontamination against the
   benchmarks when ``--bench`` is given, interface extraction) → modules/s;
2. **streaming run**: all ``--modules`` modules with the tool checks off (everything else on) →
   modules/s and the process's resident memory after every shard, to show that memory does not grow
   with the corpus (only the dedupe index does, by about 2 KiB per kept module).

3. **real repositories** (``--repo NAME=PATH`` or ``--repo 'NAME=PATH={"include_dirs": ["include"]}'``,
   repeatable): a filter-only build of each checkout (all filters, decontamination when ``--bench`` is
   given) → modules in, kept, dropped by reason, modules/s and seconds per stage; then every kept reference
   is checked independently of the build: the reward engine (``rewards.hierarchy.score_completion`` with the
   default training ``RewardConfig``) must score it as a pass of its own task, and it must compile alone
   (``rewards.syntax.check_syntax``). ``verified`` reports both fractions (the acceptance figure is 100%).

Prints one JSON object. No LLM is involved (the round trip costs what the LLM costs). Timings on a shared
machine are inflated by other jobs: compare figures measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

_OPS = ["+", "-", "&", "|", "^"]


def _expr(rng: random.Random, names: list[str], depth: int) -> str:
    if depth == 0 or rng.random() < 0.25:
        choice = rng.random()
        if choice < 0.75:
            return rng.choice(names)
        return f"{rng.randint(1, 8)}'d{rng.randint(0, 1)}"
    kind = rng.random()
    if kind < 0.6:
        return f"({_expr(rng, names, depth - 1)} {rng.choice(_OPS)} {_expr(rng, names, depth - 1)})"
    if kind < 0.8:
        return f"(~{_expr(rng, names, depth - 1)})"
    return f"({_expr(rng, names, depth - 1)} ? {_expr(rng, names, depth - 1)} : {_expr(rng, names, depth - 1)})"


def synthetic_module(i: int, rng: random.Random) -> str:
    family = i % 3
    width = rng.randint(2, 16)
    n_in = rng.randint(2, 5)
    ins = [f"in{k}_{rng.randint(0, 99)}" for k in range(n_in)]
    name = f"m{i}_{rng.choice(['alu', 'mix', 'calc', 'blk', 'unit'])}"
    ports = ", ".join(f"input [{width - 1}:0] {p}" for p in ins)
    if family == 0:
        outs = [f"y{k}" for k in range(rng.randint(1, 3))]
        body = "\n".join(f"  assign {o} = {_expr(rng, ins, rng.randint(2, 4))};" for o in outs)
        decl = ", ".join(f"output [{width - 1}:0] {o}" for o in outs)
        return f"module {name}({ports}, {decl});\n{body}\nendmodule\n"
    if family == 1:
        rst, low = rng.choice([("rst", False), ("rst_n", True)])
        asyn = rng.random() < 0.5
        sens = f"posedge clk or {'negedge' if low else 'posedge'} {rst}" if asyn else "posedge clk"
        cond = f"!{rst}" if low else rst
        return (f"module {name}(input clk, input {rst}, {ports}, output reg [{width - 1}:0] acc);\n"
                f"  always @({sens}) begin\n    if ({cond}) acc <= {width}'d{rng.randint(0, 3)};\n"
                f"    else acc <= acc {rng.choice(_OPS)} {_expr(rng, ins, 2)};\n  end\nendmodule\n")
    sel_w = rng.randint(2, 3)
    cases = "\n".join(f"      {sel_w}'d{k}: y = {_expr(rng, ins, 2)};" for k in range(2 ** sel_w - 1))
    return (f"module {name}(input [{sel_w - 1}:0] sel, {ports}, output reg [{width - 1}:0] y);\n"
            f"  always @(*) begin\n    case (sel)\n{cases}\n      default: y = {width}'d0;\n    endcase\n"
            f"  end\nendmodule\n")


def write_corpus(path: str, n: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"code": synthetic_module(i, rng), "path": f"synthetic/{i}.v"}) + "\n" for i in range(n))


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run(corpus: str, out_dir: str, *, max_modules: int, tools: bool, bench: str | None, shard_size: int,
        workers: int) -> dict:
    from data_pipeline import shards
    from data_pipeline.build import Builder
    from data_pipeline.config import load_build_config

    overrides = {
        "output_dir": out_dir, "shard_size": shard_size, "workers": workers, "max_modules": max_modules,
        "sources": [{"kind": "jsonl", "path": corpus, "code_field": "code", "path_field": "path"}],
        "filters": {"compile": tools, "synthesize": tools, "scorable": tools},
        "formats": ["parquet"],
    }
    overrides["decontaminate"] = _decontaminate(bench)
    cfg = load_build_config(None, overrides)
    samples: list[tuple[int, float]] = []
    done = [0]
    original = shards.ShardStore.commit

    def commit(self, index, record):  # record memory after every shard
        original(self, index, record)
        done[0] += record["modules"]
        samples.append((done[0], round(rss_mib(), 1)))

    shards.ShardStore.commit = commit
    try:
        start = time.monotonic()
        manifest = Builder(cfg, restart=True, progress=False).run()
        elapsed = time.monotonic() - start
    finally:
        shards.ShardStore.commit = original
    n = manifest["counts"]["split"]
    picks = [samples[int(k * (len(samples) - 1) / 4)] for k in range(5)] if samples else []
    return {"modules": n, "tasks": manifest["counts"]["tasks"], "seconds": round(elapsed, 1),
            "modules_per_s": round(n / elapsed, 1), "counts": manifest["counts"], "drops": manifest["drops"],
            "rss_mib_by_modules": picks, "peak_rss_mib": max((s[1] for s in samples), default=None)}


def _decontaminate(bench: str | None) -> dict:
    if not bench:
        return {"enabled": False}
    return {"enabled": True, "benchmarks": [
        {"kind": "verilog-eval", "path": os.path.join(bench, "verilog-eval-v2")},
        {"kind": "rtllm", "path": os.path.join(bench, "rtllm", "v1.1")}]}


def run_repo(spec: str, workdir: str, *, bench: str | None, workers: int) -> dict:
    """Filter-only build of one checkout, then an independent check of every kept reference."""
    from data_pipeline.build import Builder
    from data_pipeline.config import load_build_config
    from rewards.hierarchy import RewardConfig, score_completion
    from rewards.syntax import check_syntax
    from rewards.task import Task

    name, _, rest = spec.partition("=")
    path, _, settings = rest.partition("=")
    source = {"kind": "folder", "path": path, "name": name, **(json.loads(settings) if settings else {})}
    out = os.path.join(workdir, f"repo-{name}")
    cfg = load_build_config(None, {"output_dir": out, "sources": [source], "workers": workers, "shard_size": 64,
                                   "formats": ["jsonl"], "decontaminate": _decontaminate(bench)})
    start = time.monotonic()
    manifest = Builder(cfg, restart=True, progress=False).run()
    elapsed = time.monotonic() - start
    scored = compiled = total = 0
    failures = []
    config = RewardConfig()
    with open(manifest["dataset"]["files"]["jsonl"], encoding="utf-8") as fh:
        for line in fh:
            task = Task.from_dict(json.loads(line))
            total += 1
            score = score_completion(task, f"```verilog\n{task.reference}\n```", config)
            scored += score.passed is True
            compiled += check_syntax(task.reference, task.top).ok
            if score.passed is not True:
                failures.append({"id": task.id, "failure": score.failure})
    counts = manifest["counts"]
    return {"name": name, "modules": counts["split"], "kept": counts["tasks"], "files": manifest["sources"][name],
            "drops": manifest["drops"], "seconds": round(elapsed, 1),
            "modules_per_s": round(counts["split"] / elapsed, 2) if elapsed else None,
            "stage_seconds": manifest["timings_s"],
            "verified": {"kept": total, "engine_pass": scored, "compile_alone": compiled,
                         "engine_pass_fraction": round(scored / total, 4) if total else None,
                         "failures": failures[:10]}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=100_000, help="corpus size of the streaming run")
    parser.add_argument("--tools-sample", type=int, default=400, help="modules of the run with compile+synth (0: skip it)")
    parser.add_argument("--workdir", default="/tmp/verirl-bench-data")
    parser.add_argument("--bench", default=None, help="folder holding verilog-eval-v2/ and rtllm/v1.1/ checkouts")
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-streaming", action="store_true")
    parser.add_argument("--repo", action="append", default=[],
                        help="NAME=PATH[=JSON source settings]: build a real checkout and verify its kept tasks "
                             "(repeatable; with --repo only, the synthetic runs are skipped)")
    args = parser.parse_args(argv)

    import logging

    logging.basicConfig(level=logging.WARNING)
    os.makedirs(args.workdir, exist_ok=True)
    if args.repo:
        repos = [run_repo(spec, args.workdir, bench=args.bench, workers=args.workers) for spec in args.repo]
        print(json.dumps({"repos": repos}, indent=2))
        return 0
    corpus = os.path.join(args.workdir, "corpus.jsonl")
    n = max(args.modules, args.tools_sample)
    t0 = time.monotonic()
    write_corpus(corpus, n, args.seed)
    result = {"corpus": {"modules": n, "bytes": os.path.getsize(corpus), "seconds": round(time.monotonic() - t0, 1)}}
    if args.tools_sample > 0:
        result["tools_run"] = run(corpus, os.path.join(args.workdir, "tools"), max_modules=args.tools_sample,
                                  tools=True, bench=args.bench, shard_size=min(args.shard_size, 200),
                                  workers=args.workers)
    if not args.skip_streaming:
        result["streaming_run"] = run(corpus, os.path.join(args.workdir, "stream"), max_modules=args.modules,
                                      tools=False, bench=args.bench, shard_size=args.shard_size, workers=args.workers)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
