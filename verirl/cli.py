"""The ``verirl`` command.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their subcommand runs, so ``verirl score`` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

#: subcommand → (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "score": ("verirl.commands.score", "score completions against tasks with the reward engine"),
    "doctor": ("verirl.commands.doctor", "report EDA tool versions and sandbox capabilities"),
    "equiv": ("verirl.commands.equiv", "check a candidate design against a golden design"),
    "data": ("data_pipeline.cli", "build verified training data (sources, filters, round trip, tasks)"),
    "train": ("verirl.train.cli", "train with a recipe (SFT, GRPO, DAPO, DPO)"),
    "eval": ("verirl.eval.cli", "pass@k evaluation on VerilogEval v2 / RTLLM"),
    "push": ("verirl.release", "publish a model with its model card to the Hugging Face Hub"),
    "quickstart": ("verirl.quickstart", "curriculum -> SFT -> RL -> eval on a tiny CPU model"),
}


def _load(name: str):
    module_name = SUBCOMMANDS[name][0]
    return importlib.import_module(module_name)


def make_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="verirl", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = None
    if argv:
        wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (_, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # import only the module of the subcommand being run
            _load(name).add_arguments(sp)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser(argv)
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    return int(_load(args.command).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
