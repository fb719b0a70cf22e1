"""Randomised names and wording for generated tasks.

Module names are ``<stem>_<suffix>`` (stem from the family, suffix from a shared list), port names are drawn per
role from small pools, and the prompt is assembled from interchangeable sentence templates. All draws go through the
``random.Random`` the caller passes, so a seed fixes every word.
"""

from __future__ import annotations

import random

from .design import Design, Port

SUFFIXES = (
    "core", "unit", "blk", "top", "cell", "lite", "mini", "fast", "main", "ctl", "v1", "v2", "x", "a", "b", "q",
    "hw", "dp", "io", "r0", "r1", "s0", "s1", "m",
)

#: port-name pools per role; a family draws one name tuple from a pool so names never collide.
PAIRS = (("a", "b"), ("x", "y"), ("in0", "in1"), ("p", "q"), ("d0", "d1"), ("u", "v"), ("lhs", "rhs"))
SINGLE_IN = ("a", "d", "x", "din", "in", "data", "i", "w")
SINGLE_OUT = ("y", "out", "z", "q", "o", "dout", "res", "f")
SERIAL_IN = ("din", "d", "sin", "x", "si", "bit_in")
SELECT = ("sel", "s", "sel_i", "c")
ENABLE = ("en", "enable", "ce", "ena")
CLOCK = ("clk", "clock", "clk_i")
SYNC_RESET = ("rst", "reset", "srst", "rst_i")
ASYNC_RESET = ("rst_n", "reset_n", "arst_n", "nrst")

HEADERS = (
    "Write a Verilog module named {top}.",
    "Implement the Verilog module {top}.",
    "Design a module {top} in Verilog.",
    "Create Verilog module {top}.",
)
FOOTERS = ("", "", "Use synthesizable Verilog.", "Answer with the module only.")


VARIETIES = ("full", "low")


class FirstChoice(random.Random):
    """A ``Random`` for ``variety="low"``: every wording and port-name draw takes the first option.

    Module names still come from ``real`` (the caller's generator), so tasks stay distinct.
    """

    def __init__(self, real: random.Random):
        super().__init__(0)
        self.real = real

    def choice(self, seq):
        return seq[0]

    def randrange(self, start, stop=None, step=1):
        return 0 if stop is None else start


def module_name(rng: random.Random, stems: tuple[str, ...]) -> str:
    rng = getattr(rng, "real", rng)
    return f"{rng.choice(stems)}_{rng.choice(SUFFIXES)}"


def pick_distinct(rng: random.Random, pool: tuple[str, ...], taken: set[str]) -> str:
    """A name from ``pool`` that is not in ``taken`` (and record it as taken)."""
    free = [n for n in pool if n not in taken]
    if not free:
        raise ValueError(f"no free name left in {pool}")
    name = rng.choice(free)
    taken.add(name)
    return name


def pick_pair(rng: random.Random, taken: set[str]) -> tuple[str, str]:
    free = [pair for pair in PAIRS if not (set(pair) & taken)]
    pair = rng.choice(free)
    taken.update(pair)
    return pair


def bits(width: int) -> str:
    return "1 bit" if width == 1 else f"{width} bits"


def describe_port(rng_style: int, port: Port) -> str:
    if rng_style == 0:
        return f"{port.direction} {port.range}{port.name}".replace("  ", " ").strip()
    return f"{port.name} ({port.direction}, {bits(port.width)})"


def interface_text(rng: random.Random, design: Design) -> str:
    """The interface part of the prompt, in one of two renderings."""
    style = rng.randrange(2)
    ports = ", ".join(describe_port(style, p) for p in design.ports)
    lead = rng.choice(("Ports:", "Interface:", "I/O:"))
    return f"{lead} {ports}."


def prompt_text(rng: random.Random, design: Design) -> str:
    """The full natural-language prompt for a design."""
    parts = [rng.choice(HEADERS).format(top=design.top), design.spec, interface_text(rng, design)]
    footer = rng.choice(FOOTERS)
    if footer:
        parts.append(footer)
    return " ".join(parts)
