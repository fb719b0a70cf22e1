"""Combinational task families: gates, boolean functions, muxes, decoders, encoders, arithmetic, parity.

Each ``build_<family>(rng, params)`` returns a :class:`~.design.Design`; each ``space_<family>()`` lists every
parameter combination of the family (the held-out-by-parameters split draws from it).
"""

from __future__ import annotations

import random

from .design import Design, Port
from .wording import ENABLE, SELECT, SINGLE_IN, SINGLE_OUT, bits, module_name, pick_distinct, pick_pair

WIDTHS = (1, 2, 3, 4, 5, 6, 7, 8)

# -- gates -------------------------------------------------------------------------------------------------------

GATE_OPS = {"and": "&", "or": "|", "xor": "^", "nand": "&", "nor": "|", "xnor": "^"}


def space_gate() -> list[dict]:
    return [{"op": op, "n": n, "width": w} for op in GATE_OPS for n in (2, 3, 4) for w in (1, 2, 4, 8)]


def build_gate(rng: random.Random, params: dict) -> Design:
    op, n, width = params["op"], params["n"], params["width"]
    taken: set[str] = set()
    if n == 2:
        names = list(pick_pair(rng, taken))
    else:
        base = rng.choice("ai")
        names = [chr(ord(base) + k) for k in range(n)]
        taken.update(names)
    out = pick_distinct(rng, SINGLE_OUT, taken)
    expr = f" {GATE_OPS[op]} ".join(names)
    if op.startswith("n") or op == "xnor":
        expr = f"~({expr})"
    kind = "bitwise " if width > 1 else ""
    spec = rng.choice((
        f"{out} is the {kind}{op.upper()} of {', '.join(names)}.",
        f"Compute {out} = {op.upper()}({', '.join(names)}){' bit by bit' if width > 1 else ''}.",
        f"A {n}-input {op.upper()} gate{' applied per bit' if width > 1 else ''}: output {out}.",
    ))
    ports = [Port(nm, "input", width) for nm in names] + [Port(out, "output", width)]
    return Design("gate", 1, dict(params), module_name(rng, (op, f"{op}{n}", "gate", "logic")), ports, spec,
                  [f"assign {out} = {expr};"])


# -- boolean functions -------------------------------------------------------------------------------------------

BOOL_FORMS = (
    ("({A} & {B}) | {C}", "({A} AND {B}) OR {C}"),
    ("({A} | {B}) & {C}", "({A} OR {B}) AND {C}"),
    ("({A} ^ {B}) & {C}", "({A} XOR {B}) AND {C}"),
    ("({A} & {B}) ^ {C}", "({A} AND {B}) XOR {C}"),
    ("({A} | {B}) ^ {C}", "({A} OR {B}) XOR {C}"),
    ("{A} & ({B} | {C})", "{A} AND ({B} OR {C})"),
)


def space_boolfn() -> list[dict]:
    return [{"form": f, "neg": m} for f in range(len(BOOL_FORMS)) for m in range(8)]


def build_boolfn(rng: random.Random, params: dict) -> Design:
    form, neg = params["form"], params["neg"]
    taken: set[str] = set()
    base = rng.choice("ap")
    names = [chr(ord(base) + k) for k in range(3)]
    taken.update(names)
    out = pick_distinct(rng, ("y", "f", "z", "out", "o"), taken)
    code_vars = {k: (f"~{n}" if neg >> i & 1 else n) for i, (k, n) in enumerate(zip("ABC", names))}
    word_vars = {k: (f"NOT {n}" if neg >> i & 1 else n) for i, (k, n) in enumerate(zip("ABC", names))}
    code, words = BOOL_FORMS[form]
    spec = rng.choice((f"{out} = {words.format(**word_vars)}.", (f"Implement the function {out} = "
                       f"{words.format(**word_vars)}."), f"Output {out} equals {words.format(**word_vars)}."))
    ports = [Port(n, "input") for n in names] + [Port(out, "output")]
    return Design("boolfn", 1, dict(params), module_name(rng, ("func", "logic", "bool", "comb")), ports, spec,
                  [f"assign {out} = {code.format(**code_vars)};"])


# -- multiplexers ------------------------------------------------------------------------------------------------

def space_mux() -> list[dict]:
    return [{"ways": n, "width": w} for n in (2, 4) for w in WIDTHS]


