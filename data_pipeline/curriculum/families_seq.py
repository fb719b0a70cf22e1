"""Sequential task families: counters, shift registers, edge detectors, FSM sequence detectors.

Every sequential design has one clock and one reset (synchronous active-high or asynchronous active-low, a
parameter because it changes behaviour) that clears all state to zero.
"""

from __future__ import annotations

import random

from .design import RESET_KINDS, Design, Port, reset_phrase, seq_always
from .wording import (
    ASYNC_RESET,
    CLOCK,
    ENABLE,
    SERIAL_IN,
    SYNC_RESET,
    bits,
    module_name,
    pick_distinct,
)

MODULI = (5, 6, 10, 12)


def _clock_reset(rng: random.Random, reset_kind: str, taken: set[str]) -> tuple[Port, Port]:
    clk = pick_distinct(rng, CLOCK, taken)
    rst = pick_distinct(rng, ASYNC_RESET if reset_kind == "async_low" else SYNC_RESET, taken)
    return Port(clk, "input", role="clock"), Port(rst, "input", role="reset")


def _design(family, level, params, top, clk, rst, ports, spec, body) -> Design:
    spec = f"{spec} {reset_phrase(rst.name, params['reset'])}; {clk.name} is the clock."
    return Design(family, level, dict(params), top, [clk, rst, *ports], spec, body, clock=clk.name,
                  reset=rst.name, reset_kind=params["reset"])


# -- counters ----------------------------------------------------------------------------------------------------

def space_counter() -> list[dict]:
    out = []
    for width in range(2, 9):
        for modulo in (0, *MODULI):
            if modulo and not 2 < modulo < (1 << width):
                continue
            for direction in ("up", "down"):
                for enable in (0, 1):
                    for reset in RESET_KINDS:
                        out.append({"width": width, "dir": direction, "modulo": modulo, "enable": enable,
                                    "reset": reset})
    return out


def build_counter(rng: random.Random, params: dict) -> Design:
    width, direction, modulo, enable = params["width"], params["dir"], params["modulo"], params["enable"]
    taken: set[str] = set()
    clk, rst = _clock_reset(rng, params["reset"], taken)
    q = pick_distinct(rng, ("q", "count", "cnt", "value"), taken)
    ports = []
    if modulo:
        rng_txt = f"counts modulo {modulo} (0 to {modulo - 1})"
        step = (f"{q} <= {q} == {modulo - 1} ? 0 : {q} + 1;" if direction == "up"
                else f"{q} <= {q} == 0 ? {modulo - 1} : {q} - 1;")
    else:
        rng_txt = "wraps around"
        step = f"{q} <= {q} + 1;" if direction == "up" else f"{q} <= {q} - 1;"
    spec = rng.choice((f"A {width}-bit {direction} counter {q} that {rng_txt}.",
                       f"{q} is a {bits(width)} counter counting {direction}; it {rng_txt}."))
    cond = "else"
    if enable:
        en = pick_distinct(rng, ENABLE, taken)
        ports.append(Port(en, "input"))
        spec += f" It only counts when {en} is 1."
        cond = f"else if ({en})"
    ports.append(Port(q, "output", width, is_reg=True))
    head, reset_cond = seq_always(clk.name, rst.name, params["reset"])
    body = [f"{head} if ({reset_cond}) {q} <= 0; {cond} {step}"]
    level = 4 if modulo else 3
    return _design("counter", level, params, module_name(rng, ("cnt", "counter", f"{direction}cnt")), clk, rst,
                   ports, spec, body)


# -- shift registers ---------------------------------------------------------------------------------------------

def space_shift() -> list[dict]:
    return [{"width": w, "dir": d, "enable": e, "reset": r} for w in range(2, 9) for d in ("left", "right")
            for e in (0, 1) for r in RESET_KINDS]


def build_shift(rng: random.Random, params: dict) -> Design:
    width, direction, enable = params["width"], params["dir"], params["enable"]
    taken: set[str] = set()
    clk, rst = _clock_reset(rng, params["reset"], taken)
    d = pick_distinct(rng, SERIAL_IN, taken)
    q = pick_distinct(rng, ("q", "sr", "shreg", "data_o"), taken)
    if direction == "left":
        spec = f"A {width}-bit shift register {q}: each cycle it shifts left and {d} enters at bit 0."
        step = f"{q} <= {{{q}[{width - 2}:0], {d}}};"
    else:
        spec = f"A {width}-bit shift register {q}: each cycle it shifts right and {d} enters at bit {width - 1}."
        step = f"{q} <= {{{d}, {q}[{width - 1}:1]}};"
    ports = [Port(d, "input")]
    cond = "else"
    if enable:
        en = pick_distinct(rng, ENABLE, taken)
        ports.append(Port(en, "input"))
        spec = spec.replace("each cycle", f"on each cycle with {en} high")
        cond = f"else if ({en})"
    ports.append(Port(q, "output", width, is_reg=True))
    head, reset_cond = seq_always(clk.name, rst.name, params["reset"])
    body = [f"{head} if ({reset_cond}) {q} <= 0; {cond} {step}"]
    return _design("shift", 3, params, module_name(rng, ("shreg", "shift", f"sr{width}")), clk, rst, ports, spec,
                   body)


