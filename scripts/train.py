#!/usr/bin/env python
"""Train with a recipe; the same code as `verirl train`.

    accelerate launch --config_file recipes/accelerate/ddp.yaml --num_processes N scripts/train.py --config RECIPE.yaml [overrides]
"""

import sys

from verirl.train.cli import main

if __name__ == "__main__":
    sys.exit(main())
