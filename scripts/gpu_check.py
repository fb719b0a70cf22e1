#!/usr/bin/env python
"""The GPU check: verirl's CUDA path measured in one short run (docs/training.md, "GPU check").

One command, on one GPU, within ``--budget-s`` (default 480 s):

* ``environment`` — versions (Python, torch, CUDA, TRL, ...), the GPU, the cores, ``verirl doctor``;
* ``rewards`` — reward throughput of :class:`rewards.pool.RewardPool` on this machine's cores against the naive
  one-at-a-time loop, on the batches of ``scripts/bench_rewards.py``;
* ``model`` — a Qwen2-architecture model built from a config (random init, ~0.5B parameters) with a byte-level
  BPE tokenizer trained here on curriculum tasks (:func:`verirl.models.build_tiny_model`); nothing is downloaded;
* ``sft`` — a short SFT warm-up through ``verirl.train`` (bf16, gradient checkpointing) so that the model writes
  Verilog and the rewards below simulate real designs;
* ``dapo_full``, ``dapo_lora`` — DAPO steps through verirl's trainer (bf16, gradient checkpointing, generation
  with transformers on CUDA, rewards from the simulation pool): step time split into generation / reward /
  optimisation, tokens/s, peak GPU memory;
* ``eval`` — ``verirl eval`` with the transformers backend on CUDA on 20 VerilogEval problems (the score of such a
  model means nothing; the plumbing is what is checked).

Each phase runs in its own process with a time box; a phase that fails or times out is recorded and the next one
runs. ``--out`` (one JSON file) is rewritten after every phase and every few seconds while one runs, so a run
killed from outside still leaves its figures. ``--tiny`` runs the same phases on CPU with a tiny model in about a
minute (the test suite does, so this script cannot rot).

    bash scripts/gpu_check.sh                      # on the device machine, after scripts/prepare_gpu_travel.py
    python scripts/gpu_check.py --tiny --out /tmp/gpu_check.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import io
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SCHEMA = "verirl.gpu_check/1"
PHASES = ("environment", "rewards", "model", "sft", "dapo_full", "dapo_lora", "eval")
#: phases that need another's output
NEEDS = {"sft": "model", "dapo_full": "model", "dapo_lora": "model", "eval": "model"}
SYSTEM_PROMPT = "Answer with one Verilog module in a ```verilog block."
POLL_S = 3.0
RESERVE_S = 15.0  # a training phase's time box keeps this much for its last step and its summary
TEST_HANG_ENV = "VERIRL_GPU_CHECK_TEST_HANG"  # tests only: the phase it names records its pid and blocks


class Terminated(Exception):
    """The run itself was asked to stop (SIGTERM, SIGINT): the phase in flight is ended, the report written."""


def _terminate(signum, frame):
    raise Terminated(signal.Signals(signum).name)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes and time boxes of one mode (``gpu`` or ``tiny``)."""

    device: str
    bf16: bool
    budgets: dict  # phase -> hard time box (s)
    train_seconds: float  # soft limit on a training phase's steps (the trainer stops after the step in flight)
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    max_positions: int
    tasks: int
    max_level: int
    sft_batch: int
    sft_steps: int
    sft_lr: float
    rl_batch: int
    generations: int
    completion_length: int
    rl_steps: int
    eval_problems: int
    eval_samples: int
    eval_tokens: int
    bench_tasks: int
    bench_samples: int


GPU = Settings(
    device="cuda", bf16=True,
    budgets={"environment": 25, "rewards": 55, "model": 50, "sft": 75, "dapo_full": 80, "dapo_lora": 80,
             "eval": 100},
    train_seconds=40, hidden=896, intermediate=4864, layers=32, heads=14, kv_heads=2, vocab=4096,
    max_positions=4096, tasks=512, max_level=3, sft_batch=32, sft_steps=400, sft_lr=3e-4, rl_batch=32,
    generations=8, completion_length=128, rl_steps=20, eval_problems=20, eval_samples=4, eval_tokens=128,
    bench_tasks=24, bench_samples=8,
)
TINY = Settings(
    device="cpu", bf16=False,
    budgets=dict.fromkeys(PHASES, 150),
    train_seconds=60, hidden=64, intermediate=128, layers=2, heads=1, kv_heads=1, vocab=512, max_positions=2048,
    tasks=24, max_level=2, sft_batch=4, sft_steps=2, sft_lr=1e-3, rl_batch=8, generations=4, completion_length=16,
    rl_steps=2, eval_problems=3, eval_samples=2, eval_tokens=16, bench_tasks=2, bench_samples=4,
)