def build_mux(rng: random.Random, params: dict) -> Design:
    ways, width = params["ways"], params["width"]
    taken: set[str] = set()
    if ways == 2:
        names = list(pick_pair(rng, taken))
    else:
        stem = rng.choice(('in', 'd', 'i'))
        names = [f"{stem}{k}" for k in range(4)]
        taken.update(names)
    sel = pick_distinct(rng, SELECT, taken)
    out = pick_distinct(rng, SINGLE_OUT, taken)
    sel_w = 1 if ways == 2 else 2
    if ways == 2:
        spec = rng.choice((f"A 2-to-1 multiplexer: {out} = {names[0]} when {sel} is 0, else {names[1]}.",
                           f"{out} selects {names[1]} if {sel} is 1 and {names[0]} otherwise."))
        body = [f"assign {out} = {sel} ? {names[1]} : {names[0]};"]
    else:
        spec = rng.choice(((f"A 4-to-1 multiplexer: {out} = {names[0]}, {names[1]}, {names[2]} or {names[3]} "
                           f"for {sel} = 0, 1, 2, 3."),
                           f"{out} is the input selected by {sel}: {sel}=k picks {names[0][:-1]}k."))
        body = [(f"assign {out} = {sel}[1] ? ({sel}[0] ? {names[3]} : {names[2]}) : "
                f"({sel}[0] ? {names[1]} : {names[0]});")]
    if width > 1:
        spec += f" Data is {bits(width)} wide."
    ports = [Port(n, "input", width) for n in names] + [Port(sel, "input", sel_w), Port(out, "output", width)]
    return Design("mux", 1 if ways == 2 else 2, dict(params), module_name(rng, ("mux", f"mux{ways}", "sel")),
                  ports, spec, body)


# -- decoders and encoders ---------------------------------------------------------------------------------------

def space_decoder() -> list[dict]:
    return [{"n": n, "enable": e} for n in (1, 2, 3) for e in (0, 1)]


def build_decoder(rng: random.Random, params: dict) -> Design:
    n, enable = params["n"], params["enable"]
    taken: set[str] = set()
    a = pick_distinct(rng, SINGLE_IN, taken)
    out = pick_distinct(rng, SINGLE_OUT, taken)
    m = 1 << n
    spec = rng.choice((f"A {n}-to-{m} one-hot decoder: bit {a} of {out} is 1, all others 0.",
                       f"Decode the {n}-bit value {a} into the {m}-bit one-hot output {out}."))
    ports = [Port(a, "input", n)]
    expr = f"{m}'d1 << {a}"
    if enable:
        en = pick_distinct(rng, ENABLE, taken)
        spec += f" When {en} is 0, {out} is all zeros."
        ports.append(Port(en, "input"))
        expr = f"{en} ? {expr} : {m}'d0"
    ports.append(Port(out, "output", m))
    return Design("decoder", 2, dict(params), module_name(rng, ("dec", "decoder", f"dec{n}to{m}")), ports, spec,
                  [f"assign {out} = {expr};"])


def space_encoder() -> list[dict]:
    return [{"width": w, "priority": p, "valid": v} for w in (4, 8) for p in ("high", "low") for v in (0, 1)]


def build_encoder(rng: random.Random, params: dict) -> Design:
    width, priority, valid = params["width"], params["priority"], params["valid"]
    taken: set[str] = set()
    d = pick_distinct(rng, SINGLE_IN, taken)
    out = pick_distinct(rng, SINGLE_OUT, taken)
    ow = width.bit_length() - 1
    which = "highest" if priority == "high" else "lowest"
    spec = rng.choice((f"A priority encoder: {out} is the index of the {which} set bit of {d} (0 if none).",
                       f"{out} gives the position of the {which}-numbered 1 bit in {d}; {out} is 0 when {d} is 0."))
    i = pick_distinct(rng, ("i", "k", "n", "j"), taken)
    loop = (f"for ({i} = 0; {i} < {width}; {i} = {i} + 1)" if priority == "high"
            else f"for ({i} = {width - 1}; {i} >= 0; {i} = {i} - 1)")
    body = [f"integer {i};", f"always @* begin {out} = 0; {loop} if ({d}[{i}]) {out} = {i}; end"]
    ports = [Port(d, "input", width), Port(out, "output", ow, is_reg=True)]
    if valid:
        v = pick_distinct(rng, ("valid", "v", "any", "found"), taken)
        spec += f" {v} is 1 when any bit of {d} is set."
        ports.append(Port(v, "output"))
        body.append(f"assign {v} = |{d};")
    return Design("encoder", 2, dict(params), module_name(rng, ("enc", "prienc", "encoder")), ports, spec, body)


# -- arithmetic and comparison -----------------------------------------------------------------------------------

def space_adder() -> list[dict]:
    return [{"width": w, "cin": c, "cout": o} for w in WIDTHS[1:] for c in (0, 1) for o in (0, 1)]


