"""A Verilog/SystemVerilog lexer that splits text the way Icarus Verilog 11's lexer does.

It is not a parser: it splits source text into tokens (identifiers, escaped identifiers,
system identifiers, compiler directives, strings, numbers, comments, whitespace, operators)
exactly, so that the text can be rebuilt byte for byte with some tokens replaced. Comments
and strings are single tokens, so a ``$finish`` inside a comment or a string is never
mistaken for a call.

The token rules are those of Icarus Verilog 11's ``lexor.lex`` (the compiler proper), so on
the canonical candidate text (:mod:`rewards.sanitize`: printable ASCII, tab and newline, no
comments, no directives but its own) this lexer and the compiler see the same tokens:

* whitespace is ``[ \\t\\b\\f\\r\\n]``; an escaped identifier runs from ``\\`` to the next of
  those characters (a backspace ends it, a vertical tab does not);
* a ``//`` comment ends at a newline or a carriage return (Icarus' preprocessor turns a bare
  ``\\r`` into a line end before the compiler reads the text);
* a string ends at an unescaped ``"`` and never spans a line; an unterminated ``"`` is a lone
  operator token, never the start of a string that hides the rest of the line;
* a system identifier is ``$`` and every following ``[A-Za-z0-9_$]``;
* based numbers allow blanks between the base and the digits (``8'h ff``); ``1ns`` is one
  time-literal token.

The preprocessor's view of the text (macros, ```ifdef``, attributes) is :mod:`rewards.preprocess`.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import re
import threading
import typing
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

#: Characters Icarus' lexer treats as whitespace (they also end an escaped identifier).
WHITESPACE = " \t\b\f\r\n"

_TOKEN_RE = re.compile(
    r"""
    (?P<space>[ \t\b\f\r\n]+)
  | (?P<comment>//[^\r\n]*|/\*.*?(?:\*/|\Z))
  | (?P<string>"(?:\\[^\n]|[^"\\\n])*")
  | (?P<system>\$[A-Za-z0-9_$]+)
  | (?P<directive>`(?:`|"|\\`"|[A-Za-z_][A-Za-z0-9_$]*)?)
  | (?P<escaped>\\[^ \t\b\f\r\n]+)
  | (?P<number>
        '[sS]?[dD][ \t]*[0-9][0-9_]*
      | '[sS]?[dD][ \t]*[xzXZ?]_*
      | '[sS]?[bB][ \t]*[01xzXZ?][01xzXZ?_]*
      | '[sS]?[oO][ \t]*[0-7xzXZ?][0-7xzXZ?_]*
      | '[sS]?[hH][ \t]*[0-9a-fA-FxzXZ?][0-9a-fA-FxzXZ?_]*
      | '[01xzXZ]
      | [0-9][0-9_]*(?:\.[0-9][0-9_]*)?[munpf]?s
      | [0-9][0-9_]*\.[0-9][0-9_]*(?:[eE][+-]?[0-9][0-9_]*)?
      | [0-9][0-9_]*[eE][+-]?[0-9][0-9_]*
      | [0-9][0-9_]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<op>\([ \t\b\f\r]*\*[ \t\b\f\r]*\)|\(\*|\*\)|<<<=|>>>=|<->|&&&|===|!==|==\?|!=\?|<<<|>>>|<<=|>>=|'\{|::|\.\*
        |->|\+:|-:|==|!=|<=|>=|&&|\|\||<<|>>|\*\*|=>|\*>|~\||~\^|\^~|~&|\+\+|--|\+=|-=|\*=|/=|%=|&=|\|=|\^=|.)
    """,
    re.VERBOSE | re.DOTALL,
)

_KEYWORD_TEXT = """
accept_on alias always always_comb always_ff always_latch and assert assign assume automatic before begin bind
bins binsof bit break buf bufif0 bufif1 byte case casex casez cell chandle checker class clocking cmos config
const constraint context continue cover covergroup coverpoint cross deassign default defparam design disable dist
do edge else end endcase endchecker endclass endclocking endconfig endfunction endgenerate endgroup endinterface
endmodule endpackage endprimitive endprogram endproperty endspecify endsequence endtable endtask enum event
eventually expect export extends extern final first_match for force foreach forever fork forkjoin function
generate genvar global highz0 highz1 if iff ifnone ignore_bins illegal_bins implements implies import incdir
include initial inout input inside instance int integer interconnect interface intersect join join_any join_none
large let liblist library local localparam logic longint macromodule matches medium modport module nand negedge
nettype new nexttime nmos nor noshowcancelled not notif0 notif1 null or output package packed parameter pmos
posedge primitive priority program property protected pull0 pull1 pulldown pullup pulsestyle_ondetect
pulsestyle_onevent pure rand randc randcase randsequence rcmos real realtime ref reg reject_on release repeat
restrict return rnmos rpmos rtran rtranif0 rtranif1 s_always s_eventually s_nexttime s_until s_until_with
scalared sequence shortint shortreal showcancelled signed small soft solve specify specparam static string
strong strong0 strong1 struct super supply0 supply1 sync_accept_on sync_reject_on table tagged task this
throughout time timeprecision timeunit tran tranif0 tranif1 tri tri0 tri1 triand trior trireg type typedef union
unique unique0 unsigned until until_with untyped use uwire var vectored virtual void wait wait_order wand weak
weak0 weak1 while wildcard wire with within wor xnor xor
"""
#: Keywords of IEEE 1800-2017 (Annex B) and Verilog-2005, which Icarus reserves with -g2012.
KEYWORDS = frozenset(_KEYWORD_TEXT.split())


class Token(typing.NamedTuple):
    """One token: immutable (a named tuple, which is also the cheapest object to make: a testbench has thousands)."""

    kind: str
    text: str
    start: int

    @property
    def significant(self) -> bool:
        return self.kind not in _BLANK

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens whose texts concatenate back to ``source``.

    Every alternative of the token pattern takes at least one character and the last one (``.``, with DOTALL) takes
    any, so the matches of one scan are contiguous and cover the whole text."""
    return [Token(m.lastgroup or OP, m.group(), m.start()) for m in _TOKEN_RE.finditer(source)]


