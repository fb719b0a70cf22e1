"""Training: SFT, GRPO, DAPO and DPO on TRL, driven by recipes (see docs/training.md).

From Python::

    from verirl.config import load_recipe
    from verirl.train import train
    result = train(load_recipe("recipes/tiny/grpo.yaml", ["--output_dir", "/tmp/run"]))

Heavy imports (torch, transformers, trl) happen inside the functions.
"""

from verirl.train.runner import TrainResult, build_trainer, train

__all__ = ["TrainResult", "build_trainer", "train"]
