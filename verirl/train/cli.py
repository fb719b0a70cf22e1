"""``verirl train --config RECIPE.yaml [overrides]`` — also the body of ``scripts/train.py``.

Overrides follow the recipe keys: ``--learning_rate 1e-5``, ``--use_peft``, ``--entropy_gate.mode batch`` or
``max_steps=10``. Precedence: defaults < trainer presets < recipe < overrides.

Ctrl-C (SIGINT) or SIGTERM stops a run at once with one line on stderr that names the last complete checkpoint
and how to resume from it (exit status 130 or 143).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from verirl.stopping import Stopped, stop_on_signals

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="RECIPE.yaml", help="the recipe to train with")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        metavar="CHECKPOINT",
        help="resume from CHECKPOINT, or from the last checkpoint in output_dir when given without a value",
    )
    parser.add_argument(
        "--check", action="store_true",
        help="parse and validate the recipe (and its rewards), check that its local model folder and data exist, "
             "then exit"
    )
    parser.add_argument(
        "--check-settings", action="store_true",
        help="like --check without looking for the model folder and data (validate a recipe on a machine that "
             "does not hold them, e.g. a GPU recipe on a laptop)"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        default=[],
        help="recipe settings that win over the file: --key value, --key=value, key=value, --flag",
    )
    _route_overrides(parser)


_OWN_WITH_VALUE = ("--config",)
_OWN_OPTIONAL_VALUE = ("--resume",)
_OWN_FLAGS = ("--check", "--check-settings", "-h", "--help", "-v", "--verbose", "-vv")


def _split(tokens: list[str]) -> tuple[list[str], list[str]]:
    """Separate this command's own options from recipe overrides (which argparse cannot know in advance)."""
    own, rest = [], []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        name = tok.split("=", 1)[0]
        if name in _OWN_WITH_VALUE:
            own.append(tok)
            if "=" not in tok and i + 1 < len(tokens):
                own.append(tokens[i + 1])
                i += 1
        elif name in _OWN_OPTIONAL_VALUE:
            own.append(tok)
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if "=" not in tok and nxt is not None and not nxt.startswith("-") and "=" not in nxt:
                own.append(nxt)
                i += 1
        elif tok in _OWN_FLAGS:
            own.append(tok)
        else:
            rest.append(tok)
        i += 1
    return own, rest


def _route_overrides(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` hand every token it does not own to ``args.overrides``, in order."""
    original = parser.parse_known_args

    def parse_known_args(args=None, namespace=None):
        tokens = list(sys.argv[1:] if args is None else args)
        own, rest = _split(tokens)
        ns, extra = original(own, namespace)
        ns.overrides = list(extra) + rest
        return ns, []

    parser.parse_known_args = parse_known_args


def run(args: argparse.Namespace) -> int:
    from verirl.config import RecipeError, load_recipe
    from verirl.train.data import DatasetError

    try:
        checking = args.check or args.check_settings
        recipe = load_recipe(args.config, args.overrides or [], check_only=checking)
        if args.check:
            from verirl.train.runner import check_local_inputs

            check_local_inputs(recipe)
    except RecipeError as exc:
        print(f"verirl train: error: {exc}", file=sys.stderr)
        return 2
    if checking:
        print(f"{args.config}: ok ({recipe.trainer}, model {recipe.model.model_name_or_path}, "
              f"{len(getattr(recipe.training, 'rewards', None) or [])} reward(s)"
              + ("" if args.check else "; settings only: the model folder and data were not looked for") + ")")
        return 0
    from verirl.train.runner import train

    try:
        with stop_on_signals(signal.SIGINT, signal.SIGTERM):
            result = train(recipe, resume=args.resume)
    except (RecipeError, DatasetError) as exc:
        print(f"verirl train: error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Stopped) as exc:
        signame = exc.signame if isinstance(exc, Stopped) else "SIGINT"
        if os.environ.get("RANK", "0") == "0":
            print(stop_message(recipe, args, signame), file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # Leave now: reward threads still running a tool would otherwise hold the interpreter until it finishes.
        os._exit(128 + getattr(signal, signame))
    accelerator = result.trainer.accelerator if result.trainer is not None else None
    if accelerator is None or accelerator.is_main_process:
        print(f"trained {result.global_step} steps; model saved to {result.output_dir}")
    if accelerator is not None and accelerator.num_processes > 1:
        _leave_distributed_run(accelerator)
    return 0


def _leave_distributed_run(accelerator) -> None:
    """End a finished multi-process run without the interpreter's teardown.

    Every rank has saved what it owns; after a barrier nothing is left to do. Left to interpreter exit, the
    communication extensions (gloo, DeepSpeed's CPU comm op) are torn down in arbitrary order, and on a loaded
    machine a rank could abort there ("terminate called without an active exception") after a successful run,
    failing the whole launch. So: barrier, trackers closed, logs flushed, then leave at once with status 0."""
    accelerator.wait_for_everyone()
    for tracker in accelerator.trackers:
        tracker.finish()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def stop_message(recipe, args: argparse.Namespace, signame: str) -> str:
    """One line: what a stopped run left on disk and the command that resumes it."""
    from transformers.trainer_utils import get_last_checkpoint

    out = recipe.training.output_dir
    last = get_last_checkpoint(out) if os.path.isdir(out) else None
    command = " ".join(["verirl train --config", args.config, *args.overrides, "--resume"])
    if last is None:
        strategy = getattr(recipe.training.save_strategy, "value", recipe.training.save_strategy)
        every = f"every {recipe.training.save_steps} steps" if strategy == "steps" else f"save_strategy {strategy}"
        return (f"verirl train: stopped by {signame}; nothing saved yet (no checkpoint in {out}, {every}); "
                f"run the same command again to start over")
    cache = getattr(recipe.training, "reward_cache_dir", None) or os.path.join(out, "reward_cache")
    return (f"verirl train: stopped by {signame}; saved {last} (model, optimizer, data position, sampling state; "
            f"reward cache in {cache}); "
            f"resume with the same command plus --resume, e.g. {command}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of scripts/train.py (``accelerate launch scripts/train.py --config ...``)."""
    parser = argparse.ArgumentParser(prog="train.py", description="verirl training with a recipe")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    return run(args)
