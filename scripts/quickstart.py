"""Run the quickstart: ``python scripts/quickstart.py [flags]`` is ``verirl quickstart [flags]``."""

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from verirl import quickstart

    parser = argparse.ArgumentParser(prog="quickstart", description=quickstart.__doc__.splitlines()[0])
    quickstart.add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return quickstart.run(args)


if __name__ == "__main__":
    sys.exit(main())
