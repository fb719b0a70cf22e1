"""Mutation operators and equivalent rewrites for measuring the equivalence checker.

``scripts/bench_equiv.py`` and the soundness tests apply these source-to-source transformations to
golden designs: every operator yields candidates that differ from the golden design by one
mechanism (several sites or variants each), every rewrite yields candidates meant to be equivalent.
Whether a mutant really differs in simulation is measured, never assumed: the benchmarks'
testbenches and the checker's own simulation decide; the checker must never *prove* a mutant that
a simulation tells apart.

Operators by family (:data:`FAMILIES`):

* ``bench``: operator swap, constant change, reset polarity flip, branch removal;
* ``clock_edge``: ``negedge`` everywhere, in one process, through a sub-module port, through
  ``wire nclk = ~clk``, on a divided internal clock, on the reset net;
* ``derived_clock``: a clock gated by a data input;
* ``reset``: a synchronous reset made asynchronous and the reverse;
* ``xz``: an assigned constant made ``'x``, an output driven ``'z`` half of the time, a bit select
  moved out of range;
* ``pragma``: logic visible to the simulator only (``translate_off``, `` `ifndef SYNTHESIS``), a
  ``full_case`` pragma or attribute replacing a ``default``;
* ``multi_driver``: a second driver on an output;
* ``sensitivity``: ``@*`` replaced by a list that misses signals;
* ``race``: a non-blocking assignment in a clocked process made blocking.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

from . import lexer
from .lexer import COMMENT, IDENT, NUMBER, SPACE

SWAPS = {"&": "|", "|": "&", "^": "&", "+": "-", "-": "+", "==": "!=", "!=": "==", "<": ">", ">": "<",
         ">=": "<", "&&": "||", "||": "&&", "<<": ">>", ">>": "<<", "*": "+"}
COMMUTATIVE = ("&", "|", "^", "+", "==", "!=", "&&", "||")


@dataclasses.dataclass(frozen=True)
class Mutant:
    family: str
    kind: str
    where: str
    code: str


class _Src:
    """Tokens of a source with helpers to rebuild it with edits."""

    def __init__(self, source: str):
        self.source = source
        self.tokens = lexer.tokenize(source)
        self.sig = [i for i, t in enumerate(self.tokens) if t.significant]
        self.pos = {idx: k for k, idx in enumerate(self.sig)}

    def text(self, i: int) -> str:
        return self.tokens[i].text

    def nxt(self, i: int, n: int = 1) -> int | None:
        k = self.pos[i] + n
        return self.sig[k] if 0 <= k < len(self.sig) else None

    def prv(self, i: int, n: int = 1) -> int | None:
        return self.nxt(i, -n)

    def rebuild(self, repl: dict[int, str]) -> str:
        return "".join(repl.get(i, t.text) for i, t in enumerate(self.tokens))

    def line(self, i: int) -> str:
        return f"line {self.source.count(chr(10), 0, self.tokens[i].start) + 1}"

    def header_end(self, top: str) -> int | None:
        """Index of the ``;`` ending the header of module ``top``."""
        for k, idx in enumerate(self.sig[:-1]):
            if self.text(idx) == "module" and self.text(self.sig[k + 1]) == top:
                depth = 0
                for j in self.sig[k + 2:]:
                    t = self.text(j)
                    if t in "([":
                        depth += 1
                    elif t in ")]":
                        depth -= 1
                    elif t == ";" and depth == 0:
                        return j
        return None

    def module_end(self, top: str) -> int | None:
        found = False
        for k, idx in enumerate(self.sig):
            if self.text(idx) == "module" and k + 1 < len(self.sig) and self.text(self.sig[k + 1]) == top:
                found = True
            elif found and self.text(idx) == "endmodule":
                return idx
        return None

    def body(self) -> list[int]:
        """Significant token indices of module bodies, outside ``[...]`` ranges and headers."""
        out, depth, header = [], 0, False
        for i in self.sig:
            t = self.text(i)
            if t == "module":
                header = True
            elif header and t == ";":
                header = False
                continue
            if t == "[":
                depth += 1
            elif t == "]":
                depth -= 1
            elif depth == 0 and not header:
                out.append(i)
        return out

    def edge_events(self) -> list[tuple[int, int, str]]:
        """``(edge token index, signal token index, signal)`` of every ``posedge x``/``negedge x``."""
        out = []
        for i in self.sig:
            if self.text(i) in ("posedge", "negedge"):
                j = self.nxt(i)
                if j is not None and self.tokens[j].kind == IDENT:
                    out.append((i, j, self.text(j)))
        return out

    def statement_end(self, i: int | None) -> int | None:
        """Token index of the last token of the statement starting at token ``i``."""
        if i is None:
            return None
        first = self.text(i)
        if first in ("begin", "fork"):
            return self._matching(i, ("begin", "fork", "case", "casez", "casex"), ("end", "join", "endcase"))
        if first in ("case", "casez", "casex"):
            return self._matching(i, ("case", "casez", "casex"), ("endcase",))
        if first in ("if", "for", "while", "repeat"):
            close = self._paren_end(self.nxt(i))
            end = self.statement_end(self.nxt(close)) if close is not None else None
            if first == "if" and end is not None:
                after = self.nxt(end)
                if after is not None and self.text(after) == "else":
                    return self.statement_end(self.nxt(after))
            return end
        for j in self.sig[self.pos[i]:]:
            t = self.text(j)
            if t == ";":
                return j
            if t in ("begin", "end", "endcase", "if", "endmodule"):
                return None
        return None

    def _matching(self, i: int, opens: tuple[str, ...], closes: tuple[str, ...]) -> int | None:
        depth = 0
        for j in self.sig[self.pos[i]:]:
            t = self.text(j)
            if t in opens:
                depth += 1
            elif t in closes:
                depth -= 1
                if depth == 0:
                    return j
        return None

    def _paren_end(self, i: int | None) -> int | None:
        if i is None or self.text(i) != "(":
            return None
        return self._matching(i, ("(",), (")",))

    def always_blocks(self) -> list[tuple[int, int, int]]:
        """``(always token, event control end, block end)`` of ``always @(...) stmt`` processes."""
        out = []
        for i in self.sig:
            if self.text(i) not in ("always", "always_ff", "always_comb", "always_latch"):
                continue
            j = self.nxt(i)
            ctl_end = i
            if j is not None and self.text(j) == "@":
                k = self.nxt(j)
                if k is not None and self.text(k) in ("*", "(*)"):
                    ctl_end = k
                elif k is not None and self.text(k) == "(":
                    depth = 0
                    for m in self.sig[self.pos[k]:]:
                        if self.text(m) == "(":
                            depth += 1
                        elif self.text(m) == ")":
                            depth -= 1
                            if depth == 0:
                                ctl_end = m
                                break
            start = self.nxt(ctl_end)
            end = self.statement_end(start) if start is not None else None
            if end is not None:
                out.append((i, ctl_end, end))
        return out


# ----------------------------------------------------------------------------- bench operators
def _bump(text: str) -> str | None:
    """A different constant of the same size: flip/increment the last digit."""
    if text.startswith("'") or "'" in text:
        size, _, body = text.partition("'")
        signed = body[:1] in ("s", "S")
        base = body[1:2] if signed else body[:1]
        digits = body[2:] if signed else body[1:]
        prefix = text[: len(text) - len(digits)]
        if not digits or digits[-1].lower() in "xz?_":
            return None
        radix = {"b": 2, "o": 8, "d": 10, "h": 16}.get(base.lower())
        if radix is None:
            return None
        try:
            last = int(digits[-1], radix)
        except ValueError:
            return None
        new = (last + 1) % radix if last + 1 < radix else last - 1
        del size
        return prefix + digits[:-1] + format(new, "x" if radix == 16 else "o" if radix == 8 else "d")
    if text.isdigit():
        return str(int(text) + 1)
    return None


def operator_swap(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    for i in src.body():
        t = src.text(i)
        prev = src.prv(i)
        prev_t = src.text(prev) if prev is not None else ""
        if t in SWAPS and prev_t not in ("@", "#"):
            nxt = src.nxt(i)
            if t in ("-", "+") and prev_t in ("(", "=", ",", "<="):
                continue
            if t == "*" and prev_t == "(" and nxt is not None and src.text(nxt) == ")":
                continue  # @(*)
            out.append((f"{src.line(i)}: {t} -> {SWAPS[t]}", src.rebuild({i: SWAPS[t]})))
    return out


def constant_change(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    for i in src.body():
        prev = src.prv(i)
        if src.tokens[i].kind == NUMBER and (prev is None or src.text(prev) != "#"):
            new = _bump(src.text(i))
            if new is not None:
                out.append((f"{src.line(i)}: {src.text(i)} -> {new}", src.rebuild({i: new})))
    return out


def reset_polarity_flip(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    for i in src.body():
        if src.text(i) not in ctx.resets:
            continue
        before, after = src.prv(i), src.nxt(i)
        if before is None or after is None or src.text(after) not in (")", "||", "&&"):
            continue
        if src.text(before) in ("!", "~"):
            out.append((f"{src.line(i)}: {src.text(before)}{src.text(i)} -> {src.text(i)}",
                        src.rebuild({before: ""})))
        elif src.text(before) == "(" and src.prv(before) is not None and src.text(src.prv(before)) == "if":
            out.append((f"{src.line(i)}: {src.text(i)} -> !{src.text(i)}", src.rebuild({i: "!" + src.text(i)})))
    return out


def branch_removal(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    for i in src.body():
        if src.text(i) == "else":
            start = src.nxt(i)
            end = src.statement_end(start) if start is not None else None
            if end is not None:
                out.append((f"{src.line(i)}: else branch removed",
                            src.rebuild({k: "" for k in range(i, end + 1)})))
    return out


# ----------------------------------------------------------------------------- clocks
def _flip_edge(text: str) -> str:
    return "negedge" if text == "posedge" else "posedge"


def negedge_all(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    for clk in ctx.clocks:
        repl = {e: _flip_edge(src.text(e)) for e, _, name in src.edge_events() if name == clk}
        if repl:
            out.append((f"every edge of {clk} flipped", src.rebuild(repl)))
    return out


def negedge_one(src: _Src, ctx) -> list[tuple[str, str]]:
    return [(f"{src.line(e)}: {src.text(e)} {name} -> {_flip_edge(src.text(e))}", src.rebuild({e: _flip_edge(src.text(e))}))
            for e, _, name in src.edge_events() if name in ctx.clocks]


def negedge_submodule(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    for clk in ctx.clocks:
        out.append((f"{clk} inverted at a sub-module port", wrapper_rewrite(src.source, ctx.iface, ctx.top,
                                                                            {clk: f"~{clk}"})))
    return out


def _insert_after_header(src: _Src, ctx, decl: str, repl: dict[int, str]) -> str | None:
    """Insert ``decl`` before the first process of module ``top`` (after its port declarations,
    ANSI or not), with the edits ``repl``."""
    end = src.header_end(ctx.top)
    if end is None:
        return None
    stop = src.module_end(ctx.top)
    first = next((i for i in src.sig[src.pos[end] + 1:] if src.text(i) in (
        "always", "always_ff", "always_comb", "always_latch", "initial") or i == stop), None)
    if first is None:
        return None
    repl = dict(repl)
    repl[first] = decl + "\n  " + repl.get(first, src.text(first))
    return src.rebuild(repl)


def nclk_wire(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    for e, s, name in src.edge_events():
        if name in ctx.clocks:
            code = _insert_after_header(src, ctx, f"wire verirl_nclk = ~{name};", {s: "verirl_nclk"})
            if code:
                out.append((f"{src.line(e)}: {src.text(e)} {name} -> {src.text(e)} verirl_nclk (= ~{name})", code))
    return out


def divided_clock(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    for e, s, name in src.edge_events():
        if name in ctx.clocks:
            decl = (f"reg verirl_div = 1'b0; always @(posedge {name}) verirl_div <= ~verirl_div;")
            code = _insert_after_header(src, ctx, decl, {s: "verirl_div"})
            if code:
                out.append((f"{src.line(e)}: {name} -> a divided internal clock", code))
    return out


def clock_on_reset(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    for e, s, name in src.edge_events():
        if name in ctx.clocks:
            for rst in ctx.resets:
                out.append((f"{src.line(e)}: {src.text(e)} {name} -> {src.text(e)} {rst}", src.rebuild({s: rst})))
    return out


def gated_clock(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    bit = ctx.data_bit()
    if bit is None:
        return out
    for e, s, name in src.edge_events():
        if name in ctx.clocks:
            code = _insert_after_header(src, ctx, f"wire verirl_gclk = {name} & {bit};", {s: "verirl_gclk"})
            if code:
                out.append((f"{src.line(e)}: {name} gated by {bit}", code))
    return out


# ----------------------------------------------------------------------------- resets
def sync_to_async(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    for e, s, name in src.edge_events():
        close = src.nxt(s)
        if name not in ctx.clocks or close is None or src.text(close) != ")":
            continue
        for rst, low in ctx.reset_levels.items():
            edge = "negedge" if low else "posedge"
            out.append((f"{src.line(e)}: {rst} added to the event list", src.rebuild({s: f"{name} or {edge} {rst}"})))
    return out


def async_to_sync(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    for e, s, name in src.edge_events():
        if name not in ctx.resets:
            continue
        before = src.prv(e)
        if before is not None and src.text(before) in ("or", ","):
            out.append((f"{src.line(e)}: {name} removed from the event list",
                        src.rebuild({before: "", e: "", s: ""})))
    return out


# ----------------------------------------------------------------------------- x / z
def const_to_x(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    for i in src.body():
        if src.tokens[i].kind != NUMBER:
            continue
        start = i
        prev = src.prv(i)
        if src.text(i).startswith("'") and prev is not None and src.tokens[prev].kind == NUMBER:
            start, prev = prev, src.prv(prev)  # a sized constant: 4 'd0
        after = src.nxt(i)
        if prev is not None and src.text(prev) in ("<=", "=") and after is not None and src.text(after) == ";":
            repl = {k: "" for k in range(start, i + 1)}
            repl[start] = "'x"
            out.append((f"{src.line(i)}: constant -> 'x", src.rebuild(repl)))
    return out


def output_z(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    bit = ctx.data_bit()
    for i in src.sig:
        if src.text(i) != "assign":
            continue
        lhs = src.nxt(i)
        eq = src.nxt(i, 2)
        if lhs is None or eq is None or src.text(lhs) not in ctx.outputs or src.text(eq) != "=":
            continue
        end = src.statement_end(lhs)
        if end is None:
            continue
        cond = bit or "1'b0"
        out.append((f"{src.line(i)}: {src.text(lhs)} driven 'z when {cond} is 0",
                    src.rebuild({eq: f"= {cond} ? (", end: ") : 'z;"})))
    return out


def out_of_range(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    for i in src.sig:
        if src.text(i) != "[":
            continue
        num, close, base = src.nxt(i), src.nxt(i, 2), src.prv(i)
        if (num is None or close is None or base is None or src.tokens[num].kind != NUMBER
                or src.text(close) != "]" or src.tokens[base].kind != IDENT or not src.text(num).isdigit()):
            continue
        before = src.prv(base)
        if before is not None and src.text(before) in ("input", "output", "reg", "wire", "logic", "]"):
            continue
        out.append((f"{src.line(i)}: {src.text(base)}[{src.text(num)}] -> [{int(src.text(num)) + 64}]",
                    src.rebuild({num: str(int(src.text(num)) + 64)})))
    return out


# ----------------------------------------------------------------------------- pragmas
def translate_off(src: _Src, ctx) -> list[tuple[str, str]]:
    """A term the simulator sees and a synthesis tool honouring the pragma does not."""
    out = []
    bit = ctx.data_bit()
    if bit is None:
        return out
    for i in src.sig:
        if src.text(i) != "assign":
            continue
        end = src.statement_end(i)
        if end is not None:
            hidden = f"\n// synopsys translate_off\n ^ {bit}\n// synopsys translate_on\n;"
            out.append((f"{src.line(i)}: ^ {bit} inside translate_off", src.rebuild({end: hidden})))
            hidden = f"\n`ifndef SYNTHESIS\n ^ {bit}\n`endif\n;"
            out.append((f"{src.line(i)}: ^ {bit} inside `ifndef SYNTHESIS", src.rebuild({end: hidden})))
    return out


def full_case(src: _Src, ctx) -> list[tuple[str, str]]:
    """A ``default`` item removed and the case declared full (pragma or attribute)."""
    out = []
    for i in src.sig:
        if src.text(i) != "default":
            continue
        colon = src.nxt(i)
        if colon is None or src.text(colon) != ":":
            continue
        start = src.nxt(colon)
        end = src.statement_end(start) if start is not None else None
        case = None
        depth = 0
        for j in reversed(src.sig[:src.pos[i]]):
            t = src.text(j)
            if t == "endcase":
                depth += 1
            elif t in ("case", "casez", "casex"):
                if depth == 0:
                    case = j
                    break
                depth -= 1
        if end is None or case is None:
            continue
        paren_end = None
        depth = 0
        for j in src.sig[src.pos[case] + 1:]:
            if src.text(j) == "(":
                depth += 1
            elif src.text(j) == ")":
                depth -= 1
                if depth == 0:
                    paren_end = j
                    break
        if paren_end is None:
            continue
        removed = {k: "" for k in range(i, end + 1)}
        out.append((f"{src.line(i)}: default removed, // synopsys full_case",
                    src.rebuild({**removed, paren_end: ") // synopsys full_case parallel_case\n"})))
        out.append((f"{src.line(i)}: default removed, (* full_case *)",
                    src.rebuild({**removed, case: "(* full_case *) " + src.text(case)})))
    return out


# ----------------------------------------------------------------------------- drivers, lists, races
def extra_driver(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    end = src.module_end(ctx.top)
    bit = ctx.data_bit()
    if end is None or bit is None:
        return out
    for name in ctx.outputs:
        out.append((f"second driver on {name}", src.rebuild({end: f"assign {name} = {{{ctx.width(name)}{{{bit}}}}};\n"
                                                              "endmodule"})))
    return out


def incomplete_sensitivity(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    for start, ctl_end, end in src.always_blocks():
        if src.text(ctl_end) not in ("*", ")", "(*)") or src.text(start) != "always":
            continue
        at = src.nxt(start)
        if at is None or src.text(at) != "@":
            continue
        body = [src.text(j) for j in src.sig[src.pos[ctl_end] + 1:src.pos[end] + 1]]
        reads = [n for n in dict.fromkeys(body) if n in ctx.inputs]
        listed = [src.text(j) for j in src.sig[src.pos[at] + 1:src.pos[ctl_end] + 1]]
        if "posedge" in listed or "negedge" in listed or len(reads) < 2:
            continue
        repl = {j: "" for j in src.sig[src.pos[at] + 1:src.pos[ctl_end] + 1]}
        repl[ctl_end] = f"({reads[0]})"
        out.append((f"{src.line(start)}: sensitivity list ({reads[0]}) only", src.rebuild(repl)))
    return out


def blocking_race(src: _Src, ctx) -> list[tuple[str, str]]:
    out = []
    for start, ctl_end, end in src.always_blocks():
        listed = [src.text(j) for j in src.sig[src.pos[start]:src.pos[ctl_end] + 1]]
        if "posedge" not in listed and "negedge" not in listed:
            continue
        for j in src.sig[src.pos[ctl_end] + 1:src.pos[end] + 1]:
            if src.text(j) == "<=":
                out.append((f"{src.line(j)}: <= -> =", src.rebuild({j: "="})))
    return out


# ----------------------------------------------------------------------------- rewrites
def wrapper_rewrite(source: str, iface, top: str, drive: dict[str, str] | None = None) -> str:
    """An equivalent design with one more level of hierarchy (ports connected by name); ``drive``
    replaces the expression connected to some inner ports (a mutation, then)."""
    from .sanitize import rename_modules

    inner = rename_modules(source, {top: f"{top}_core"})
    decls = []
    for p in iface.ports:
        rng = f"[{p.width - 1}:0] " if p.width > 1 else ""
        decls.append(f"  {p.direction} wire {rng}{p.name}")
    conns = ", ".join(f".{p.name}({(drive or {}).get(p.name, p.name)})" for p in iface.ports)
    return inner + f"\nmodule {top} (\n" + ",\n".join(decls) + f"\n);\n  {top}_core u_core ({conns});\nendmodule\n"


def commutative_rewrite(source: str) -> str | None:
    """Swap the two operands of the first commutative operator whose operands are single identifiers."""
    src = _Src(source)
    body = set(src.body())
    # operands bound to the operator by nothing of higher precedence (`<=` may be a comparison)
    safe = {"(", ")", "=", ";", ",", "?", ":"}
    sig = src.sig
    for k in range(2, len(sig) - 2):
        op = src.tokens[sig[k]]
        if op.text not in COMMUTATIVE or sig[k] not in body:
            continue
        left, right = src.tokens[sig[k - 1]], src.tokens[sig[k + 1]]
        before, after = src.text(sig[k - 2]), src.text(sig[k + 2])
        if left.kind == IDENT and right.kind == IDENT and before in safe and after in safe and before != ":":
            return src.rebuild({sig[k - 1]: right.text, sig[k + 1]: left.text})
    return None


def clock_alias_rewrite(source: str, iface, top: str) -> str | None:
    """Every edge on a clock taken through ``wire alias = ~~clk`` (equivalent)."""
    src = _Src(source)
    clocks = {c.name for c in iface.clocks}
    start, stop = src.header_end(top), src.module_end(top)
    if start is None or stop is None:
        return None
    repl = {s: f"verirl_alias_{name}" for _, s, name in src.edge_events() if name in clocks and start < s < stop}
    if not repl:
        return None
    decl = " ".join(f"wire verirl_alias_{c} = ~(~{c});" for c in sorted(clocks))
    return _insert_after_header(src, _Context(iface, top), decl, repl)


def pragma_rewrite(source: str) -> str | None:
    """Comments and attributes a synthesis tool reads, which the simulator ignores (equivalent)."""
    src = _Src(source)
    repl = {}
    for i in src.sig:
        if src.text(i) in ("case", "casez"):
            repl[i] = "(* parallel_case *) " + src.text(i)
        elif src.text(i) == "endmodule":
            repl[i] = "// synopsys translate_off\n// nothing here\n// synopsys translate_on\nendmodule"
    return src.rebuild(repl) if repl else None


REWRITES: dict[str, Callable] = {
    "self": lambda source, iface, top: source,
    "wrapper": wrapper_rewrite,
    "commutative": lambda source, iface, top: commutative_rewrite(source),
    "clock_alias": clock_alias_rewrite,
    "pragmas": lambda source, iface, top: pragma_rewrite(source),
}

OPERATORS: dict[str, tuple[str, Callable]] = {
    "operator_swap": ("bench", operator_swap),
    "constant_change": ("bench", constant_change),
    "reset_polarity_flip": ("bench", reset_polarity_flip),
    "branch_removal": ("bench", branch_removal),
    "negedge_all": ("clock_edge", negedge_all),
    "negedge_one": ("clock_edge", negedge_one),
    "negedge_submodule": ("clock_edge", negedge_submodule),
    "nclk_wire": ("clock_edge", nclk_wire),
    "divided_clock": ("clock_edge", divided_clock),
    "clock_on_reset": ("clock_edge", clock_on_reset),
    "gated_clock": ("derived_clock", gated_clock),
    "sync_to_async": ("reset", sync_to_async),
    "async_to_sync": ("reset", async_to_sync),
    "const_to_x": ("xz", const_to_x),
    "output_z": ("xz", output_z),
    "out_of_range": ("xz", out_of_range),
    "translate_off": ("pragma", translate_off),
    "full_case": ("pragma", full_case),
    "extra_driver": ("multi_driver", extra_driver),
    "incomplete_sensitivity": ("sensitivity", incomplete_sensitivity),
    "blocking_race": ("race", blocking_race),
}
FAMILIES = tuple(dict.fromkeys(family for family, _ in OPERATORS.values()))


@dataclasses.dataclass
class _Context:
    iface: object
    top: str

    def __post_init__(self):
        iface = self.iface
        self.clocks = {c.name for c in iface.clocks if c.bit is None}
        self.resets = {r.name for r in iface.resets}
        self.reset_levels = {r.name: r.active_low for r in iface.resets}
        self.outputs = {p.name for p in iface.outputs}
        self.inputs = {p.name for p in iface.inputs}
        self._widths = {p.name: p.width for p in iface.ports}

    def width(self, name: str) -> int:
        return self._widths.get(name, 1)

    def data_bit(self) -> str | None:
        for p in self.iface.data_inputs:
            if p.packed:
                return p.name if p.width == 1 else f"{p.name}[0]"
        return None


def mutation_sites(source: str, iface, top: str, operators: list[str] | None = None) -> dict[str, list[tuple[str, str]]]:
    """For each operator, the possible mutants of ``source`` as ``(where, code)`` (code != source)."""
    src = _Src(source)
    ctx = _Context(iface, top)
    out = {}
    for name in operators or list(OPERATORS):
        _, fn = OPERATORS[name]
        seen: set[str] = set()
        sites = []
        for where, code in fn(src, ctx):
            if code and code != source and code not in seen:
                seen.add(code)
                sites.append((where, code))
        out[name] = sites
    return out


def make_mutants(name: str, source: str, iface, top: str, per_operator: int, seed: int,
                 valid: Callable[[str], bool] | None = None, operators: list[str] | None = None,
                 tries: int = 4) -> list[Mutant]:
    """Up to ``per_operator`` mutants per operator (random sites), each accepted by ``valid(code)``."""
    rng = random.Random(f"{seed}:{name}")
    chosen: list[Mutant] = []
    for op, sites in mutation_sites(source, iface, top, operators).items():
        family = OPERATORS[op][0]
        options = list(sites)
        rng.shuffle(options)
        taken = 0
        for where, code in options[: max(tries, per_operator) * 2]:
            if taken >= per_operator:
                break
            if valid is None or valid(code):
                chosen.append(Mutant(family, op, where, code))
                taken += 1
    return chosen


__all__ = ["FAMILIES", "OPERATORS", "REWRITES", "Mutant", "commutative_rewrite", "make_mutants", "mutation_sites",
           "wrapper_rewrite"]
del COMMENT, SPACE