@functools.lru_cache(maxsize=256)
def trusted_tokens(text: str) -> tuple[Token, ...]:
    """:func:`tokenize` of a trusted text (a task's testbench or reference), remembered for the last texts asked
    about: the timescale, the compilation unit's names and the gate's merge decision all read the same testbench,
    which is then lexed once per process. Not for model output (a stream of one-off texts)."""
    return tuple(tokenize(text))


_BLANK = frozenset({SPACE, COMMENT})


def significant(tokens: list[Token]) -> list[int]:
    """Indices of the tokens that are not whitespace or comments."""
    return [i for i, tok in enumerate(tokens) if tok.kind not in _BLANK]


def identifier_name(tok: Token) -> str | None:
    """The name an identifier token denotes: ``\\foo`` and ``foo`` are the same name in Verilog."""
    if tok.kind == IDENT:
        return tok.text
    if tok.kind == ESCAPED:
        return tok.text[1:]
    return None


DEFINITION_KEYWORDS = frozenset({"module", "macromodule", "primitive", "interface", "program", "package"})
_END_KEYWORDS = frozenset({"endmodule", "endprimitive", "endinterface", "endprogram", "endpackage"})
_LIFETIME = frozenset({"automatic", "static"})


def definitions(tokens: list[Token]) -> Iterator[tuple[str, int]]:
    """Yield ``(name, token_index)`` for every module/primitive/interface/program/package definition."""
    sig = significant(tokens)
    for pos, idx in enumerate(sig):
        tok = tokens[idx]
        if tok.kind == IDENT and tok.text in DEFINITION_KEYWORDS:
            nxt = pos + 1
            while nxt < len(sig) and tokens[sig[nxt]].text in _LIFETIME:
                nxt += 1
            if nxt < len(sig) and tokens[sig[nxt]].kind in (IDENT, ESCAPED):
                yield tokens[sig[nxt]].text, sig[nxt]


