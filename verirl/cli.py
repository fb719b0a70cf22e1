"""The ``verirl`` command.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their subcommand runs, so ``verirl score`` never imports torch.

Output piped into a reader that stops early (``verirl equiv ... | head``) ends the command quietly with the
status a shell gives a process killed by SIGPIPE (141), whatever the subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys

#: subcommand → (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "score": ("verirl.commands.score", "score completions against tasks with the reward engine"),
    "doctor": ("verirl.commands.doctor", "report EDA tool versions and sandbox capabilities"),
    "equiv": ("verirl.commands.equiv", "check a candidate design against a golden design"),
    "data": ("data_pipeline.cli", "build verified training data (sources, filters, round trip, tasks)"),
    "models": ("verirl.commands.models", "build the tiny CPU model and data that recipes/tiny/*.yaml train on"),
    "train": ("verirl.train.cli", "train with a recipe (SFT, GRPO, DAPO, DPO)"),
    "eval": ("verirl.eval.cli", "pass@k evaluation on VerilogEval v2 / RTLLM"),
    "push": ("verirl.release", "publish a model with its model card to the Hugging Face Hub"),
    "quickstart": ("verirl.quickstart", "curriculum -> SFT -> RL -> eval on a tiny CPU model"),
}

#: exit status of a command whose reader closed the pipe (a shell reports 128 + SIGPIPE for such a process)
BROKEN_PIPE_STATUS = 128 + getattr(signal, "SIGPIPE", 13)


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


def _run(argv: list[str]) -> int:
    parser = make_parser(argv)
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    return int(_load(args.command).run(args) or 0)


def _stdout_pipe_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (poll reports an error on the write end)."""
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no poll() on this platform, or no file descriptor
        return False


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot hit the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (e.g. captured in tests)
        pass


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            status = _run(argv)
        except SystemExit:  # --help and usage errors leave through argparse: their output is flushed here too
            sys.stdout.flush()
            raise
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
    except BrokenPipeError:
        if not _stdout_pipe_closed():
            raise  # a pipe to some other process broke: a real error, not the reader of our output leaving
        _silence_stdout()
        return BROKEN_PIPE_STATUS
    return status


if __name__ == "__main__":
    sys.exit(main())