# ------------------------------------------------------------------------------------------------ helpers


def _clean(value):
    """JSON-safe: non-finite floats become None (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: str, data: dict) -> None:
    """Atomic: a reader (or a kill) never sees half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(_clean(data), fh, indent=2, allow_nan=False)
    os.replace(tmp, path)


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _median(values):
    values = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(values) if values else None


def _ratio(a, b):
    return a / b if a is not None and b else None


class Progress:
    """A phase's result file, rewritten on every update (the parent merges it into the report)."""

    def __init__(self, path: str):
        self.path, self.data = path, {}

    def update(self, **fields) -> None:
        self.data.update(fields)
        write_json(self.path, self.data)


def gpu_memory() -> dict | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return {"peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
            "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
            "total_gib": torch.cuda.get_device_properties(0).total_memory / 2**30}


# ------------------------------------------------------------------------------------------------ summaries


def summarize_rl(log: list[dict], batch: int, generations: int) -> dict:
    """Per-step figures of a GRPO/DAPO phase; the first step (warm-up, pool start) is reported apart."""
    steps = [r for r in log if "step_time" in r]
    if not steps:
        return {"steps": 0}
    steady = steps[1:] or steps
    gen_tokens = completions = gen_s = reward_s = opt_s = train_tokens = 0.0
    previous = steps[0].get("num_tokens", 0.0) if len(steps) > 1 else 0.0
    for r in steady:
        n = (r.get("dynamic_sampling/groups_generated") or batch / generations) * generations
        completions += n
        gen_tokens += (r.get("completions/mean_length") or 0.0) * n
        gen_s += r.get("timing/generation_s") or 0.0
        reward_s += r.get("timing/reward_s") or 0.0
        opt_s += r.get("timing/optimization_s") or 0.0
        train_tokens += (r.get("num_tokens") or 0.0) - previous
        previous = r.get("num_tokens") or previous
    failures = {}  # a failure class missing from a step's metrics did not occur in it
    for key in sorted({k for r in steady for k in r if "/failure/" in k}):
        failures[key] = _median([r.get(key, 0.0) for r in steady])
    return {
        "steps": len(steps),
        "first_step_s": steps[0]["step_time"],
        "step_s": _median([r["step_time"] for r in steady]),
        "generation_s": _median([r.get("timing/generation_s") for r in steady]),
        "reward_s": _median([r.get("timing/reward_s") for r in steady]),
        "optimization_s": _median([r.get("timing/optimization_s") for r in steady]),
        "completions_per_step": completions / len(steady),
        "mean_completion_tokens": _median([r.get("completions/mean_length") for r in steady]),
        "generation_tokens_per_s": _ratio(gen_tokens, gen_s),
        "training_tokens_per_s": _ratio(train_tokens, opt_s),
        "reward_completions_per_s": _ratio(completions, reward_s),
        "reward_mean": _median([r.get("reward") for r in steady]),
        "pass_rate": _median([r.get("pass_rate/all") for r in steady]),
        "keep_ratio": _median([r.get("dynamic_sampling/keep_ratio") for r in steady]),
        "failure_fractions": failures,
    }


def summarize_sft(log: list[dict]) -> dict:
    losses = [r["loss"] for r in log if isinstance(r.get("loss"), (int, float))]
    end = next((r for r in reversed(log) if "train_runtime" in r), {})
    tokens = max((r.get("num_tokens") or 0 for r in log), default=0)
    return {"steps": max((r.get("step", 0) for r in log), default=0), "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None, "train_runtime_s": end.get("train_runtime"),
            "tokens": tokens, "tokens_per_s": _ratio(tokens, end.get("train_runtime"))}