_NAMES_CACHE: collections.OrderedDict[bytes, tuple[str, ...]] = collections.OrderedDict()
_NAMES_LOCK = threading.Lock()


def _text_key(source: str) -> bytes:
    return hashlib.sha256(source.encode("utf-8", errors="surrogatepass")).digest()


def module_names(source: str) -> list[str]:
    """Names of the modules (and primitives, interfaces, programs, packages) ``source`` defines, in order.

    Remembered (by hash) for the last texts asked about: the gate, the simulator and Yosys ask about the same one."""
    key = _text_key(source)
    with _NAMES_LOCK:
        known = _NAMES_CACHE.get(key)
    if known is None:
        known = tuple(name for name, _ in definitions(tokenize(source)))
        _remember_names(key, known)
    return list(known)


def remember_module_names(source: str, names: tuple[str, ...] | list[str]) -> None:
    """Record what :func:`module_names` returns for ``source`` (a caller that already tokenized it)."""
    _remember_names(_text_key(source), tuple(names))


def _remember_names(key: bytes, names: tuple[str, ...]) -> None:
    with _NAMES_LOCK:
        _NAMES_CACHE[key] = names
        _NAMES_CACHE.move_to_end(key)
        while len(_NAMES_CACHE) > 4096:
            _NAMES_CACHE.popitem(last=False)


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


_UNITS = {"module": "endmodule", "macromodule": "endmodule", "primitive": "endprimitive", "interface": "endinterface",
          "program": "endprogram", "package": "endpackage", "class": "endclass", "checker": "endchecker",
          "config": "endconfig"}


@functools.lru_cache(maxsize=512)
def unit_names(text: str) -> frozenset[str]:
    """A superset of the names trusted ``text`` declares in the compilation unit: every identifier outside
    design units (modules, packages, classes...) and directive lines; with a file-scope ``import``, every
    identifier of the packages too. ``"*"`` when a file-scope macro use or ```include`` may declare anything."""
    depth: list[str] = []
    tokens = trusted_tokens(text)
    names: set[str] = set()
    in_package: set[str] = set()
    imports = False
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok.kind in _BLANK:
            continue
        if tok.text == "(*":  # an attribute, whatever it annotates
            while i < len(tokens) and tokens[i].text != "*)":
                i += 1
            i += 1
            continue
        if tok.kind == DIRECTIVE:
            if tok.text[1:] in _DIRECTIVE_LINES:
                while i < len(tokens) and "\n" not in tokens[i].text:  # the rest of the directive's line
                    if tokens[i].text.endswith("\\") and i + 1 < len(tokens) and "\n" in tokens[i + 1].text:
                        i += 1  # a continued `define
                    i += 1
            elif not depth:
                return frozenset({"*"})  # a macro use or `include at file scope: it may declare anything
            continue
        name = identifier_name(tok)
        if tok.kind == IDENT and tok.text in _UNITS:
            depth.append(_UNITS[tok.text])
        elif tok.kind == IDENT and depth and tok.text == depth[-1]:
            depth.pop()
        elif name is not None and name not in KEYWORDS:
            if not depth:
                names.add(name)
            elif depth[0] == "endpackage":
                in_package.add(name)
        elif not depth and tok.text == "import":
            imports = True
    return frozenset(names | (in_package if imports else set()))


_DIRECTIVE_LINES = frozenset({"define", "undef", "timescale", "default_nettype", "resetall", "celldefine",
                              "endcelldefine", "ifdef", "ifndef", "elsif", "else", "endif", "line"})
