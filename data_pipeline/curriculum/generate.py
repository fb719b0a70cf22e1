"""Generate a curriculum: tasks in the task schema, with held-out splits by parameters and by family.

Splits:

* ``train`` — families not held out, parameter combinations not held out;
* ``test`` — the same families, parameter combinations never seen in ``train`` (held out by parameters);
* ``test_family`` — whole families that never appear in ``train`` (present only when ``heldout_families`` is set).

Everything is a function of :class:`CurriculumConfig` (seed included): the same config gives the same tasks, byte
for byte.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
from collections.abc import Callable
from pathlib import Path

from . import families_comb as comb
from . import families_seq as seq
from .design import Design
from .testbench import build_testbench
from .wording import VARIETIES, FirstChoice, prompt_text


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    space: Callable[[], list[dict]]
    build: Callable[[random.Random, dict], Design]
    description: str


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("gate", comb.space_gate, comb.build_gate, "AND/OR/XOR/NAND/NOR/XNOR gates, 2-4 inputs, 1-8 bits"),
    Family("boolfn", comb.space_boolfn, comb.build_boolfn, "three-input boolean functions"),
    Family("mux", comb.space_mux, comb.build_mux, "2:1 and 4:1 multiplexers, 1-8 bits"),
    Family("decoder", comb.space_decoder, comb.build_decoder, "n-to-2^n one-hot decoders, optional enable"),
    Family("encoder", comb.space_encoder, comb.build_encoder, "priority encoders (highest/lowest), valid flag"),
    Family("adder", comb.space_adder, comb.build_adder, "unsigned adders with optional carry in/out"),
    Family("subtractor", comb.space_subtractor, comb.build_subtractor, "wrapping subtractors, optional borrow"),
    Family("comparator", comb.space_comparator, comb.build_comparator, "unsigned ==, !=, <, >, <=, >="),
    Family("parity", comb.space_parity, comb.build_parity, "odd/even parity of a vector"),
    Family("counter", seq.space_counter, seq.build_counter, "up/down counters, modulo, enable"),
    Family("shift", seq.space_shift, seq.build_shift, "left/right shift registers, serial in, enable"),
    Family("edge", seq.space_edge, seq.build_edge, "rising/falling/any edge detectors"),
    Family("seqdet", seq.space_seqdet, seq.build_seqdet, "Mealy FSM sequence detectors (3-4 bit patterns)"),
)}


@dataclasses.dataclass(frozen=True)
class CurriculumConfig:
    """What to generate. Every field is used by :func:`generate_curriculum`."""

    seed: int = 0
    """Seeds the held-out parameter choice, the task sampling, every name and every wording."""
    n_train: int = 1000
    """Number of tasks in the ``train`` split."""
    n_test: int = 200
    """Number of tasks in the ``test`` split."""
    n_test_family: int | None = None
    """Number of tasks in the ``test_family`` split (when families are held out); ``None``: ``n_test``."""
    families: tuple[str, ...] = tuple(FAMILIES)
    """Families to draw from (all by default)."""
    heldout_families: tuple[str, ...] = ()
    """Families kept out of ``train`` and ``test``; they form the ``test_family`` split."""
    heldout_param_fraction: float = 0.2
    """Fraction of each family's parameter combinations reserved for ``test`` (at least one each)."""
    max_level: int = 4
    """Drop tasks whose difficulty level (1 = gates ... 4 = FSMs and modulo counters) is above this."""
    random_vectors: int = 256
    """Random test vectors for combinational designs with too many input bits for exhaustive testing."""
    cycles: int = 96
    """Clock cycles of random stimulus for sequential designs."""
    variety: str = "full"
    """``full``: random port names and wording; ``low``: fixed port names and wording per family, random module
    names only (an easier curriculum for tiny models, used by the quickstart)."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.families) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown curriculum families {unknown}; known: {', '.join(FAMILIES)}")
        stray = sorted(set(self.heldout_families) - set(self.families))
        if stray:
            raise ValueError(f"heldout_families {stray} are not in families")
        if not set(self.families) - set(self.heldout_families):
            raise ValueError("every family is held out: leave at least one family for train")
        if not 0.0 < self.heldout_param_fraction < 1.0:
            raise ValueError(f"heldout_param_fraction must be in (0, 1), got {self.heldout_param_fraction}")
        if self.n_train < 1 or self.n_test < 1 or (self.n_test_family is not None and self.n_test_family < 1):
            raise ValueError("n_train, n_test and n_test_family must be >= 1")
        if self.variety not in VARIETIES:
            raise ValueError(f"variety must be one of {VARIETIES}, got {self.variety!r}")
        if not 1 <= self.max_level <= 4:
            raise ValueError(f"max_level must be 1..4, got {self.max_level}")


def _rng(*parts) -> random.Random:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def split_params(config: CurriculumConfig, family: str) -> tuple[list[dict], list[dict]]:
    """(train, held-out) parameter combinations of ``family`` for this config's seed."""
    space = FAMILIES[family].space()
    order = list(range(len(space)))
    _rng(config.seed, "heldout", family).shuffle(order)
    n_held = max(1, math.ceil(config.heldout_param_fraction * len(space)))
    held = sorted(order[:n_held])
    keep = sorted(order[n_held:])
    return [space[i] for i in keep], [space[i] for i in held]


