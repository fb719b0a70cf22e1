"""Settings of ``verirl quickstart``: every field is a command-line flag (``--sft-steps 200``) with its help text.

The defaults are the measured configuration of docs/quickstart.md: on a 2-core CPU the whole run takes well under
20 minutes and the RL stage raises held-out pass@1 by more than 10 points over its SFT starting checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field

#: fields that do not change the results of the stages a run already has (a rerun with other values resumes the
#: same run; adding ``--ablation`` to a finished run adds the ablation stages)
NON_RESULT_FIELDS = ("out", "fresh", "ablation", "torch_threads", "reward_workers")


@dataclass
class QuickstartConfig:
    out: str = field(default="runs/quickstart", metadata={"help": "run folder; everything the run writes goes here"})
    fresh: bool = field(default=False, metadata={"help": "delete the run folder first instead of resuming"})
    ablation: bool = field(
        default=False,
        metadata={"help": "also run the same RL stage without the entropy gate and without dynamic sampling, from "
                          "the same SFT checkpoint, and add it to the report"},
    )
    seed: int = field(default=0, metadata={"help": "seeds the curriculum, the model init, SFT, RL and sampling"})
    # -- curriculum
    n_train: int = field(default=1000, metadata={"help": "curriculum tasks for SFT and RL"})
    n_test: int = field(default=200, metadata={"help": "held-out tasks (parameter combinations never trained on)"})
    max_level: int = field(default=2, metadata={"help": "highest task difficulty level (1-4) in the curriculum"})
    variety: str = field(
        default="low", metadata={"help": "curriculum wording: low (fixed port names) or full (random names/wording)"}
    )
    # -- model
    vocab_size: int = field(default=1024, metadata={"help": "tokenizer vocabulary (trained on the curriculum)"})
    hidden_size: int = field(default=128, metadata={"help": "model width (a multiple of 64)"})
    num_layers: int = field(default=2, metadata={"help": "transformer layers"})
    # -- SFT
    sft_steps: int = field(default=375, metadata={"help": "SFT optimizer steps (deliberately brief)"})
    sft_batch_size: int = field(default=16, metadata={"help": "SFT examples per step"})
    sft_learning_rate: float = field(default=2e-3, metadata={"help": "SFT learning rate"})
    # -- RL
    rl_steps: int = field(default=100, metadata={"help": "RL (DAPO) optimizer steps"})
    rl_prompts: int = field(default=8, metadata={"help": "prompts per RL step"})
    num_generations: int = field(default=8, metadata={"help": "completions per prompt (the GRPO group)"})
    rl_learning_rate: float = field(default=2e-4, metadata={"help": "RL learning rate"})
    max_completion_length: int = field(default=96, metadata={"help": "max new tokens in RL and evaluation"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature in RL and evaluation"})
    entropy_top_fraction: float = field(
        default=0.5, metadata={"help": "fraction of each response's tokens (highest entropy) that get the gradient"}
    )
    # -- evaluation
    eval_samples: int = field(default=4, metadata={"help": "samples per held-out task (pass@k for k <= this)"})
    # -- machine
    torch_threads: int = field(
        default=1, metadata={"help": "torch CPU threads; 1 leaves a core to the simulator and avoids thrashing"}
    )
    reward_workers: int = field(default=2, metadata={"help": "parallel simulations"})

    def __post_init__(self) -> None:
        positive = ("n_train", "n_test", "vocab_size", "num_layers", "sft_steps", "sft_batch_size", "rl_steps",
                    "rl_prompts", "max_completion_length", "eval_samples", "torch_threads", "reward_workers")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.num_generations < 2:
            raise ValueError("--num-generations must be >= 2 (GRPO compares completions within a group)")
        if self.hidden_size < 64 or self.hidden_size % 64:
            raise ValueError(f"--hidden-size must be a positive multiple of 64, got {self.hidden_size}")
        if not 1 <= self.max_level <= 4:
            raise ValueError(f"--max-level must be 1..4, got {self.max_level}")
        if self.variety not in ("low", "full"):
            raise ValueError(f"--variety must be low or full, got {self.variety!r}")
        if not 0.0 < self.entropy_top_fraction <= 1.0:
            raise ValueError(f"--entropy-top-fraction must be in (0, 1], got {self.entropy_top_fraction}")
        if self.temperature <= 0:
            raise ValueError(f"--temperature must be > 0 (pass@k needs sampling), got {self.temperature}")
        for name in ("sft_learning_rate", "rl_learning_rate"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0")

    def result_fields(self) -> dict:
        """The fields that determine the results (a resumed run must match them)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in NON_RESULT_FIELDS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`QuickstartConfig` field."""
    for f in dataclasses.fields(QuickstartConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} (default: {f.default})"
        if f.type in (bool, "bool"):
            parser.add_argument(flag, dest=f.name, action="store_true", help=help_text)
        else:
            kind = {"int": int, "float": float, "str": str}.get(f.type if isinstance(f.type, str) else f.type.__name__)
            parser.add_argument(flag, dest=f.name, type=kind, default=f.default, help=help_text)


def from_args(args: argparse.Namespace) -> QuickstartConfig:
    return QuickstartConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(QuickstartConfig)})
