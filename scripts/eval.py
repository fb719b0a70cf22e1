#!/usr/bin/env python
"""Evaluate a model or a completions file on VerilogEval v2 / RTLLM; the same code as `verirl eval`.

    python scripts/eval.py --benchmark verilog-eval-v2 --bench-dir ../verilog-eval --model MODEL --backend vllm \
        --n 20 --k 1,5,10 --out runs/eval
    python scripts/eval.py compare runs/a runs/b
"""

import sys

from verirl.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
