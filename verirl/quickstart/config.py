"""Settings of ``verirl quickstart``: every field is a command-line flag (``--sft-steps 200``) with its help text.

The defaults are the configuration that docs/quickstart.md describes; its "Measured figures" section gives what has
been measured with them (and under what load) and what has not been measured yet.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field

#: fields that do not change the results of the stages a run already has (a rerun with other values resumes the
#: same run; adding ``--ablation`` to a finished run adds the ablation stages, each named by its arm and seed)
NON_RESULT_FIELDS = ("out", "fresh", "ablation", "ablation_arms", "ablation_seeds", "torch_threads", "reward_workers")


#: what ``--rl-prompt-mix`` may be: the RL prompts with every level's share equal, or the training split as drawn
RL_PROMPT_MIXES = ("balanced", "natural")

#: RL arms of the ablation: name -> (entropy gate on, dynamic sampling on)
ARMS = {"full": (True, True), "no_gate": (False, True), "no_dynamic": (True, False), "neither": (False, False)}


@dataclass
class QuickstartConfig:
    out: str = field(default="runs/quickstart", metadata={"help": "run folder; everything the run writes goes here"})
    fresh: bool = field(default=False, metadata={"help": "delete the run folder first instead of resuming"})
    ablation: bool = field(
        default=False,
        metadata={"help": "also run the RL arms of --ablation-arms for --ablation-seeds RL seeds, all from the same "
                          "SFT checkpoint, and add the comparison with confidence intervals to the report"},
    )
    ablation_arms: str = field(
        default="full,neither",
        metadata={"help": "comma-separated RL arms of the ablation: full (entropy gate and dynamic sampling), "
                          "no_gate, no_dynamic, neither"},
    )
    ablation_seeds: int = field(
        default=3, metadata={"help": "RL seeds per ablation arm (seed, seed+1, ...); the full arm's first is the "
                                     "default RL stage"},
    )
    seed: int = field(default=0, metadata={"help": "seeds the curriculum, the model init, SFT, RL and sampling"})
    # -- curriculum
    n_train: int = field(default=1000, metadata={"help": "curriculum tasks for SFT and RL"})
    n_test: int = field(default=200, metadata={"help": "held-out tasks (parameter combinations never trained on)"})
    max_level: int = field(default=4, metadata={"help": "highest task difficulty level (1-4) in the curriculum"})
    variety: str = field(
        default="full", metadata={"help": "curriculum wording: full (random port names and wording) or low (fixed "
                                          "port names and wording per family)"}
    )
    heldout_families: str = field(
        default="subtractor",
        metadata={"help": "comma-separated families never trained on; they form the held-out-by-family split "
                          "(empty: none)"},
    )
    n_test_family: int = field(default=80, metadata={"help": "tasks of the held-out-by-family split"})
    # -- model
    vocab_size: int = field(default=1024, metadata={"help": "tokenizer vocabulary (trained on the curriculum)"})
    hidden_size: int = field(default=128, metadata={"help": "model width (a multiple of 64)"})
    num_layers: int = field(default=2, metadata={"help": "transformer layers"})
    # -- SFT
    sft_max_steps: int = field(default=1500, metadata={"help": "SFT optimizer steps at most"})
    sft_batch_size: int = field(default=16, metadata={"help": "SFT examples per step"})
    sft_learning_rate: float = field(default=2e-3, metadata={"help": "SFT learning rate"})
    sft_probe_target: float = field(
        default=0.45,
        metadata={"help": "SFT stops once this fraction of the probe's training tasks pass (greedy decoding); "
                          "0 turns the probe off and SFT runs --sft-max-steps"},
    )
    sft_probe_clocked_target: float = field(
        default=0.25,
        metadata={"help": "SFT also needs this fraction of the probe's clocked tasks (levels 3-4) to pass, so that "
                          "combinational tasks alone cannot end it (no condition when the probe has no clocked "
                          "task)"},
    )
    sft_probe_tasks: int = field(default=64, metadata={"help": "training tasks in the SFT probe"})
    sft_probe_every: int = field(default=25, metadata={"help": "SFT steps between probes"})
    sft_min_steps: int = field(default=150, metadata={"help": "first SFT step at which the probe runs"})
    # -- RL
    rl_steps: int = field(
        default=250,
        metadata={"help": "RL (DAPO) optimizer steps (250: held-out pass@1 still rises from 150 to 250 on the weakest "
                          "seed, and 250 fit the 20-minute budget with a torch thread per core; see docs/quickstart.md)"},
    )
    rl_prompts: int = field(default=8, metadata={"help": "prompts per RL step"})
    rl_prompt_mix: str = field(
        default="balanced",
        metadata={"help": "RL prompts: balanced (every level the same share of the training tasks, written to "
                          "data/rl_prompts.jsonl) or natural (the training split as drawn)"},
    )
    num_generations: int = field(default=8, metadata={"help": "completions per prompt (the GRPO group)"})
    rl_learning_rate: float = field(default=2e-4, metadata={"help": "RL learning rate"})
    max_completion_length: int = field(default=160, metadata={"help": "max new tokens in RL, probe and evaluation"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature in RL and evaluation"})
    entropy_top_fraction: float = field(
        default=0.5, metadata={"help": "fraction of each response's tokens (highest entropy) that get the gradient"}
    )
    # -- evaluation
    eval_samples: int = field(default=4, metadata={"help": "samples per held-out task (pass@k for k <= this)"})
    # -- machine
    torch_threads: int = field(
        default=0, metadata={"help": "torch CPU threads; 0: one per core this process may use (generation and "
                                     "optimisation never run while the simulator does); 1 on a machine others share"}
    )
    reward_workers: int = field(default=2, metadata={"help": "parallel simulations"})

    def __post_init__(self) -> None:
        positive = ("n_train", "n_test", "n_test_family", "vocab_size", "num_layers", "sft_max_steps",
                    "sft_batch_size", "sft_probe_tasks", "sft_probe_every", "rl_steps", "rl_prompts",
                    "max_completion_length", "eval_samples", "reward_workers", "ablation_seeds")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.torch_threads < 0:
            raise ValueError(f"--torch-threads must be >= 0 (0: one per usable core), got {self.torch_threads}")
        if self.num_generations < 2:
            raise ValueError("--num-generations must be >= 2 (GRPO compares completions within a group)")
        if self.hidden_size < 64 or self.hidden_size % 64:
            raise ValueError(f"--hidden-size must be a positive multiple of 64, got {self.hidden_size}")
        if not 1 <= self.max_level <= 4:
            raise ValueError(f"--max-level must be 1..4, got {self.max_level}")
        if self.rl_prompt_mix not in RL_PROMPT_MIXES:
            raise ValueError(f"--rl-prompt-mix must be one of {', '.join(RL_PROMPT_MIXES)}, got {self.rl_prompt_mix!r}")
        if self.variety not in ("low", "full"):
            raise ValueError(f"--variety must be low or full, got {self.variety!r}")
        from data_pipeline.curriculum import FAMILIES

        unknown = [f for f in self.heldout_family_list if f not in FAMILIES]
        if unknown:
            raise ValueError(f"--heldout-families: unknown families {unknown}; choose from {sorted(FAMILIES)}")
        if not 0.0 <= self.sft_probe_target <= 1.0:
            raise ValueError(f"--sft-probe-target must be in [0, 1] (0: no probe), got {self.sft_probe_target}")
        if not 0.0 <= self.sft_probe_clocked_target <= 1.0:
            raise ValueError(f"--sft-probe-clocked-target must be in [0, 1], got {self.sft_probe_clocked_target}")
        if not 0 <= self.sft_min_steps <= self.sft_max_steps:
            raise ValueError(f"--sft-min-steps must be in [0, --sft-max-steps], got {self.sft_min_steps}")
        bad_arms = [a for a in self.ablation_arm_list if a not in ARMS]
        if bad_arms or not self.ablation_arm_list:
            raise ValueError(f"--ablation-arms: unknown arms {bad_arms}; choose from {', '.join(ARMS)}")
        if not 0.0 < self.entropy_top_fraction <= 1.0:
            raise ValueError(f"--entropy-top-fraction must be in (0, 1], got {self.entropy_top_fraction}")
        if self.temperature <= 0:
            raise ValueError(f"--temperature must be > 0 (pass@k needs sampling), got {self.temperature}")
        for name in ("sft_learning_rate", "rl_learning_rate"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0")

    @property
    def heldout_family_list(self) -> tuple[str, ...]:
        return tuple(f.strip() for f in self.heldout_families.split(",") if f.strip())

    @property
    def ablation_arm_list(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.strip() for a in self.ablation_arms.split(",") if a.strip()))

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
