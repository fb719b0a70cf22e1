"""``verirl eval``: sample (or read) completions, score them with the reward engine, report pass@k.

    verirl eval --benchmark verilog-eval-v2 --bench-dir ../verilog-eval --task spec-to-rtl \\
        --model Qwen/Qwen2.5-Coder-7B-Instruct --backend vllm --k 1,5,10 --out runs/ve-spec
    verirl eval --benchmark verilog-eval-v2 --bench-dir ../verilog-eval --model m --greedy --out runs/ve-greedy
    verirl eval --benchmark rtllm --bench-dir ../RTLLM --completions samples.jsonl --k 1 --out runs/rtllm
    verirl eval --benchmark rtllm --bench-dir ../RTLLM --check-references --out runs/rtllm-refs
    verirl eval compare runs/base runs/grpo

Defaults follow the official VerilogEval v2 flow (sampling, extraction, verdicts); see docs/eval.md for the prompts
sent, the extraction rules, the outputs, the failure classes and how a run compares with the published flows.

Ctrl-C (SIGINT) or SIGTERM stops a run at once: samples and results are on disk as they are made (a few samples in
flight at most are lost), and one line says how many are saved and that the same command resumes. On a terminal a
progress bar shows the pass rate so far; elsewhere the command is quiet until its summary.

Test switch: ``VERIRL_EVAL_STOP_AFTER=N`` (or ``N:SIGTERM``) makes the process signal itself once at least N
samples are scored and saved, so interruption tests stop at an exact point instead of racing a timer.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import time
from typing import Any

from verirl.stopping import Stopped, stop_on_signals

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .extraction import RULES
    from .scoring import ANALYSES

    sub = parser.add_subparsers(dest="eval_command", metavar="{compare}")
    cmp = sub.add_parser("compare", help="diff two evaluation runs problem by problem")
    cmp.add_argument("run_a", help="first run folder (holding summary.json)")
    cmp.add_argument("run_b", help="second run folder")
    cmp.add_argument("--out", help="also write the comparison as Markdown (and .json next to it) to this file")

    src = parser.add_argument_group("benchmark")
    src.add_argument("--benchmark", choices=("verilog-eval-v2", "rtllm", "tasks"),
                     help="benchmark to evaluate on ('tasks': a verirl task JSONL file given as --bench-dir)")
    src.add_argument("--bench-dir", help="local checkout of the benchmark (or the task JSONL for 'tasks')")
    src.add_argument("--task", choices=("spec-to-rtl", "code-complete"),
                     help="VerilogEval v2 task (default spec-to-rtl)")
    src.add_argument("--problems", help="comma-separated task ids to evaluate (default: all)")
    src.add_argument("--limit", type=int, help="evaluate only the first N problems")

    what = parser.add_argument_group("what to score (one of)")
    what.add_argument("--model", help="model folder or Hub id to sample from (for --backend openai: served name)")
    what.add_argument("--completions", help="JSONL of {task_id, completion[, sample_index]} rows to score")
    what.add_argument("--check-references", action="store_true",
                      help="score the benchmark's reference designs: lists the problems whose reference fails")

    gen = parser.add_argument_group("sampling")
    gen.add_argument("--backend", choices=("vllm", "openai", "hf"), default="vllm", help="generation backend")
    gen.add_argument("--revision", help="model revision (Hub branch, tag or commit)")
    gen.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    gen.add_argument("--n", type=int, help="samples per problem (default 20, the official VerilogEval flow's)")
    gen.add_argument("--temperature", type=float,
                     help="sampling temperature (default 0.85, the official VerilogEval flow's)")
    gen.add_argument("--top-p", type=float, help="nucleus sampling top-p (default 0.95, the official flow's)")
    gen.add_argument("--greedy", action="store_true",
                     help="the official greedy setting: n=1, temperature 0, top-p 0.01 (and --k 1)")
    gen.add_argument("--max-tokens", type=int, default=16384,
                     help="new tokens per completion (default 16384, CodeV-R1's: reasoning models are not cut; "
                          "completions cut there are counted and reported)")
    gen.add_argument("--seed", type=int, help="sampling seed")
    gen.add_argument("--prompt-style", choices=("chat", "completion"), default="chat",
                     help="chat template (instruction models) or plain text (base models); default chat")
    gen.add_argument("--shots", type=int, default=0, help="VerilogEval in-context examples, 0-4 (default 0)")
    gen.add_argument("--rules", action="store_true", help="VerilogEval spec-to-rtl: append its coding rules")
    gen.add_argument("--explain", action="store_true",
                     help="VerilogEval spec-to-rtl: allow explanations (drop the [BEGIN]/[DONE] instruction)")
    gen.add_argument("--batch-size", type=int, default=16, help="problems per generation batch (default 16)")
    gen.add_argument("--device", help="hf backend: torch device (default cuda when available, else cpu)")
    gen.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm backend: GPUs per model")
    gen.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vllm backend: GPU memory share")
    gen.add_argument("--max-model-len", type=int, help="vllm backend: context length")
    gen.add_argument("--request-timeout", type=float, default=600.0, help="openai backend: seconds per request")
    gen.add_argument("--retries", type=int, default=3, help="openai backend: retries of a failed request")

    score = parser.add_argument_group("scoring and report")
    score.add_argument("--k", help="pass@k values, comma-separated (default 1,5,10; 1 with --greedy; k <= n)")
    score.add_argument("--extraction", choices=tuple(RULES),
                       help="how code is taken from a reply (default: official for verilog-eval-v2, reward for rtllm "
                            "and tasks; see docs/eval.md)")
    score.add_argument("--analysis", choices=tuple(ANALYSES),
                       help="verdict: official (VerilogEval's sv-iv-analyze on the log, warnings included; the "
                            "default for verilog-eval-v2) or engine (the reward engine's verdict, as in training)")
    score.add_argument("--max-unscorable", type=float, default=0.01,
                       help="refuse the run when more than this fraction of the samples could not be scored "
                            "(infrastructure faults; default 0.01); below it they count as failures")
    score.add_argument("--out", help="output folder (samples.jsonl, results.jsonl, summary.json, report.md, *.png)")
    score.add_argument("--workers", type=int, help="parallel scoring workers (default: the reward pool's)")
    score.add_argument("--ray-address", metavar="HOST:PORT", help="score on this Ray cluster (`local`: a private "
                       "Ray in this process); docs/training.md, 'Moving to a cluster'")
    score.add_argument("--ppa", action="store_true", help="synthesize passing designs and compare with the reference")
    score.add_argument("--no-reference-check", action="store_true",
                       help="do not simulate each reference first (faster with few samples per problem; broken "
                            "references then count as failures and timeouts are the flat 20 s limit)")
    score.add_argument("--liberty", help="Liberty file for --ppa areas in µm² (default: a technology-independent "
                                         "transistor-count estimate)")
    score.add_argument("--exclude-broken", action="store_true",
                       help="leave known-broken problems (reference fails its own testbench) out of pass@k")
    score.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def run(args: argparse.Namespace) -> int:
    from .benchmarks import BenchmarkError
    from .compare import CompareError
    from .generate import GenerationError
    from .passk import PassKError
    from .report import RunRefused

    progress = _Progress(args)
    try:
        if getattr(args, "eval_command", None) == "compare":
            return _compare(args)
        # both stop signals are taken explicitly (as `verirl train` does): an ignored SIGINT inherited from a
        # background launch would otherwise make Ctrl-C and the test switch do nothing
        with stop_on_signals(signal.SIGINT, signal.SIGTERM):
            return _evaluate(args, progress)
    except (KeyboardInterrupt, Stopped) as exc:
        progress.close()
        signame = exc.signame if isinstance(exc, Stopped) else "SIGINT"
        print(f"verirl eval: stopped by {signame}; {progress.saved_line()}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # Leave now: scoring threads still running a tool would otherwise hold the interpreter until they finish
        # (the tools run in their own sessions under CPU and time limits, and end by themselves).
        os._exit(128 + getattr(signal, signame))
    except GenerationError as exc:
        print(f"verirl eval: generation failed: {exc}", file=sys.stderr)
        return 1
    except RunRefused as exc:
        print(f"verirl eval: refused: {exc}", file=sys.stderr)
        return 4
    except (BenchmarkError, PassKError, CompareError, ValueError) as exc:
        print(f"verirl eval: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"verirl eval: error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}",
              file=sys.stderr)
        return 2
    except Exception as exc:
        from rewards.errors import VerirlRewardError

        if isinstance(exc, VerirlRewardError):
            print(f"verirl eval: reward engine error ({type(exc).__name__}): {exc}", file=sys.stderr)
            return 3
        raise
    finally:
        progress.close()


STOP_AFTER = "VERIRL_EVAL_STOP_AFTER"


class _Progress:
    """What the user sees while a run works: a bar with the pass rate so far on a terminal (stderr), nothing
    elsewhere; and what a stopped run has saved."""

    def __init__(self, args: argparse.Namespace):
        self.out = getattr(args, "out", None)
        self.phase = None  # "generation" or "scoring"
        self.done = self.total = self.passed = 0
        self.bar = None
        self.stop_after, self.stop_signal = _stop_after()

    def resumed(self, reused: int, total: int) -> None:
        self.phase, self.done, self.total = "scoring", reused, total
        if reused:
            where = os.path.join(self.out, "results.jsonl") if self.out else "results.jsonl"
            print(f"resuming: {reused} of {total} samples already scored in {where}; scoring the other "
                  f"{total - reused}", file=sys.stderr)
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=reused, desc="scoring", unit="sample", file=sys.stderr,
                            dynamic_ncols=True)
        self._maybe_stop()

    def update(self, done: int, total: int, passed: int) -> None:
        self.done, self.total, self.passed = done, total, passed
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix_str(f"pass {100 * passed / max(done, 1):.1f}%", refresh=False)
        self._maybe_stop()

    def _maybe_stop(self) -> None:
        if self.stop_after is not None and self.done >= self.stop_after:
            self.stop_after = None
            os.kill(os.getpid(), self.stop_signal)

    def saved_line(self) -> str:
        if self.phase == "scoring":
            where = os.path.join(self.out, "results.jsonl") if self.out else "results.jsonl"
            return (f"{self.done} of {self.total} samples scored and saved in {where}; run the same command again to "
                    "resume (scored samples are not scored again)")
        if self.phase == "generation":
            path = os.path.join(self.out, "samples.jsonl")
            saved = _count_lines(path)
            return (f"{saved} samples generated and saved in {path}; run the same command again to resume (only the "
                    "missing samples are generated)")
        return "nothing was saved yet"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _stop_after() -> tuple[int | None, int]:
    value = os.environ.get(STOP_AFTER)
    if not value:
        return None, signal.SIGINT
    count, _, name = value.partition(":")
    try:
        return int(count), getattr(signal, name or "SIGINT")
    except (ValueError, AttributeError):
        raise ValueError(f"{STOP_AFTER}={value!r}: expected N or N:SIGINT / N:SIGTERM") from None


def _count_lines(path: str) -> int:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return sum(1 for line in fh if line.strip())
    except OSError:
        return 0


def sampling_settings(args: argparse.Namespace):
    """The run's sampling settings: the official flow's unless given; ``--greedy`` is its greedy setting."""
    from .generate import OFFICIAL_GREEDY, SamplingSettings

    given = {name: getattr(args, name) for name in ("n", "temperature", "top_p") if getattr(args, name) is not None}
    if args.greedy:
        clash = {k: v for k, v in given.items() if v != OFFICIAL_GREEDY[k]}
        if clash:
            flags = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in clash.items())
            raise ValueError(f"--greedy means n=1, temperature 0, top-p 0.01 (the official greedy setting); drop "
                             f"{flags} or --greedy")
        given = dict(OFFICIAL_GREEDY)
    return SamplingSettings(**given, max_tokens=args.max_tokens, seed=args.seed)


def _check_ks_before_scoring(ks, samples, path: str) -> None:
    """pass@k needs k <= the samples of every problem: fail before any sample is scored."""
    from collections import Counter

    from .passk import PassKError

    per_problem = Counter(s.task_id for s in samples)
    task_id, n = min(per_problem.items(), key=lambda item: item[1])
    too_big = [k for k in ks if k > n]
    if too_big:
        fewer = sum(1 for v in per_problem.values() if v < max(too_big))
        raise PassKError(f"pass@{too_big[0]} is undefined with n={n} samples per problem (needs k <= n): {path} has "
                         f"{n} for {task_id}" + (f" ({fewer} problems have fewer than {max(too_big)})" if fewer > 1
                                                 else "")
                         + f"; drop k={','.join(map(str, too_big))} from --k or add samples (nothing was scored)")


def _compare(args) -> int:
    from .compare import compare_runs, render

    cmp = compare_runs(args.run_a, args.run_b)
    text = render(cmp)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
        with open(os.path.splitext(args.out)[0] + ".json", "w", encoding="utf-8") as fh:
            json.dump(cmp.to_dict(), fh, indent=2)
    return 0


@dataclasses.dataclass
class _Plan:
    """What an evaluation run will do, decided from its arguments before any work."""

    ks: list[int]
    prompt_settings: Any
    rule: Any
    analysis: Any
    sampling: Any  # SamplingSettings when sampling a model, else None


@dataclasses.dataclass
class _Samples:
    """The samples to score, where they came from, and how they were sampled when known."""

    samples: list
    source: str
    model_info: dict
    recorded: dict
    timings: dict[str, float]


def _evaluate(args, progress: _Progress) -> int:
    """Validate everything, then sample (or read) the completions, score them, write the outputs, tell the user."""
    from .benchmarks import load_benchmark
    from .report import check_unscorable, summarize, write_outputs

    plan = _plan(args)
    benchmark = load_benchmark(args.benchmark, args.bench_dir, args.task)
    problems = _problems(args, benchmark)
    os.makedirs(args.out, exist_ok=True)
    got = _samples(args, plan, benchmark, problems, progress)
    rows = _score(args, plan, benchmark, got, progress)
    if plan.sampling is not None:
        got.recorded = {"sampling": plan.sampling.record(), "prompt": dataclasses.asdict(plan.prompt_settings)}
    summary = summarize(benchmark, rows, plan.ks, exclude_broken=args.exclude_broken, model=got.model_info,
                        sampling=got.recorded.get("sampling"), prompt=got.recorded.get("prompt"), timings=got.timings,
                        source=got.source, extraction=plan.rule, analysis=plan.analysis,
                        reference_check=not args.no_reference_check, selected=[p.task_id for p in problems])
    check_unscorable(summary, rows, args.max_unscorable)
    paths = write_outputs(args.out, summary, rows, plots=not args.no_plots)
    _tell_the_user(args, benchmark, summary, len(got.samples), got.timings, paths)
    return 0


def _plan(args) -> _Plan:
    """Every argument checked before any work (n < k is an error before any sampling)."""
    from .benchmarks import BenchmarkError
    from .extraction import check_rule
    from .passk import check_ks, parse_ks
    from .prompts import PromptSettings
    from .scoring import check_analysis

    if not args.benchmark or not args.bench_dir:
        raise BenchmarkError("--benchmark and --bench-dir are required (or use `verirl eval compare A B`)")
    if not args.out:
        raise BenchmarkError("--out is required: the folder for samples, results and the report")
    sources = [bool(args.model), bool(args.completions), bool(args.check_references)]
    if sum(sources) != 1:
        raise BenchmarkError("give exactly one of --model (sample and score), --completions FILE (score) or "
                             "--check-references")
    ks = parse_ks(args.k or ("1" if args.greedy else "1,5,10"))
    prompt_settings = PromptSettings(style=args.prompt_style, shots=args.shots, rules=args.rules,
                                     explain=args.explain)
    rule = check_rule(args.extraction, args.benchmark)
    analysis = check_analysis(args.analysis, args.benchmark)
    if args.exclude_broken and args.no_reference_check:
        raise BenchmarkError("--exclude-broken needs the reference check that finds the broken problems; drop "
                             "--no-reference-check")
    if not 0 <= args.max_unscorable <= 1:
        raise BenchmarkError(f"--max-unscorable is a fraction of the samples in [0, 1], got {args.max_unscorable}")
    if args.liberty and not args.ppa:
        raise BenchmarkError("--liberty only applies with --ppa")
    if args.liberty and not os.path.isfile(args.liberty):
        raise BenchmarkError(f"--liberty {args.liberty} does not exist")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise BenchmarkError(f"--out {args.out} is a file; give a folder (it will hold samples.jsonl, results.jsonl, "
                             "summary.json, report.md)")
    sampling = None
    if args.model:
        sampling = sampling_settings(args)
        check_ks(ks, sampling.n)
    if args.check_references:
        ks = [1]
    return _Plan(ks, prompt_settings, rule, analysis, sampling)


def _problems(args, benchmark) -> list:
    """The problems selected by ``--problems`` and ``--limit``."""
    from .benchmarks import BenchmarkError

    problems = list(benchmark.problems.values())
    if args.problems:
        problems = [benchmark.get(t.strip(), where="--problems: ") for t in args.problems.split(",") if t.strip()]
    if args.limit is not None:
        if args.limit < 1:
            raise BenchmarkError(f"--limit must be positive, got {args.limit}")
        problems = problems[:args.limit]
    return problems


def _samples(args, plan: _Plan, benchmark, problems: list, progress: _Progress) -> _Samples:
    """Sample the model into ``<out>/samples.jsonl`` (resumable), read ``--completions``, or take the references."""
    from .benchmarks import BenchmarkError
    from .generate import generate_samples, recorded_settings
    from .scoring import load_completions, reference_samples

    selected = {p.task_id for p in problems}
    timings: dict[str, float] = {}
    if args.model:
        backend = _backend(args)
        samples_path = os.path.join(args.out, "samples.jsonl")
        progress.phase = "generation"
        start = time.monotonic()
        try:
            generate_samples(benchmark, problems, backend, plan.sampling, plan.prompt_settings, samples_path,
                             model=args.model, revision=args.revision, batch_size=args.batch_size)
        finally:
            backend.close()  # a local model's memory is not needed for scoring
        timings["generation_seconds"] = round(time.monotonic() - start, 3)
        samples = [s for s in load_completions(samples_path, benchmark)
                   if s.task_id in selected and s.sample_index < plan.sampling.n]
        model_info = {"name": args.model, "revision": args.revision, "backend": args.backend}
        return _Samples(samples, samples_path, model_info, {}, timings)
    if args.completions:
        samples = [s for s in load_completions(args.completions, benchmark) if s.task_id in selected]
        if not samples:
            raise BenchmarkError(f"{args.completions} has no rows for the selected problems")
        _check_ks_before_scoring(plan.ks, samples, args.completions)
        recorded = recorded_settings(args.completions)  # a samples.jsonl written by verirl says how it was sampled
        return _Samples(samples, os.path.abspath(args.completions), recorded.get("model") or {}, recorded, timings)
    return _Samples(reference_samples(benchmark, problems), "reference designs", {}, {}, timings)


def _backend(args):
    """The generation backend ``--backend`` names, with its own flags."""
    from .generate import make_backend

    kwargs = {}
    if args.backend == "hf" and args.device:
        kwargs["device"] = args.device
    elif args.backend == "vllm":
        kwargs.update(tensor_parallel_size=args.tensor_parallel_size,
                      gpu_memory_utilization=args.gpu_memory_utilization, max_model_len=args.max_model_len)
    elif args.backend == "openai":
        kwargs.update(timeout=args.request_timeout, retries=args.retries)
    return make_backend(args.backend, args.model, revision=args.revision, base_url=args.base_url, seed=args.seed,
                        **kwargs)


def _score(args, plan: _Plan, benchmark, got: _Samples, progress: _Progress) -> list[dict]:
    """Score the samples into ``<out>/results.jsonl`` (resumable); the pool is closed whatever happens."""
    from .scoring import eval_ppa_config, make_pool, score_samples

    if args.ray_address:  # the pool reads the address from RAY_ADDRESS
        os.environ["RAY_ADDRESS"] = args.ray_address
    pool = make_pool(workers=args.workers, reference_check=not args.no_reference_check,
                     backend="ray" if args.ray_address else "local")
    start = time.monotonic()
    try:
        rows = score_samples(benchmark, got.samples, pool, results_path=os.path.join(args.out, "results.jsonl"),
                             progress=progress.update, resumed=progress.resumed, extraction=plan.rule,
                             analysis=plan.analysis, ppa=eval_ppa_config(args.liberty) if args.ppa else None)
    finally:
        close = getattr(pool, "close", None)
        if close:
            close()
        progress.close()
    got.timings["scoring_seconds"] = round(time.monotonic() - start, 3)
    return rows


def _tell_the_user(args, benchmark, summary: dict, total: int, timings: dict[str, float], paths: dict) -> None:
    headline = ", ".join(f"pass@{k} = {100 * v:.2f}%" for k, v in summary["pass_at_k"].items())
    print(f"{benchmark.name}{' ' + benchmark.task if benchmark.task else ''}: {summary['problems']} problems, "
          f"{total} samples scored in {timings['scoring_seconds']:.1f}s: {headline}")
    if args.check_references:
        failing = [t for t, e in summary["per_problem"].items() if not e["c"]]
        print(f"references failing their own testbench ({len(failing)}): {', '.join(failing) or 'none'}")
        for t in failing:
            print(f"  {t}: {summary['per_problem'][t]['failures']}")
    print(summary["comparable_to"]["line"])
    ppa = summary.get("ppa")
    if ppa is not None:
        failed = ppa.get("reference_failures") or {}
        print(f"PPA: {ppa['compared']} passing samples compared with the reference"
              + (f"; the reference of {len(failed)} problems does not synthesize ({', '.join(list(failed)[:5])}"
                 f"{', ...' if len(failed) > 5 else ''}): no PPA for them, verdicts and pass@k unchanged (see "
                 "report.md)" if failed else ""))
    if summary["unscorable_samples"]:
        print(f"warning: {summary['unscorable_samples']} samples could not be scored and count as failures; "
              "see 'reason' in results.jsonl", file=sys.stderr)
    truncated = summary["completion_lengths"]["truncated"]
    if truncated:
        print(f"warning: {truncated} of {summary['samples']} completions were cut at --max-tokens "
              f"{(summary.get('sampling') or {}).get('max_tokens')} (finish reason 'length'); a longer limit may "
              "change their verdicts", file=sys.stderr)
    for name, path in paths.items():
        print(f"{name}: {path}")