def summary(report: dict) -> dict:
    """The headline figures, flat, from the phases' results."""
    p = report.get("phases", {})
    out: dict = {"phases_ok": [n for n, r in p.items() if r.get("status") == "ok"],
                 "phases_not_ok": {n: r.get("status") for n, r in p.items() if r.get("status") != "ok"}}
    env = p.get("environment", {})
    packages = env.get("packages") or {}
    tools = (env.get("doctor") or {}).get("tools") or {}
    out.update(gpu=(env.get("cuda") or {}).get("device_name"), cpus=env.get("cpus"),
               versions={**{k: packages.get(k) for k in ("torch", "transformers", "trl", "peft", "datasets")},
                         "cuda": (env.get("cuda") or {}).get("torch_cuda"), "python": env.get("python"),
                         **{k: tools.get(k) for k in ("iverilog", "yosys")}})
    out["model_parameters"] = p.get("model", {}).get("parameters")
    for name in ("sft", "dapo_full", "dapo_lora"):
        figures = dict(p.get(name, {}).get("figures") or {})
        figures["peak_gpu_gib"] = (p.get(name, {}).get("gpu_memory") or {}).get("peak_allocated_gib")
        out[name] = figures
    ev = p.get("eval", {})
    out["eval"] = {k: ev.get(k) for k in ("problems", "samples", "pass_at_1", "generation_s", "scoring_s",
                                          "generation_tokens_per_s")}
    out["eval"]["peak_gpu_gib"] = (ev.get("gpu_memory") or {}).get("peak_allocated_gib")
    rw = p.get("rewards", {})
    out["rewards"] = {"workers": rw.get("workers"),
                      **{f"{b}_speedup": r.get("speedup") for b, r in (rw.get("batches") or {}).items()},
                      **{f"{b}_pool_per_s": r.get("pool_per_s") for b, r in (rw.get("batches") or {}).items()}}
    return out


# ------------------------------------------------------------------------------------------------ phases


class Context:
    """What a phase needs: settings, folders, its progress file and its time limits (wall-clock, epoch s)."""

    def __init__(self, args, settings: Settings, progress: Progress):
        self.args, self.s, self.progress = args, settings, progress
        self.work = args.work
        self.start = time.monotonic()
        self.end = time.time() + (args.time_box or 3600.0)  # the parent kills the phase then
        self.deadline = self.end - RESERVE_S  # no new training step after this (moved up when training begins)

    def path(self, *parts: str) -> str:
        return os.path.join(self.work, *parts)

    def need_cuda(self) -> None:
        import torch

        if self.s.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("no CUDA device is visible to torch: run on the GPU machine, or use --tiny on CPU")
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()


def _version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def phase_environment(ctx: Context) -> None:
    import platform

    import torch

    from verirl.cli import main as verirl_main

    packages = {n: _version(n) for n in ("torch", "transformers", "trl", "peft", "accelerate", "datasets",
                                         "pyarrow", "numpy", "tokenizers", "safetensors", "pandas")}
    cuda = {"available": torch.cuda.is_available(), "torch_cuda": torch.version.cuda}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        cuda.update(device_name=props.name, capability=f"{props.major}.{props.minor}",
                    total_gib=props.total_memory / 2**30, devices=torch.cuda.device_count(),
                    bf16=torch.cuda.is_bf16_supported(), cudnn=torch.backends.cudnn.version())
    meminfo = {}
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        meminfo = dict(line.split(":", 1) for line in fh if ":" in line)
    ctx.progress.update(python=platform.python_version(), platform=platform.platform(), packages=packages, cuda=cuda,
                        cpus=len(os.sched_getaffinity(0)), memory=meminfo.get("MemTotal", "").strip() or None,
                        tool_overrides={k: v for k, v in os.environ.items() if k.startswith("VERIRL_")})
    manifest = _read_json(os.path.join(ctx.args.travel, "manifest.json")) if ctx.args.travel else {}
    ctx.progress.update(travel={k: manifest.get(k) for k in ("created", "repo_commit", "yosys")} if manifest else None)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = verirl_main(["doctor", "--json"])
    doctor = json.loads(out.getvalue())
    tools = doctor.get("tools") or {}
    ppa = bool(tools.get("yosys"))  # without Yosys (prepared with --no-yosys) the check skips PPA
    ctx.progress.update(doctor=doctor, doctor_exit=rc, ppa=ppa)
    missing = [t for t in ("iverilog", "vvp") if not tools.get(t)]
    if missing or (ppa and doctor.get("self_test") != "ok"):
        raise RuntimeError(f"verirl doctor failed (exit {rc}): tools {tools}, self-test {doctor.get('self_test')}")


