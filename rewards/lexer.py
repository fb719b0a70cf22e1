"""A small Verilog/SystemVerilog lexer, enough for safety checks and module renaming.

It is not a parser: it splits source text into tokens (identifiers, system identifiers,
compiler directives, strings, numbers, comments, whitespace, operators) exactly, so that
the text can be rebuilt byte for byte with some tokens replaced. Comments and strings are
single tokens, so a ``$finish`` inside a comment or a string is never mistaken for a call.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

IDENT = "ident"
ESCAPED = "escaped"  # \escaped_identifier
SYSTEM = "system"  # $name
DIRECTIVE = "directive"  # `name
STRING = "string"
NUMBER = "number"
COMMENT = "comment"
SPACE = "space"
OP = "op"

_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>//[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<string>"(?:\\.|[^"\\\n])*(?:"|$))
  | (?P<system>\$[A-Za-z0-9_$]*)
  | (?P<directive>`(?:``|"|\\`"|[A-Za-z_][A-Za-z0-9_$]*)?)
  | (?P<escaped>\\\S+)
  | (?P<number>\d[\d_]*(?:\.[\d_]+)?(?:[eE][+-]?\d+)?|'[sS]?[bBoOdDhH]?[0-9a-fA-FxXzZ?_]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<op>::|<<<|>>>|<<=|>>=|===|!==|==|!=|<=|>=|&&|\|\||<<|>>|\*\*|->|\+:|-:|.)
    """,
    re.VERBOSE | re.DOTALL | re.MULTILINE,
)


@dataclasses.dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int

    @property
    def significant(self) -> bool:
        return self.kind not in (SPACE, COMMENT)


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens whose texts concatenate back to ``source``."""
    tokens: list[Token] = []
    pos = 0
    n = len(source)
    while pos < n:
        match = _TOKEN_RE.match(source, pos)
        if match is None:  # pragma: no cover - the final `.` alternative matches anything
            tokens.append(Token(OP, source[pos], pos))
            pos += 1
            continue
        kind = match.lastgroup or OP
        tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


def significant(tokens: list[Token]) -> list[int]:
    """Indices of the tokens that are not whitespace or comments."""
    return [i for i, tok in enumerate(tokens) if tok.significant]


DEFINITION_KEYWORDS = frozenset({"module", "macromodule", "primitive", "interface", "program"})
_END_KEYWORDS = frozenset({"endmodule", "endprimitive", "endinterface", "endprogram"})
_LIFETIME = frozenset({"automatic", "static"})


def definitions(tokens: list[Token]) -> Iterator[tuple[str, int]]:
    """Yield ``(name, token_index)`` for every module/primitive/interface/program definition."""
    sig = significant(tokens)
    for pos, idx in enumerate(sig):
        tok = tokens[idx]
        if tok.kind == IDENT and tok.text in DEFINITION_KEYWORDS:
            nxt = pos + 1
            while nxt < len(sig) and tokens[sig[nxt]].text in _LIFETIME:
                nxt += 1
            if nxt < len(sig) and tokens[sig[nxt]].kind in (IDENT, ESCAPED):
                yield tokens[sig[nxt]].text, sig[nxt]


def module_names(source: str) -> list[str]:
    """Names of the modules (and primitives, interfaces, programs) ``source`` defines, in order."""
    return [name for name, _ in definitions(tokenize(source))]


def split_modules(source: str) -> list[tuple[str, str]]:
    """Split ``source`` into ``(name, text)`` per definition, each text from keyword to end keyword.

    Text outside definitions (directives, comments) that precedes a definition is attached to it.
    """
    tokens = tokenize(source)
    out: list[tuple[str, str]] = []
    start_tok = 0
    name = None
    for i, tok in enumerate(tokens):
        if tok.kind != IDENT:
            continue
        if tok.text in DEFINITION_KEYWORDS and name is None:
            nxt = i + 1
            while nxt < len(tokens) and (not tokens[nxt].significant or tokens[nxt].text in _LIFETIME):
                nxt += 1
            if nxt < len(tokens) and tokens[nxt].kind in (IDENT, ESCAPED):
                name = tokens[nxt].text
        elif tok.text in _END_KEYWORDS and name is not None:
            end = i + 1
            # SystemVerilog end label: `endmodule : name`
            j = end
            while j < len(tokens) and not tokens[j].significant:
                j += 1
            if j < len(tokens) and tokens[j].text == ":":
                k = j + 1
                while k < len(tokens) and not tokens[k].significant:
                    k += 1
                if k < len(tokens) and tokens[k].kind == IDENT:
                    end = k + 1
            text = "".join(t.text for t in tokens[start_tok:end])
            out.append((name, text.strip("\n") + "\n"))
            start_tok = end
            name = None
    return out


VALID_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def is_plain_identifier(name: object) -> bool:
    """True for a plain Verilog identifier safe to put in a tool script (no ``$``, no escapes)."""
    return isinstance(name, str) and VALID_NAME.match(name) is not None