def build_adder(rng: random.Random, params: dict) -> Design:
    width, cin, cout = params["width"], params["cin"], params["cout"]
    taken: set[str] = set()
    a, b = pick_pair(rng, taken)
    s = pick_distinct(rng, ("sum", "s", "y", "out", "res"), taken)
    ports = [Port(a, "input", width), Port(b, "input", width)]
    rhs = f"{a} + {b}"
    spec = rng.choice((f"Add the {bits(width)} unsigned numbers {a} and {b}", (f"An unsigned {width}-bit adder: "
                       f"{s} = {a} + {b}")))
    if cin:
        ci = pick_distinct(rng, ("cin", "ci", "c_in"), taken)
        ports.append(Port(ci, "input"))
        rhs += f" + {ci}"
        spec += f" plus the carry input {ci}"
    if cout:
        co = pick_distinct(rng, ("cout", "co", "c_out", "carry"), taken)
        ports += [Port(s, "output", width), Port(co, "output")]
        spec += f"; {s} is the {width}-bit sum and {co} the carry out."
        body = [f"assign {{{co}, {s}}} = {rhs};"]
    else:
        ports.append(Port(s, "output", width))
        spec += f"; {s} keeps the low {bits(width)} of the sum."
        body = [f"assign {s} = {rhs};"]
    return Design("adder", 2, dict(params), module_name(rng, ("add", "adder", f"add{width}")), ports, spec, body)


def space_subtractor() -> list[dict]:
    return [{"width": w, "borrow": b} for w in WIDTHS[1:] for b in (0, 1)]


def build_subtractor(rng: random.Random, params: dict) -> Design:
    width, borrow = params["width"], params["borrow"]
    taken: set[str] = set()
    a, b = pick_pair(rng, taken)
    d = pick_distinct(rng, ("diff", "d", "y", "out", "res"), taken)
    spec = rng.choice((f"Subtract: {d} = {a} - {b} modulo 2^{width}, for {bits(width)} unsigned inputs.",
                       f"A {width}-bit subtractor computing {d} = {a} - {b} (wrapping)."))
    ports = [Port(a, "input", width), Port(b, "input", width), Port(d, "output", width)]
    body = [f"assign {d} = {a} - {b};"]
    if borrow:
        bo = pick_distinct(rng, ("borrow", "bo", "neg", "under"), taken)
        spec += f" {bo} is 1 when {a} < {b}."
        ports.append(Port(bo, "output"))
        body.append(f"assign {bo} = {a} < {b};")
    return Design("subtractor", 2, dict(params), module_name(rng, ("sub", "subtract", f"sub{width}")), ports,
                  spec, body)


COMPARE_OPS = {"eq": ("==", "equal to"), "ne": ("!=", "not equal to"), "lt": ("<", "less than"),
               "gt": (">", "greater than"), "le": ("<=", "less than or equal to"),
               "ge": (">=", "greater than or equal to")}


def space_comparator() -> list[dict]:
    return [{"width": w, "op": op} for w in WIDTHS for op in COMPARE_OPS]


def build_comparator(rng: random.Random, params: dict) -> Design:
    width, op = params["width"], params["op"]
    taken: set[str] = set()
    a, b = pick_pair(rng, taken)
    out = pick_distinct(rng, ("y", "out", "flag", "f", op), taken)
    sym, words = COMPARE_OPS[op]
    spec = rng.choice((f"{out} is 1 when {a} is {words} {b} (unsigned, {bits(width)}).",
                       f"Compare two unsigned {width}-bit values: {out} = ({a} {sym} {b})."))
    ports = [Port(a, "input", width), Port(b, "input", width), Port(out, "output")]
    return Design("comparator", 2, dict(params), module_name(rng, ("cmp", f"cmp_{op}", "compare")), ports, spec,
                  [f"assign {out} = {a} {sym} {b};"])


# -- parity ------------------------------------------------------------------------------------------------------

def space_parity() -> list[dict]:
    return [{"width": w, "kind": k} for w in WIDTHS[1:] for k in ("odd", "even")]


def build_parity(rng: random.Random, params: dict) -> Design:
    width, kind = params["width"], params["kind"]
    taken: set[str] = set()
    d = pick_distinct(rng, SINGLE_IN, taken)
    p = pick_distinct(rng, ("p", "par", "parity", "y"), taken)
    if kind == "odd":
        spec = rng.choice((f"{p} is 1 when {d} has an odd number of 1 bits.", f"{p} is the XOR of all bits of {d}."))
        expr = f"^{d}"
    else:
        spec = rng.choice((f"{p} is 1 when {d} has an even number of 1 bits.",
                           f"{p} is the inverted XOR of all bits of {d}."))
        expr = f"~^{d}"
    ports = [Port(d, "input", width), Port(p, "output")]
    return Design("parity", 1, dict(params), module_name(rng, ("parity", "par", f"par{width}")), ports, spec,
                  [f"assign {p} = {expr};"])