def phase_rewards(ctx: Context) -> None:
    import random

    sys.path.insert(0, HERE)
    import bench_rewards as bench  # scripts/bench_rewards.py: the same batches, loops and timing

    from rewards.hierarchy import RewardConfig
    from rewards.pool import default_workers

    workers = default_workers()
    rng = random.Random(0)
    tasks = [bench.make_task(i, rng) for i in range(ctx.s.bench_tasks)]
    config = RewardConfig()
    batches = {"clean": {}, "duplicates_25pct": {"duplicates": 0.25}, "infinite_loops_10pct": {"loops": 0.10}}
    ctx.progress.update(workers=workers, tasks=len(tasks), samples=ctx.s.bench_samples, batches={})
    results = {}
    last = 0.0
    for seed, (name, kwargs) in enumerate(batches.items(), start=1):
        if time.time() + last > ctx.end - 5:  # the next batch would not finish inside the time box
            results[name] = {"skipped": "time box"}
            continue
        started = time.monotonic()
        pairs = bench.build_batch(tasks, ctx.s.bench_samples, random.Random(seed), **kwargs)
        t_naive, s_naive = bench.naive(pairs, config)
        t_pool, s_pool = bench.pooled(pairs, config, workers)
        n = len(pairs)
        results[name] = {"completions": n, "naive_s": t_naive, "pool_s": t_pool, "naive_per_s": n / t_naive,
                         "pool_per_s": n / t_pool, "speedup": t_naive / t_pool,
                         "passed": sum(s.passed for s in s_pool),
                         "same_verdicts": all(a.passed == b.passed and a.failure == b.failure
                                              for a, b in zip(s_naive, s_pool))}
        ctx.progress.update(batches=results)
        last = time.monotonic() - started
    if not any(r.get("same_verdicts") for r in results.values()):
        raise RuntimeError(f"the pool and the naive loop disagree (or nothing ran): {results}")


def _curriculum(ctx: Context) -> list[dict]:
    from data_pipeline.curriculum import CurriculumConfig, generate_curriculum

    return generate_curriculum(CurriculumConfig(seed=0, n_train=ctx.s.tasks, n_test=4,
                                                max_level=ctx.s.max_level))["train"]


