"""``verirl models tiny``: build the tiny CPU model and the data that ``recipes/tiny/*.yaml`` train on.

    verirl models tiny        # writes runs/tiny/{model,tasks.jsonl,test.jsonl,pairs.jsonl,kit.json}
    verirl train --config recipes/tiny/grpo.yaml

Everything is built offline in seconds: curriculum tasks (:mod:`data_pipeline.curriculum`) and held-out test tasks,
DPO pairs, and a byte-level BPE tokenizer plus a randomly initialised Llama-style model
(:func:`verirl.models.build_tiny_model`).
Running it again with the same settings does nothing; different settings need ``--force``.
"""

from __future__ import annotations

import argparse
import os
import sys

DEFAULT_OUT = os.path.join("runs", "tiny")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from verirl.models.tiny import KIT_DEFAULTS

    sub = parser.add_subparsers(dest="model_kind", metavar="KIND", required=True)
    tiny = sub.add_parser("tiny", help="tiny model + curriculum tasks (train, held-out test) + DPO pairs for "
                                       "recipes/tiny/*.yaml",
                          description=__doc__.splitlines()[0].split(": ", 1)[1])
    tiny.add_argument("--out", default=DEFAULT_OUT,
                      help=f"folder to write (default {DEFAULT_OUT}, where recipes/tiny/*.yaml look)")
    tiny.add_argument("--seed", type=int, default=KIT_DEFAULTS["seed"], help="seeds the tasks and the model init")
    tiny.add_argument("--tasks", dest="n_tasks", type=int, default=KIT_DEFAULTS["n_tasks"],
                      help=f"curriculum tasks to write (default {KIT_DEFAULTS['n_tasks']})")
    tiny.add_argument("--force", action="store_true", help="rebuild even when a kit with other settings is there")


def run(args: argparse.Namespace) -> int:
    from verirl.models.tiny import KIT_DEFAULTS, build_tiny_kit, read_tiny_kit, tiny_kit_paths

    wanted = {**KIT_DEFAULTS, "seed": args.seed, "n_tasks": args.n_tasks}
    if args.n_tasks < 1:
        print(f"verirl models tiny: error: --tasks must be at least 1, got {args.n_tasks}", file=sys.stderr)
        return 2
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        print(f"verirl models tiny: error: --out {args.out} is a file; give a folder", file=sys.stderr)
        return 2
    existing = read_tiny_kit(args.out)
    paths = tiny_kit_paths(args.out)
    if existing is not None and not args.force:
        if existing.get("settings") == wanted:
            print(f"{args.out} already holds this tiny kit (model {paths['model']}); nothing to do")
            return 0
        print(f"verirl models tiny: error: {args.out} holds a tiny kit built with other settings "
              f"({existing.get('settings')}); pass --force to replace it, or choose another --out", file=sys.stderr)
        return 2
    if existing is None and os.path.isdir(paths["model"]) and os.listdir(paths["model"]) and not args.force:
        print(f"verirl models tiny: error: {paths['model']} exists and was not written by `verirl models tiny`; "
              "pass --force to replace it, or choose another --out", file=sys.stderr)
        return 2
    try:
        paths = build_tiny_kit(args.out, seed=args.seed, n_tasks=args.n_tasks)
    except OSError as exc:
        print(f"verirl models tiny: error: cannot write {args.out}: {exc}", file=sys.stderr)
        return 2
    print(f"built the tiny kit in {args.out}: model {paths['model']}, tasks {paths['tasks']}, held-out tasks "
          f"{paths['test']}, DPO pairs {paths['pairs']}")
    print("train with: verirl train --config recipes/tiny/grpo.yaml (or sft.yaml, dapo.yaml, dpo.yaml)")
    return 0