def _level_ok(config: CurriculumConfig, family: str, params: dict) -> bool:
    return FAMILIES[family].build(random.Random(0), params).level <= config.max_level


def design_to_task(design: Design, task_id: str, prompt: str, config: CurriculumConfig, split: str) -> dict:
    """A task in the schema of docs/architecture.md (harness ``verirl``)."""
    golden = design.golden()
    return {
        "id": task_id,
        "prompt": prompt,
        "top": design.top,
        "reference": golden,
        "testbench": build_testbench(design, random_vectors=config.random_vectors, cycles=config.cycles,
                                     seed=1 + config.seed),
        "harness": "verirl",
        "tb_top": "tb",
        "metadata": {
            "source": "verirl-curriculum",
            "family": design.family,
            "level": design.level,
            "params": dict(design.params),
            "param_key": design.param_key(),
            "split": split,
            "seed": config.seed,
            "sequential": design.sequential,
            "solution": golden,
        },
    }


def _draw(config: CurriculumConfig, split: str, pools: dict[str, list[dict]], n: int) -> list[dict]:
    rng = _rng(config.seed, "draw", split)
    families = sorted(f for f, pool in pools.items() if pool)
    if not families:
        raise ValueError(f"split {split!r} has no parameter combinations left (check max_level and families)")
    tasks, seen = [], set()
    attempts = 0
    while len(tasks) < n:
        attempts += 1
        if attempts > 50 * n:
            raise ValueError(f"could not draw {n} distinct {split} tasks; lower n or widen the families")
        family = rng.choice(families)
        params = rng.choice(pools[family])
        words = rng if config.variety == "full" else FirstChoice(rng)
        design = FAMILIES[family].build(words, params)
        prompt = prompt_text(words, design)
        if prompt in seen:
            continue
        seen.add(prompt)
        tasks.append(design_to_task(design, f"cur{config.seed}-{split}-{len(tasks):05d}", prompt, config, split))
    return tasks


def generate_curriculum(config: CurriculumConfig) -> dict[str, list[dict]]:
    """All splits of the curriculum described by ``config``."""
    train_pools, test_pools, family_pools = {}, {}, {}
    for family in config.families:
        train, held = split_params(config, family)
        train = [p for p in train if _level_ok(config, family, p)]
        held = [p for p in held if _level_ok(config, family, p)]
        if family in config.heldout_families:
            family_pools[family] = train + held
        else:
            train_pools[family], test_pools[family] = train, held
    splits = {"train": _draw(config, "train", train_pools, config.n_train),
              "test": _draw(config, "test", test_pools, config.n_test)}
    if family_pools:
        n_family = config.n_test if config.n_test_family is None else config.n_test_family
        splits["test_family"] = _draw(config, "test_family", family_pools, n_family)
    return splits


def write_jsonl(tasks: list[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for task in tasks:
            fh.write(json.dumps(task, sort_keys=True) + "\n")
    return path


def read_jsonl(path: str | Path) -> list[dict]:
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