def phase_model(ctx: Context) -> None:
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from verirl.models import build_tiny_model

    ctx.need_cuda()
    tasks = _curriculum(ctx)
    with open(ctx.path("tasks.jsonl"), "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(t) + "\n" for t in tasks)
    texts = ([t["prompt"] for t in tasks] + [t["reference"] for t in tasks]
             + ["```verilog\n", "\n```", SYSTEM_PROMPT] * 4)
    start = time.perf_counter()
    # verirl's tokenizer builder (it also writes a throw-away tiny Llama beside the tokenizer)
    build_tiny_model(ctx.path("tokenizer"), texts, vocab_size=ctx.s.vocab, hidden_size=64, num_layers=1,
                     num_heads=1, max_position_embeddings=ctx.s.max_positions)
    tokenizer = AutoTokenizer.from_pretrained(ctx.path("tokenizer"))
    tokenizer_s = time.perf_counter() - start
    s = ctx.s
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=s.hidden, intermediate_size=s.intermediate,
        num_hidden_layers=s.layers, num_attention_heads=s.heads, num_key_value_heads=s.kv_heads,
        max_position_embeddings=s.max_positions, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.device(s.device):
        model = Qwen2ForCausalLM(config)
    if s.bf16:
        model.to(torch.bfloat16)  # saved in bf16: `dtype: auto` loads it so (eval), the recipes ask for it
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        setattr(model.generation_config, key, getattr(tokenizer, key))
    init_s = time.perf_counter() - start
    start = time.perf_counter()
    model.save_pretrained(ctx.path("model"))
    tokenizer.save_pretrained(ctx.path("model"))
    ctx.progress.update(architecture=type(model).__name__, parameters=sum(p.numel() for p in model.parameters()),
                        vocab=len(tokenizer), tasks=len(tasks), layers=s.layers, hidden=s.hidden,
                        dtype=str(next(model.parameters()).dtype), tokenizer_s=tokenizer_s, init_s=init_s,
                        save_s=time.perf_counter() - start, gpu_memory=gpu_memory())


def _callback(ctx: Context):
    from transformers import TrainerCallback

    class PhaseCallback(TrainerCallback):
        """Streams every log record to the progress file; stops the run once the soft time limit passes."""

        def on_train_begin(self, args, state, control, **kwargs):
            ctx.deadline = min(time.time() + ctx.s.train_seconds, ctx.end - RESERVE_S)
            ctx.progress.update(setup_s=time.monotonic() - ctx.start, log=[])

        def on_log(self, args, state, control, logs=None, **kwargs):
            record = {k: v for k, v in (logs or {}).items() if isinstance(v, (int, float))}
            record["step"] = state.global_step
            ctx.progress.data.setdefault("log", []).append(record)
            ctx.progress.update(gpu_memory=gpu_memory())

        def on_step_end(self, args, state, control, **kwargs):
            if time.time() > ctx.deadline:
                control.should_training_stop = True
                ctx.progress.data["stopped_at_time_limit"] = True

    return PhaseCallback()


def _common_recipe(ctx: Context, model: str, out: str) -> dict:
    s = ctx.s
    return {"model_name_or_path": model, "dataset": ctx.path("tasks.jsonl"), "output_dir": out,
            "system_prompt": SYSTEM_PROMPT, "bf16": s.bf16, "use_cpu": s.device == "cpu",
            "gradient_checkpointing": True, "dtype": "bfloat16" if s.bf16 else "float32", "lr_scheduler_type": "constant", "save_strategy": "no",
            "report_to": ["none"], "disable_tqdm": True, "seed": 0}


def phase_sft(ctx: Context) -> None:
    from verirl.config import recipe_from_dict
    from verirl.train import train

    ctx.need_cuda()
    s = ctx.s
    recipe = recipe_from_dict({
        **_common_recipe(ctx, ctx.path("model"), ctx.path("sft")), "trainer": "sft",
        "per_device_train_batch_size": s.sft_batch, "max_length": 512, "learning_rate": s.sft_lr,
        "lr_scheduler_type": "constant_with_warmup", "warmup_steps": 10 if s.sft_steps > 20 else 0,
        "max_steps": s.sft_steps, "logging_steps": 5 if s.sft_steps > 20 else 1,
    })
    result = train(recipe, callbacks=[_callback(ctx)])
    log = ctx.progress.data.get("log", [])
    ctx.progress.update(figures=summarize_sft(log), global_step=result.global_step, gpu_memory=gpu_memory(),
                        log=log[-20:])


def _rewards(ctx: Context) -> list[dict]:
    from rewards.toolchain import has_tool

    rewards = [{"name": "format", "weight": 0.1},
               {"name": "simulation", "weight": 1.0, "kwargs": {"partial_credit": True}},
               {"name": "overlong", "weight": 0.5,
                "kwargs": {"max_completion_len": ctx.s.completion_length,
                           "soft_punish_cache": ctx.s.completion_length // 4}}]
    if has_tool("yosys"):
        rewards.append({"name": "ppa", "weight": 0.2})
    return rewards


def phase_dapo(ctx: Context, lora: bool) -> None:
    from verirl.config import recipe_from_dict
    from verirl.train import train

    ctx.need_cuda()
    s = ctx.s
    data = {
        **_common_recipe(ctx, ctx.args.model_dir, ctx.path("dapo_lora" if lora else "dapo_full")),
        "trainer": "dapo", "rewards": _rewards(ctx), "per_device_train_batch_size": s.rl_batch,
        "num_generations": s.generations, "max_completion_length": s.completion_length, "temperature": 1.0,
        "max_refill_rounds": 1, "entropy_gate": {"mode": "per_response", "top_fraction": 0.2, "log_tokens_every": 0},
        # a throughput check: keep groups on any reward spread, so that steps train even when the barely warmed-up
        # model passes nothing (with the default `pass` signal such steps would be skipped, no forward/backward)
        "dynamic_sampling_signal": "total",
        "learning_rate": 1e-4 if lora else 1e-5, "max_steps": s.rl_steps, "logging_steps": 1,
    }
    if lora:
        data.update(use_peft=True, lora_r=32, lora_alpha=64,
                    lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    ctx.progress.update(model=ctx.args.model_dir, rewards=[r["name"] for r in data["rewards"]],
                        batch=s.rl_batch, generations=s.generations, completion_length=s.completion_length)
    result = train(recipe_from_dict(data), callbacks=[_callback(ctx)], save_final=False)
    log = ctx.progress.data.get("log", [])
    trainer = result.trainer
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    ctx.progress.update(figures=summarize_rl(log, s.rl_batch, s.generations), global_step=result.global_step,
                        trainable_parameters=trainable, gpu_memory=gpu_memory())


def _eval_source(ctx: Context) -> tuple[list[str], str]:
    """The benchmark arguments: the VerilogEval copy, or (tiny mode without one) curriculum tasks."""
    bench = ctx.args.bench_dir
    if bench:
        return ["--benchmark", "verilog-eval-v2", "--bench-dir", bench, "--task", "spec-to-rtl"], "verilog-eval-v2"
    if ctx.s.device != "cpu":
        raise RuntimeError("no VerilogEval copy: run scripts/prepare_gpu_travel.py (or pass --bench-dir)")
    from data_pipeline.curriculum import CurriculumConfig, generate_curriculum

    tasks = generate_curriculum(CurriculumConfig(seed=1, n_train=4, n_test=4, max_level=1))["test"]
    with open(ctx.path("eval_tasks.jsonl"), "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(t) + "\n" for t in tasks)
    return ["--benchmark", "tasks", "--bench-dir", ctx.path("eval_tasks.jsonl")], "tasks"


def phase_eval(ctx: Context) -> None:
    from transformers import AutoTokenizer

    from rewards.toolchain import has_tool
    from verirl.cli import main as verirl_main

    ctx.need_cuda()
    s = ctx.s
    source, benchmark = _eval_source(ctx)
    out = ctx.path("eval")
    argv = ["eval", *source, "--limit", str(s.eval_problems), "--model", ctx.args.model_dir, "--backend", "hf",
            "--device", s.device, "--n", str(s.eval_samples), "--temperature", "0.8", "--max-tokens",
            str(s.eval_tokens), "--k", "1", "--seed", "0", "--batch-size", "4", "--out", out,
            "--no-plots"]
    ppa = has_tool("yosys")
    if ppa:
        argv.append("--ppa")
    ctx.progress.update(benchmark=benchmark, argv=argv, model=ctx.args.model_dir, ppa=ppa)
    rc = verirl_main(argv)
    result = _read_json(os.path.join(out, "summary.json"))
    tokenizer = AutoTokenizer.from_pretrained(ctx.args.model_dir)
    tokens = 0
    with open(os.path.join(out, "samples.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            tokens += len(tokenizer(json.loads(line)["completion"], add_special_tokens=False)["input_ids"])
    timings = result.get("timings") or {}
    ctx.progress.update(
        exit_status=rc, problems=result.get("problems"), samples=result.get("samples"),
        pass_at_1=(result.get("pass_at_k") or {}).get("1"), failure_classes=result.get("failure_classes"),
        unscorable_samples=result.get("unscorable_samples"), generation_s=timings.get("generation_seconds"),
        scoring_s=timings.get("scoring_seconds"), generated_tokens=tokens,
        generation_tokens_per_s=_ratio(tokens, timings.get("generation_seconds")), ppa=result.get("ppa"),
        tools=result.get("tools"), gpu_memory=gpu_memory())
    if rc:
        raise RuntimeError(f"verirl eval exited with status {rc}")


PHASE_FUNCTIONS = {
    "environment": phase_environment, "rewards": phase_rewards, "model": phase_model, "sft": phase_sft,
    "dapo_full": lambda ctx: phase_dapo(ctx, lora=False), "dapo_lora": lambda ctx: phase_dapo(ctx, lora=True),
    "eval": phase_eval,
}


def run_child(args, settings: Settings) -> int:
    """One phase, in this process; its result goes to ``--progress``."""
    import logging

    progress = Progress(args.progress)
    if os.environ.get(TEST_HANG_ENV) == args.phase:  # tests: a phase that never ends on its own
        progress.update(pid=os.getpid(), hanging=True)
        signal.pause()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if settings.device == "cpu":  # a tiny model gains nothing from threads, and loses much on a busy machine
        import torch

        torch.set_num_threads(1)
    ctx = Context(args, settings, progress)
    try:
        PHASE_FUNCTIONS[args.phase](ctx)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - recorded; the parent goes on with the next phase
        progress.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:2000],
                        traceback=traceback.format_exc()[-4000:])
        return 1
    progress.update(status="ok")
    return 0


# ------------------------------------------------------------------------------------------------ parent


class Report:
    """The one JSON file, rewritten whole (atomically) after every change."""

    def __init__(self, path: str, data: dict):
        self.path, self.data, self.t0 = path, data, time.monotonic()

    def write(self) -> None:
        self.data["summary"] = summary(self.data)
        self.data["elapsed_s"] = time.monotonic() - self.t0
        write_json(self.path, self.data)


def _finish_phase(result: dict, name: str, settings: Settings, work: str) -> dict:
    """Figures for a phase that was stopped before it summarised itself (timeout, crash)."""
    if name in ("dapo_full", "dapo_lora") and "figures" not in result and result.get("log"):
        result["figures"] = summarize_rl(result["log"], settings.rl_batch, settings.generations)
    if name == "sft" and "figures" not in result and result.get("log"):
        result["figures"] = summarize_sft(result["log"])
    if name in ("dapo_full", "dapo_lora") and result.get("log"):
        result["log"] = result["log"][-20:]
    if name == "eval" and result.get("status") != "ok":  # what was sampled before the stop
        with contextlib.suppress(OSError), open(os.path.join(work, "eval", "samples.jsonl"), encoding="utf-8") as fh:
            result["samples_written"] = sum(1 for _ in fh)
    return result


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _stop(proc: subprocess.Popen) -> int:
    """SIGTERM to the phase's process group, SIGKILL 10 s later."""
    _kill_group(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid, signal.SIGKILL)
        return proc.wait()


def run_phase(name: str, args, settings: Settings, report: Report, time_box: float, model_dir: str) -> dict:
    progress = os.path.join(args.work, f"{name}.progress.json")
    with contextlib.suppress(FileNotFoundError):
        os.remove(progress)
    cmd = [sys.executable, os.path.abspath(__file__), "--phase", name, "--progress", progress, "--work", args.work,
           "--model-dir", model_dir, "--time-box", str(time_box)]
    if args.tiny:
        cmd.append("--tiny")
    for item in args.set:
        cmd += ["--set", item]
    if args.bench_dir:
        cmd += ["--bench-dir", args.bench_dir]
    if args.travel:
        cmd += ["--travel", args.travel]
    print(f"gpu_check: phase {name} (time box {time_box:.0f} s)", flush=True)
    start = time.monotonic()
    # its own process group (not a new session: whatever ends this run's session still reaches it)
    group = {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
    proc = subprocess.Popen(cmd, **group)
    timed_out = terminated = None
    try:
        while True:
            try:
                rc = proc.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                report.data["phases"][name] = {**_read_json(progress), "status": "running",
                                               "seconds": time.monotonic() - start}
                report.write()
                if time.monotonic() - start > time_box:
                    timed_out = True
                    rc = _stop(proc)
                    break
    except Terminated as exc:
        terminated = exc
        rc = _stop(proc)
    _kill_group(proc.pid, signal.SIGKILL)  # helpers the phase left behind (reward workers)
    result = _read_json(progress)
    if terminated:
        result.update(status="terminated", error=f"the run received {terminated} while this phase ran",
                      seconds=time.monotonic() - start)
        report.data["phases"][name] = _finish_phase(result, name, settings, args.work)
        raise terminated
    if timed_out:
        result.update(status="timeout", error=f"stopped after its {time_box:.0f} s time box")
    elif result.get("status") != "ok":
        result.setdefault("error", f"the phase process exited with status {rc} without a result")
        result["status"] = "failed"
    result["seconds"] = time.monotonic() - start
    result = _finish_phase(result, name, settings, args.work)
    print(f"gpu_check: phase {name}: {result['status']} in {result['seconds']:.1f} s"
          + (f" ({result.get('error')})" if result["status"] != "ok" else ""), flush=True)
    return result


def run_all(args, settings: Settings) -> int:
    selected = [p for p in PHASES if p in args.phases]
    report = Report(args.out, {
        "schema": SCHEMA, "mode": "tiny" if args.tiny else "gpu", "status": "running", "started_utc": _now(),
        "budget_s": args.budget_s, "settings": dataclasses.asdict(settings), "phases": {},
        "argv": sys.argv[1:], "bench_dir": args.bench_dir,
    })
    t0 = report.t0
    report.write()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _terminate)
    try:
        for name in selected:
            _next_phase(name, selected, args, settings, report, t0)
    except Terminated as exc:
        report.data["status"] = "terminated"
        report.data["error"] = f"the run received {exc}; the phases before it are complete"
        report.data["finished_utc"] = _now()
        report.write()
        return 128 + getattr(signal, str(exc), signal.SIGTERM).value
    phases = report.data["phases"]
    report.data["status"] = "complete" if all(phases[n].get("status") == "ok" for n in selected) else "partial"
    report.data["finished_utc"] = _now()
    report.write()
    print(json.dumps(report.data["summary"], indent=2, default=str))
    return 0 if report.data["status"] == "complete" else 1


def _next_phase(name: str, selected: list[str], args, settings: Settings, report: Report, t0: float) -> None:
    need = NEEDS.get(name)
    if need and report.data["phases"].get(need, {}).get("status") != "ok":
        why = "did not succeed" if need in selected else "was not selected (--phases)"
        report.data["phases"][name] = {"status": "skipped", "error": f"needs the {need} phase, which {why}"}
        report.write()
        return
    left = args.budget_s - (time.monotonic() - t0)
    if left < 10:
        report.data["phases"][name] = {"status": "skipped", "error": "the run's budget is spent"}
        report.write()
        return
    sft_ok = report.data["phases"].get("sft", {}).get("status") == "ok"
    model_dir = os.path.join(args.work, "sft" if sft_ok else "model")
    result = run_phase(name, args, settings, report, min(settings.budgets[name], left), model_dir)
    if name in ("dapo_full", "dapo_lora", "eval"):
        result["model_source"] = "sft" if sft_ok else "base (random init: no sft result)"
    report.data["phases"][name] = result
    report.write()


def apply_overrides(settings: Settings, items: list[str]) -> Settings:
    """``KEY=VALUE`` changes, typed like the field they change; unknown keys and bad values are errors."""
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    changes: dict = {}
    budgets = dict(settings.budgets)
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if key.startswith("budgets."):
            phase = key.split(".", 1)[1]
            if phase not in PHASES or not sep:
                raise ValueError(f"--set {item!r}: write budgets.PHASE=SECONDS with PHASE one of {', '.join(PHASES)}")
            budgets[phase] = float(raw)
            continue
        if key not in fields or key == "budgets" or not sep:
            raise ValueError(f"--set {item!r}: write KEY=VALUE with KEY one of {', '.join(sorted(fields))}")
        current = getattr(settings, key)
        try:
            if isinstance(current, bool):
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                value = raw.lower() in ("true", "1")
            else:
                value = type(current)(raw)
        except ValueError:
            raise ValueError(f"--set {item!r}: {key} takes a {type(current).__name__}") from None
        changes[key] = value
    if changes.get("device", settings.device) not in ("cpu", "cuda"):
        raise ValueError("--set device=...: use cpu or cuda")
    return dataclasses.replace(settings, budgets=budgets, **changes)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_check.json", help="the JSON report (rewritten as the run goes)")
    parser.add_argument("--tiny", action="store_true", help="CPU, tiny model, a couple of steps (the test suite)")
    parser.add_argument("--bench-dir", default=None, help="VerilogEval v2 folder (default: <repo>/.gpu_travel/"
                        "verilog-eval when present; --tiny without one evaluates curriculum tasks)")
    parser.add_argument("--travel", default=os.path.join(REPO, ".gpu_travel"), help="travel folder (manifest)")
    parser.add_argument("--work", default=None, help="scratch folder for models and runs (default: a temporary "
                        "folder, removed at the end)")
    parser.add_argument("--budget-s", type=float, default=None, help="whole-run budget (default 480; tiny 900)")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change one setting of the mode (a Settings field, e.g. eval_tokens=64, device=cpu; "
                             "budgets.eval=120 for a phase's time box); repeatable")
    child = parser.add_argument_group("internal (one phase in a child process)")
    child.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    child.add_argument("--progress", help=argparse.SUPPRESS)
    child.add_argument("--model-dir", help=argparse.SUPPRESS)
    child.add_argument("--time-box", type=float, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        settings = apply_overrides(TINY if args.tiny else GPU, args.set)
    except ValueError as exc:
        print(f"gpu_check: {exc}", file=sys.stderr)
        return 2
    if args.phase:
        return run_child(args, settings)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = [p for p in args.phases if p not in PHASES]
    if unknown:
        print(f"gpu_check: unknown phase(s) {unknown}; choose from {', '.join(PHASES)}", file=sys.stderr)
        return 2
    if args.bench_dir is None and os.path.isdir(os.path.join(args.travel, "verilog-eval")):
        args.bench_dir = os.path.join(args.travel, "verilog-eval")
    if args.budget_s is None:
        args.budget_s = 900.0 if args.tiny else 480.0
    args.out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    if args.work:
        os.makedirs(args.work, exist_ok=True)
        return run_all(args, settings)
    with tempfile.TemporaryDirectory(prefix="verirl-gpu-check-") as work:
        args.work = work
        return run_all(args, settings)


if __name__ == "__main__":
    sys.exit(main())
