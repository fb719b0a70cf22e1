"""Make candidate Verilog safe to simulate next to a trusted testbench.

The candidate is model output: it must not be able to produce the testbench's verdict,
end the test, touch the file system, or reach into the testbench. Before any tool sees
it, :func:`sanitize_candidate`:

* rejects ```include`` (host files), the token-pasting operator, and every system task or
  function outside a whitelist of synthesizable ones (``$clog2``, ``$signed``, ``$bits``...):
  ``$finish``, ``$stop``, ``$fatal``, ``$fopen``/``$fwrite``, ``$readmem*``, ``$system``,
  ``$dump*``, ``$root``... give the failure class ``forbidden``;
* neutralises output tasks (``$display`` family, ``$write``, ``$strobe``, ``$monitor``,
  ``$info``/``$warning``/``$error``): the call is removed and an empty statement left, so
  debugging prints cost nothing but cannot print a verdict;
* renames every module the candidate defines except ``top`` with a per-run random prefix,
  so it can neither collide with nor replace the testbench's or the reference's modules.

Hierarchical references out of the candidate's own hierarchy (``tb.ref.out``) are caught
by elaborating the candidate on its own, with ``top`` as root (see :mod:`rewards.syntax`).
"""

from __future__ import annotations

import dataclasses
import secrets

from . import lexer
from .lexer import COMMENT, DIRECTIVE, IDENT, SYSTEM, Token

#: System functions a synthesizable design may use; everything else is refused.
ALLOWED_SYSTEM = frozenset({
    "$clog2", "$signed", "$unsigned", "$bits", "$size", "$high", "$low", "$left", "$right",
    "$increment", "$dimensions", "$unpacked_dimensions", "$countones", "$countbits", "$onehot",
    "$onehot0", "$isunknown", "$ln", "$log10", "$exp", "$sqrt", "$pow", "$floor", "$ceil",
    "$sin", "$cos", "$tan", "$asin", "$acos", "$atan", "$atan2", "$hypot", "$sinh", "$cosh", "$tanh",
    "$rtoi", "$itor", "$realtobits", "$bitstoreal", "$shortrealtobits", "$bitstoshortreal",
})

#: Output tasks removed from candidate code (they may only print, never decide).
NEUTRALISED_SYSTEM = frozenset({
    "$display", "$displayb", "$displayh", "$displayo", "$write", "$writeb", "$writeh", "$writeo",
    "$strobe", "$strobeb", "$strobeh", "$strobeo", "$monitor", "$monitorb", "$monitorh", "$monitoro",
    "$monitoron", "$monitoroff", "$info", "$warning", "$error", "$printtimescale",
})

#: Compiler directives refused in candidate code (other directives and macro uses are fine).
FORBIDDEN_DIRECTIVES = frozenset({"`include", "`line", "`pragma"})

MAX_SOURCE_BYTES = 256 * 1024


class Forbidden(Exception):
    """The candidate uses a construct the sandbox refuses; the model is at fault."""


@dataclasses.dataclass(frozen=True)
class Sanitized:
    code: str
    top: str
    modules: tuple[str, ...]
    renamed: dict[str, str]
    neutralised: tuple[str, ...]


def sanitize_candidate(
    code: str,
    top: str,
    *,
    prefix: str | None = None,
    neutralise_output: bool = True,
) -> Sanitized:
    """Check and rewrite candidate ``code`` whose top module must be ``top``.

    Raises :class:`Forbidden` for refused constructs; the message says what was found.
    """
    if not lexer.is_plain_identifier(top):
        raise ValueError(f"task top module name {top!r} is not a plain Verilog identifier")
    if len(code.encode("utf-8", errors="replace")) > MAX_SOURCE_BYTES:
        raise Forbidden(f"candidate source is larger than {MAX_SOURCE_BYTES // 1024} KiB")
    if "\x00" in code:
        raise Forbidden("candidate source contains NUL bytes")
    tokens = lexer.tokenize(code)
    _check_directives(tokens)
    names = [name for name, _ in lexer.definitions(tokens)]
    prefix = prefix or f"verirl_c{secrets.token_hex(4)}_"
    mapping = {name: prefix + name for name in dict.fromkeys(names) if name != top and not name.startswith("\\")}
    neutralised: list[str] = []
    tokens = _neutralise_and_check_system(tokens, neutralise_output, neutralised)
    tokens = _rename(tokens, mapping)
    return Sanitized(
        code="".join(t.text for t in tokens),
        top=top,
        modules=tuple(names),
        renamed=mapping,
        neutralised=tuple(neutralised),
    )