# -- edge detectors ----------------------------------------------------------------------------------------------

EDGE_EXPR = {"rise": "{d} & ~{p}", "fall": "~{d} & {p}", "both": "{d} ^ {p}"}
EDGE_WORDS = {"rise": "rising edge (0 to 1)", "fall": "falling edge (1 to 0)", "both": "change (either edge)"}


def space_edge() -> list[dict]:
    return [{"kind": k, "registered": g, "reset": r} for k in EDGE_EXPR for g in (0, 1) for r in RESET_KINDS]


def build_edge(rng: random.Random, params: dict) -> Design:
    kind, registered = params["kind"], params["registered"]
    taken: set[str] = set()
    clk, rst = _clock_reset(rng, params["reset"], taken)
    d = pick_distinct(rng, SERIAL_IN, taken)
    y = pick_distinct(rng, ("pulse", "hit", "y", "det"), taken)
    prev = pick_distinct(rng, ("prev", "last", "d_q", "old"), taken)
    expr = EDGE_EXPR[kind].format(d=d, p=prev)
    head, reset_cond = seq_always(clk.name, rst.name, params["reset"])
    if registered:
        spec = (f"Detect a {EDGE_WORDS[kind]} on {d}: {y} is a registered output that is 1 for one cycle after "
                f"{d} differs from its value in the previous cycle as described.")
        body = [f"reg {prev};",
                (f"{head} if ({reset_cond}) begin {prev} <= 0; {y} <= 0; end "
                f"else begin {prev} <= {d}; {y} <= {expr}; end")]
    else:
        spec = (f"Detect a {EDGE_WORDS[kind]} on {d}: {y} is 1 (combinationally) while {d} differs as described "
                f"from its value sampled at the previous clock edge (taken as 0 after reset).")
        body = [f"reg {prev};", f"{head} if ({reset_cond}) {prev} <= 0; else {prev} <= {d};",
                f"assign {y} = {expr};"]
    ports = [Port(d, "input"), Port(y, "output", is_reg=bool(registered))]
    return _design("edge", 3, params, module_name(rng, ("edge", f"{kind}_det", "edgedet")), clk, rst, ports,
                   spec, body)


# -- FSM sequence detectors --------------------------------------------------------------------------------------

def space_seqdet() -> list[dict]:
    out = []
    for length in (3, 4):
        for value in range(1 << length):
            pattern = format(value, f"0{length}b")
            for overlap in (0, 1):
                for reset in RESET_KINDS:
                    out.append({"pattern": pattern, "overlap": overlap, "reset": reset})
    return out


def _next_state(pattern: str, matched: str, overlap: bool) -> int:
    """KMP transition: length of the longest suffix of ``matched`` that is a prefix of ``pattern``."""
    if matched == pattern:
        if not overlap:
            return 0
        matched = matched[1:]
    for k in range(min(len(matched), len(pattern) - 1), 0, -1):
        if matched.endswith(pattern[:k]):
            return k
    return 0


def build_seqdet(rng: random.Random, params: dict) -> Design:
    pattern, overlap = params["pattern"], bool(params["overlap"])
    length = len(pattern)
    taken: set[str] = set()
    clk, rst = _clock_reset(rng, params["reset"], taken)
    x = pick_distinct(rng, SERIAL_IN, taken)
    y = pick_distinct(rng, ("match", "det", "found", "y"), taken)
    st = pick_distinct(rng, ("state", "st", "s"), taken)
    spec = (f"A Mealy sequence detector: {y} is 1 in the cycle when the serial input {x} completes the bit pattern "
            f"{pattern} (first bit first), {'overlapping matches allowed' if overlap else 'no overlap: after a match '}"
            f"{'' if overlap else 'the search starts again'}.")
    head, reset_cond = seq_always(clk.name, rst.name, params["reset"])
    lines = [f"reg [1:0] {st};", f"{head} if ({reset_cond}) {st} <= 0; else case ({st})"]
    for s in range(length):
        n0 = _next_state(pattern, pattern[:s] + "0", overlap)
        n1 = _next_state(pattern, pattern[:s] + "1", overlap)
        lines.append(f"{s}: {st} <= {x} ? {n1} : {n0};")
    lines += [f"default: {st} <= 0;", "endcase",
              f"assign {y} = {st} == {length - 1} && {x} == {pattern[-1]};"]
    ports = [Port(x, "input"), Port(y, "output")]
    return _design("seqdet", 4, params, module_name(rng, ("seqdet", f"det{pattern}", "fsm")), clk, rst, ports,
                   spec, lines)
