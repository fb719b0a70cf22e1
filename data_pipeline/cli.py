"""`verirl data ...`: build verified training data, or run one stage of the pipeline.

    verirl data build --config recipes/data/local_roundtrip.yaml [--output-dir DIR] [--restart]
    verirl data split --folder rtl/ --out /tmp/modules.jsonl
    verirl data filter --input /tmp/modules.jsonl --out /tmp/kept.jsonl --drops /tmp/drops.jsonl
    verirl data dedupe --input ... --out ...        verirl data decontaminate --input ... --out ... --verilog-eval PATH
    verirl data roundtrip --config RECIPE --input /tmp/kept.jsonl --out /tmp/tasks.jsonl
    verirl data preferences --config recipes/data/preferences.yaml
    verirl data difficulty --config recipes/data/difficulty.yaml

Every command prints a JSON summary (counts, drop reasons) on stdout and exits 0 on success,
2 on a configuration or input error, 1 on an infrastructure fault (a missing tool, an unreachable
LLM endpoint); a `build` stopped that way resumes where it stopped when rerun. Ctrl-C (SIGINT) or
SIGTERM stops a `build` within seconds with one line on stderr — ``stopped: N shards saved; rerun
the same command to resume`` — and exit status 130 / 143; the rerun says ``resuming: N shards
already done``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="STEP", required=True)

    p = sub.add_parser("build", help="the whole pipeline, sharded and resumable, from a YAML recipe")
    p.add_argument("--config", required=True, help="data recipe (see recipes/data/)")
    p.add_argument("--output-dir", help="override output_dir of the recipe")
    p.add_argument("--max-modules", type=int, help="stop after this many split modules (0: all)")
    p.add_argument("--workers", type=int, help="parallel tool runs")
    p.add_argument("--restart", action="store_true", help="discard a previous run in output_dir instead of resuming")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("split", help="split sources into module records (JSONL)")
    _source_args(p)
    p.add_argument("--out", required=True, help="output JSONL of module records")
    p.add_argument("--max-modules", type=int, default=0)

    p = sub.add_parser("filter", help="structural limits, compile (Icarus) and synthesize (Yosys)")
    _io_args(p)
    p.add_argument("--max-lines", type=int)
    p.add_argument("--max-ports", type=int)
    p.add_argument("--no-compile", action="store_true", help="skip the Icarus compile check")
    p.add_argument("--no-synth", action="store_true", help="skip the Yosys synthesis check")

    p = sub.add_parser("dedupe", help="exact and MinHash near-duplicate removal")
    _io_args(p)
    p.add_argument("--threshold", type=float, help="Jaccard threshold of near duplicates")
    p.add_argument("--no-near", action="store_true", help="exact duplicates only")

    p = sub.add_parser("decontaminate", help="drop modules overlapping VerilogEval / RTLLM problems")
    _io_args(p)
    p.add_argument("--verilog-eval", help="path of a VerilogEval v2 checkout")
    p.add_argument("--rtllm", help="path of an RTLLM checkout")
    p.add_argument("--threshold", type=float, help="overlap score at which a module is dropped")
    p.add_argument("--ngram", type=int, help="n-gram length in tokens")

    p = sub.add_parser("roundtrip", help="describe, regenerate, keep equivalent pairs as tasks")
    _io_args(p)
    p.add_argument("--batch-size", type=int, default=32, help="modules per LLM batch")

    for name, help_text in (("preferences", "DPO pairs (prompt/chosen/rejected) from scored samples"),
                            ("difficulty", "pass-rate estimation; drop always/never-solved prompts")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", help="YAML with the step's settings (see recipes/data/)")
        p.add_argument("--tasks", help="task dataset (.jsonl/.parquet)")
        p.add_argument("--output", help="output JSONL")
        p.add_argument("--workers", type=int)
        p.add_argument("--no-progress", action="store_true")
        if name == "preferences":
            p.add_argument("--completions", help="JSONL of sampled completions ({task_id, completion})")
            p.add_argument("--margin", type=float, help="minimum pass-fraction gap between chosen and rejected")


def _source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="data recipe whose `sources` are used")
    p.add_argument("--folder", action="append", default=[], help="folder of .v/.sv files (repeatable)")
    p.add_argument("--jsonl", action="append", default=[], help="JSONL file with a `code` column (repeatable)")
    p.add_argument("--hf", action="append", default=[], help="datasets path or Hub id (repeatable)")
    p.add_argument("--code-field", default="code", help="column with the Verilog text (jsonl/hf)")


def _io_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="data recipe; its section for this step is used")
    p.add_argument("--input", required=True, help="JSONL of module records (from `verirl data split`)")
    p.add_argument("--out", required=True, help="output JSONL")
    p.add_argument("--drops", help="JSONL of dropped records with the reason")
    p.add_argument("--workers", type=int, help="parallel tool runs")


def run(args: argparse.Namespace) -> int:
    from rewards.errors import InfrastructureError

    from .llm import GenerationError, LLMUnavailable
    from .runctl import BuildStopped

    try:
        summary = _dispatch(args)
    except BuildStopped as exc:
        saved = getattr(args, "_committed", lambda: 0)()
        print(f"stopped: {saved} shards saved; rerun the same command to resume", file=sys.stderr, flush=True)
        return exc.exit_code
    except (ValueError, FileNotFoundError) as exc:
        print(f"verirl data {args.data_command}: error: {exc}", file=sys.stderr)
        return 2
    except (InfrastructureError, LLMUnavailable) as exc:
        print(f"verirl data {args.data_command}: infrastructure error (rerun to resume): {exc}", file=sys.stderr)
        return 1
    except GenerationError as exc:  # a model the backend cannot use as configured (e.g. no chat template)
        print(f"verirl data {args.data_command}: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2, sort_keys=True, default=str))
    return 0


def _dispatch(args: argparse.Namespace) -> dict:
    command = _COMMANDS.get(args.data_command)
    if command is None:
        raise ValueError(f"unknown data step {args.data_command!r}")
    return command(args)


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.no_progress else None


def _build(args: argparse.Namespace) -> dict:
    from .build import Builder
    from .config import load_build_config

    cfg = load_build_config(args.config, {"output_dir": args.output_dir, "max_modules": args.max_modules,
                                          "workers": args.workers})
    builder = Builder(cfg, restart=args.restart, progress=_progress(args),
                      report=lambda line: print(line, file=sys.stderr, flush=True))
    args._committed = builder.committed_shards
    manifest = builder.run()
    return {k: manifest[k] for k in ("dataset", "counts", "drops", "sources", "shards", "timings_s", "throughput")}


def _split(args: argparse.Namespace) -> dict:
    from . import steps
    from .config import SourceConfig, load_build_config

    sources = load_build_config(args.config).sources if args.config else []
    sources += [SourceConfig(kind="folder", path=p) for p in args.folder]
    sources += [SourceConfig(kind="jsonl", path=p, code_field=args.code_field) for p in args.jsonl]
    sources += [SourceConfig(kind="hf", path=p, code_field=args.code_field) for p in args.hf]
    if not sources:
        raise ValueError("no source: give --folder, --jsonl, --hf or a --config with `sources`")
    return steps.split(sources, args.out, args.max_modules)


def _preferences(args: argparse.Namespace) -> dict:
    from .config import PreferenceConfig, load_build_config
    from .preferences import build_preferences

    cfg = load_build_config(args.config, {"tasks": args.tasks, "output": args.output, "workers": args.workers,
                                          "completions": args.completions, "margin": args.margin},
                            cls=PreferenceConfig)
    return build_preferences(cfg, progress=_progress(args))


def _difficulty(args: argparse.Namespace) -> dict:
    from .config import DifficultyConfig, load_build_config
    from .difficulty import estimate_difficulty

    cfg = load_build_config(args.config, {"tasks": args.tasks, "output": args.output, "workers": args.workers},
                            cls=DifficultyConfig)
    return estimate_difficulty(cfg, progress=_progress(args))


def _step_config(args: argparse.Namespace):
    from .config import load_build_config

    return load_build_config(args.config, {"workers": args.workers})


def _filter(args: argparse.Namespace) -> dict:
    from . import steps

    cfg = _step_config(args)
    filters = cfg.filters
    if args.max_lines is not None:
        filters.max_lines = args.max_lines
    if args.max_ports is not None:
        filters.max_ports = args.max_ports
    filters.compile = filters.compile and not args.no_compile
    filters.synthesize = filters.synthesize and not args.no_synth
    filters.__post_init__()
    return steps.filter_records(args.input, args.out, args.drops, filters, cfg.workers)


def _dedupe(args: argparse.Namespace) -> dict:
    from . import steps

    cfg = _step_config(args)
    dedupe = cfg.dedupe
    if args.threshold is not None:
        dedupe.threshold = args.threshold
    dedupe.near = dedupe.near and not args.no_near
    dedupe.__post_init__()
    return steps.dedupe_records(args.input, args.out, args.drops, dedupe, cfg.seed)


def _decontaminate(args: argparse.Namespace) -> dict:
    from . import steps
    from .config import BenchmarkConfig, DecontaminationConfig

    cfg = _step_config(args)
    decontamination = cfg.decontaminate or DecontaminationConfig(enabled=False)
    benchmarks = list(decontamination.benchmarks)
    if args.verilog_eval:
        benchmarks.append(BenchmarkConfig("verilog-eval", args.verilog_eval))
    if args.rtllm:
        benchmarks.append(BenchmarkConfig("rtllm", args.rtllm))
    decontamination.benchmarks, decontamination.enabled = benchmarks, True
    if args.threshold is not None:
        decontamination.threshold = args.threshold
    if args.ngram is not None:
        decontamination.ngram = args.ngram
    decontamination.__post_init__()
    return steps.decontaminate_records(args.input, args.out, args.drops, decontamination)


def _roundtrip(args: argparse.Namespace) -> dict:
    from . import steps

    return steps.roundtrip_records(args.input, args.out, args.drops, _step_config(args), batch_size=args.batch_size)


#: ``verirl data <command>`` → the function that runs it (returns the summary printed as JSON)
_COMMANDS = {"build": _build, "split": _split, "preferences": _preferences, "difficulty": _difficulty,
             "filter": _filter, "dedupe": _dedupe, "decontaminate": _decontaminate, "roundtrip": _roundtrip}