def rename_modules(code: str, mapping: dict[str, str]) -> str:
    """Rename module definitions and instantiations in trusted ``code`` (e.g. the reference)."""
    return "".join(t.text for t in _rename(lexer.tokenize(code), mapping))


def _check_directives(tokens: list[Token]) -> None:
    for tok in tokens:
        if tok.kind != DIRECTIVE:
            continue
        if tok.text == "``":
            raise Forbidden("macro token pasting (``) is not allowed in candidate code")
        if tok.text in FORBIDDEN_DIRECTIVES:
            raise Forbidden(f"compiler directive {tok.text} is not allowed in candidate code"
                            + (" (it would read host files)" if tok.text == "`include" else ""))


def _neutralise_and_check_system(tokens: list[Token], neutralise: bool, found: list[str]) -> list[Token]:
    out: list[Token] = []
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if tok.kind == SYSTEM:
            name = tok.text
            if name in ALLOWED_SYSTEM:
                out.append(tok)
                i += 1
                continue
            if name in NEUTRALISED_SYSTEM and neutralise:
                end = _call_end(tokens, i)
                if end is not None:
                    found.append(name)
                    # `$display(...);` becomes an empty block, valid wherever a statement is
                    out.append(Token(COMMENT, f"begin end /* {name} removed by verirl */", tok.start))
                    i = end
                    continue
            raise Forbidden(f"system task/function {name} is not allowed in candidate code")
        out.append(tok)
        i += 1
    return out


def _call_end(tokens: list[Token], i: int) -> int | None:
    """Index after a system-task call statement ``$name [(...)] ;`` (its ``;`` included)."""
    j = _skip_space(tokens, i + 1)
    if j < len(tokens) and tokens[j].text == ";":
        return j + 1
    if j >= len(tokens) or tokens[j].text != "(":
        return None
    depth = 0
    while j < len(tokens):
        text = tokens[j].text
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
            if depth == 0:
                k = _skip_space(tokens, j + 1)
                return k + 1 if k < len(tokens) and tokens[k].text == ";" else None
        elif tokens[j].kind == SYSTEM and tokens[j].text not in ALLOWED_SYSTEM and tokens[j].text not in (
            "$time", "$realtime", "$stime"
        ):
            return None  # a forbidden call hidden in the arguments: refuse the whole thing
        j += 1
    return None


def _skip_space(tokens: list[Token], j: int) -> int:
    while j < len(tokens) and not tokens[j].significant:
        j += 1
    return j


def _rename(tokens: list[Token], mapping: dict[str, str]) -> list[Token]:
    """Rename definitions, instantiations and end labels of the modules in ``mapping``."""
    if not mapping:
        return tokens
    sig = lexer.significant(tokens)
    out = list(tokens)
    for pos, idx in enumerate(sig):
        tok = tokens[idx]
        if tok.kind != IDENT or tok.text not in mapping:
            continue
        prev = tokens[sig[pos - 1]].text if pos > 0 else ""
        prev2 = tokens[sig[pos - 2]].text if pos > 1 else ""
        nxt_tok = tokens[sig[pos + 1]] if pos + 1 < len(sig) else None
        is_definition = prev in lexer.DEFINITION_KEYWORDS or (
            prev in ("automatic", "static") and prev2 in lexer.DEFINITION_KEYWORDS
        )
        is_end_label = prev == ":" and prev2.startswith("end")
        is_instance = nxt_tok is not None and (nxt_tok.text == "#" or nxt_tok.kind in (IDENT, lexer.ESCAPED))
        if nxt_tok is not None and nxt_tok.kind == IDENT and nxt_tok.text in _NOT_INSTANCE_FOLLOWERS:
            is_instance = False
        if is_definition or is_end_label or is_instance:
            out[idx] = Token(IDENT, mapping[tok.text], tok.start)
    return out


# `name <keyword>` is never an instantiation (e.g. `x or y` in a sensitivity list)
_NOT_INSTANCE_FOLLOWERS = frozenset({"or", "and", "begin", "end", "else", "if", "iff", "inside", "dist", "with"})

__all__ = ["ALLOWED_SYSTEM", "Forbidden", "Sanitized", "rename_modules", "sanitize_candidate"]
