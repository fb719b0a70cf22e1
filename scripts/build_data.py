"""Build verified Verilog training data; same as `verirl data ...`.

    python scripts/build_data.py build --config recipes/data/local_roundtrip.yaml
    python scripts/build_data.py preferences --config recipes/data/preferences.yaml
"""

from __future__ import annotations

import argparse
import logging
import sys


def make_parser() -> argparse.ArgumentParser:
    from data_pipeline import cli

    parser = argparse.ArgumentParser(prog="build_data.py", description=cli.__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    cli.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from data_pipeline import cli

    args = make_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="%(levelname)s %(name)s: %(message)s")
    return cli.run(args)


if __name__ == "__main__":
    sys.exit(main())
