"""The canonical candidate text: the one text every check reads and every tool runs.

A candidate is model output. Before any tool sees it, :func:`sanitize_candidate` derives its
*canonical text*, once per completion, and the same string is what the standalone elaboration
gate compiles (:mod:`rewards.syntax`), what the simulator compiles after the testbench
(:mod:`rewards.simulate`), what Yosys synthesises (:mod:`rewards.synth`) and what the
equivalence checker reads. Nothing in it depends on the context it is compiled in:

1. **Text**: lone surrogates are refused, ``\\r\\n`` becomes ``\\n``, and every other C0 control
   character (a bare ``\\r``, backspace, form feed, NUL...) is refused: they are where a lexer and a
   compiler disagree on where a comment or an escaped identifier ends.
2. **Preprocessing**, in Python, by :mod:`rewards.preprocess` (faithful to Icarus' ``ivlpp``): the
   candidate's own macros are expanded and its ```ifdef`` branches resolved with no testbench or
   reference macro visible, ```__FILE__`` is ``"candidate.v"``; comments and attributes are dropped.
   What is left holds no compiler directive but the ```timescale``/```default_nettype``/```resetall``
   lines the candidate wrote, rewritten, and the header and footer below.
3. **Agreement**: the result is printable ASCII; it is split again with :mod:`rewards.lexer` (the
   compiler's token rules) and must hold exactly the strings the preprocessor saw and no comment,
   attribute or directive token it did not write.
4. **Allowlists** on those tokens: a system function is kept only when it is in
   :data:`ALLOWED_SYSTEM`; the output tasks of :data:`NEUTRALISED_SYSTEM` are replaced by an
   empty ``begin end`` (a debug print costs nothing but can never print a verdict); every other
   ``$`` name (``$finish``, ``$fopen``, ``$root``, ``$random``, ``$deposit``...) makes the candidate
   ``forbidden``. The query functions (``$bits``, ``$size``...) may not take a dotted name: Icarus
   evaluates ``$bits`` of a name it cannot resolve to 0 instead of failing, which would let a
   ``generate`` branch differ between the gate and the simulation.
5. **Names**: every module, primitive, interface, program and package the candidate defines except
   ``top`` gets a per-run random prefix, so the candidate can neither replace nor reach the
   testbench's or the reference's definitions.
6. **Frame**: ```resetall``, an explicit ```timescale`` (the testbench's, so delays keep the meaning
   they had), ```default_nettype wire`` and ```line 1 "candidate.v" 0`` (so logs point at the
   model's own lines) before the text, ```resetall`` after it.
7. **Verification**, context-free, on the final string: only printable ASCII; every ``$`` starts an
   allowed name; every backtick starts one of the frame's directive lines. These hold whatever the
   steps above did, so a bug in them cannot let a forbidden name through.

Hierarchical references out of the candidate (``tb.golden.out``), instances of modules it does
not define and ``defparam`` into other scopes are caught by elaborating this text alone
(:mod:`rewards.syntax`); see docs/sandbox.md.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import re
import secrets
import threading

from . import lexer
from .errors import Forbidden
from .lexer import DIRECTIVE, ESCAPED, IDENT, OP, STRING, SYSTEM, Token
from .preprocess import FILE_NAME, preprocess

#: System functions a synthesizable design may use (docs/rewards.md says why each is safe); the rest is refused.
ALLOWED_SYSTEM = frozenset({
    "$clog2", "$signed", "$unsigned", "$bits", "$size", "$high", "$low", "$left", "$right",
    "$increment", "$dimensions", "$unpacked_dimensions", "$countones", "$countbits", "$onehot",
    "$onehot0", "$isunknown", "$ln", "$log10", "$exp", "$sqrt", "$pow", "$floor", "$ceil",
    "$sin", "$cos", "$tan", "$asin", "$acos", "$atan", "$atan2", "$hypot", "$sinh", "$cosh", "$tanh",
    "$asinh", "$acosh", "$atanh", "$rtoi", "$itor", "$realtobits", "$bitstoreal",
})

#: Query functions that Icarus evaluates to 0 for a name it cannot resolve: no dotted argument.
QUERY_FUNCTIONS = frozenset({
    "$bits", "$size", "$high", "$low", "$left", "$right", "$increment", "$dimensions", "$unpacked_dimensions",
})

#: Output tasks removed from candidate code (they may only print, never decide).
NEUTRALISED_SYSTEM = frozenset({
    "$display", "$displayb", "$displayh", "$displayo", "$write", "$writeb", "$writeh", "$writeo",
    "$strobe", "$strobeb", "$strobeh", "$strobeo", "$monitor", "$monitorb", "$monitorh", "$monitoro",
    "$monitoron", "$monitoroff", "$info", "$warning", "$error", "$printtimescale",
})

#: `$time` & co. may appear inside a removed output call (they go with it), nowhere else.
_INSIDE_NEUTRALISED = frozenset({"$time", "$realtime", "$stime"})

#: Keywords refused in candidate code, and why.
REFUSED_KEYWORDS = {
    "specify": "timing paths are not function; Icarus skips them unchecked, names in them included",
}

MAX_SOURCE_BYTES = 256 * 1024
DEFAULT_TIMESCALE = "1ns/1ps"

_TIMESCALE_RE = re.compile(r"(1|10|100)(s|ms|us|ns|ps|fs)/(1|10|100)(s|ms|us|ns|ps|fs)")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NOT_PRINTABLE_RE = re.compile(r"[^\t\n\x20-\x7e]")
_DOLLAR_RE = re.compile(r"\$[A-Za-z0-9_$]*")
_KEPT_LINE_RE = re.compile(
    r"[ \t]*`(?:resetall|timescale (?:1|10|100)(?:s|ms|us|ns|ps|fs)/(?:1|10|100)(?:s|ms|us|ns|ps|fs)"
    r"|default_nettype (?:wire|tri|tri0|tri1|wand|triand|wor|trior|trireg|uwire|none))")
_LINE_DIRECTIVE = f'`line 1 "{FILE_NAME}" 0'
_FRAMED_RE = re.compile(r"`resetall\n`timescale ((?:1|10|100)(?:s|ms|us|ns|ps|fs)/(?:1|10|100)(?:s|ms|us|ns|ps|fs))\n"
                        r"`default_nettype wire\n" + re.escape(_LINE_DIRECTIVE) + r"\n(.*)\n`resetall\n", re.DOTALL)
_PLAIN_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_CONTROL_NAMES = {"\r": "carriage return", "\x00": "NUL", "\x08": "backspace", "\x0b": "vertical tab",
                  "\x0c": "form feed", "\x1b": "escape", "\x7f": "delete"}


@dataclasses.dataclass(frozen=True)
class Sanitized:
    """A candidate's canonical text and what was done to derive it."""

    code: str
    """The canonical text: what the gate elaborates, the simulator compiles and Yosys synthesises."""
    top: str
    modules: tuple[str, ...]
    """Names the candidate defines, as written (before renaming)."""
    renamed: dict[str, str]
    neutralised: tuple[str, ...]
    timescale: str = DEFAULT_TIMESCALE
    parameterised: bool = False
    """Whether ``top`` may take parameter overrides (then the gate also reports its default values)."""
    identifiers: frozenset[str] = frozenset()
    """Every identifier of the canonical text (keywords excluded): what it can name."""
    only_modules: bool = True
    """Whether every design unit it defines is a ``module`` (no primitive, interface, program, package)."""

    @property
    def prefix(self) -> str:
        """The per-run prefix given to the candidate's own design units other than ``top`` ("" when none)."""
        for old, new in self.renamed.items():
            return new[: len(new) - len(old)]
        return ""

    @property
    def shape(self) -> str:
        """A digest of the canonical text with the per-run prefix taken out and the blank space around the design
        trimmed: two texts with the same shape are the same design (only the line numbers in messages may
        differ), so one's simulation and synthesis verdicts are the other's."""
        body = self.code.replace(self.prefix, "\0") if self.prefix else self.code
        framed = _FRAMED_RE.fullmatch(body)
        if framed:
            body = f"{framed.group(1)}\0{framed.group(2).strip()}"
        return hashlib.sha256(f"{self.top}\0{body}".encode()).hexdigest()


def header(timescale: str) -> str:
    """The lines before every canonical text."""
    return f"`resetall\n`timescale {timescale}\n`default_nettype wire\n{_LINE_DIRECTIVE}\n"


FOOTER = "\n`resetall\n"

_REGISTRY: collections.OrderedDict[str, Sanitized] = collections.OrderedDict()
_REGISTRY_LOCK = threading.Lock()
_REGISTRY_SIZE = 4096
_REGISTRY_CHARS = 16 << 20  # and at most this much canonical text held (hostile completions are large)
_registry_chars = 0


def sanitize_candidate(
    code: str,
    top: str,
    *,
    prefix: str | None = None,
    neutralise_output: bool = True,
    timescale: str | None = None,
) -> Sanitized:
    """The canonical text of candidate ``code`` whose top module must be ``top`` (see the module docstring).

    Raises :class:`Forbidden` for refused constructs; the message says what was found and where.
    Text this process already made canonical is returned as it is (same object, no work), so a
    canonical text can be passed down to any check that sanitizes its input.
    """
    if not lexer.is_plain_identifier(top):
        raise ValueError(f"task top module name {top!r} is not a plain Verilog identifier")
    timescale = timescale or DEFAULT_TIMESCALE
    if not _TIMESCALE_RE.fullmatch(timescale):
        raise ValueError(f"timescale {timescale!r} is not of the form 1ns/1ps")
    known = _lookup(code, top)
    if known is not None:
        return known
    framed = _FRAMED_RE.fullmatch(code) if isinstance(code, str) else None
    if framed:  # a canonical text made elsewhere: process its body again, in its own frame
        timescale, code = framed.group(1), framed.group(2)
    tokens = preprocessed_tokens(code)
    tokens = _plain_escaped_names(tokens)
    for tok in tokens:
        if tok.kind == IDENT and tok.text in REFUSED_KEYWORDS:
            raise Forbidden(f"`{tok.text}` is not allowed in candidate code ({REFUSED_KEYWORDS[tok.text]})")
    names = _definitions(tokens)
    neutralised: list[str] = []
    tokens = _neutralise_and_check_system(tokens, neutralise_output, neutralised)
    _check_query_arguments(tokens)
    prefix = prefix or f"verirl_c{secrets.token_hex(4)}_"
    mapping = {name: prefix + name for name in dict.fromkeys(names) if name != top}
    parameterised = _parameterised(tokens, top)
    only_modules = all(_keyword_before(tokens, idx) for _, idx in lexer.definitions(tokens))
    tokens = _rename(tokens, mapping)
    canonical = header(timescale) + "".join(t.text for t in tokens) + FOOTER
    verify_canonical(canonical)
    lexer.remember_module_names(canonical, [mapping.get(n, n) for n in names])  # tokenized once per completion
    identifiers = frozenset(name for t in tokens if t.kind in (IDENT, ESCAPED)
                            and (name := t.text.strip().lstrip("\\")) and name not in lexer.KEYWORDS)
    result = Sanitized(canonical, top, tuple(names), mapping, tuple(neutralised), timescale, parameterised,
                       identifiers, only_modules)
    _remember(result)
    return result


def preprocessed_tokens(code: str) -> list[Token]:
    """Steps 1-3: the candidate preprocessed, as the compiler's tokens (checked to agree with the preprocessor)."""
    pre = preprocess(normalise_text(code))
    body = pre.text
    bad = _NOT_PRINTABLE_RE.search(body)
    if bad:
        raise Forbidden(f"line {body.count(chr(10), 0, bad.start()) + 1}: character {bad.group()!r} outside "
                        "comments (only printable ASCII is accepted in code and strings)")
    return _check_agreement(lexer.tokenize(body), pre.strings)


def normalise_text(code: str) -> str:
    """CRLF → LF; refuse text that is not valid Unicode, too large, or holds other control characters."""
    if not isinstance(code, str):
        raise Forbidden(f"candidate source must be text, got {type(code).__name__}")
    try:
        size = len(code.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise Forbidden(f"candidate source is not valid Unicode text ({exc.reason} at position {exc.start})") from None
    if size > MAX_SOURCE_BYTES:
        raise Forbidden(f"candidate source is larger than {MAX_SOURCE_BYTES // 1024} KiB")
    code = code.replace("\r\n", "\n")
    bad = _CONTROL_RE.search(code)
    if bad:
        ch = bad.group()
        what = _CONTROL_NAMES.get(ch, "control character")
        raise Forbidden(f"line {code.count(chr(10), 0, bad.start()) + 1}: {what} (U+{ord(ch):04X}) in the "
                        "source; only tab and newline are accepted as control characters")
    return code


def verify_canonical(code: str) -> None:
    """Context-free checks of a finished canonical text (see step 7 of the module docstring)."""
    bad = _NOT_PRINTABLE_RE.search(code)
    if bad:
        raise Forbidden(f"character {bad.group()!r} in the canonical text")
    for m in _DOLLAR_RE.finditer(code):
        if m.group() not in ALLOWED_SYSTEM:
            raise Forbidden(f"system task/function {m.group()} is not allowed in candidate code")
    if "`" in code:
        lines = code.split("\n")
        for i, line in enumerate(lines):
            if "`" not in line:
                continue
            if _KEPT_LINE_RE.fullmatch(line) or (i == 3 and line == _LINE_DIRECTIVE):
                continue
            raise Forbidden(f"compiler directive in {line.strip()!r} is not allowed in candidate code")


def is_canonical(code: str) -> bool:
    """True when ``code`` is a canonical text made by this process (so it needs no second pass)."""
    with _REGISTRY_LOCK:
        return _key(code) in _REGISTRY


def _key(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", errors="surrogatepass")).hexdigest()


def _lookup(code: str, top: str) -> Sanitized | None:
    if not isinstance(code, str) or not code.startswith("`resetall\n"):
        return None
    with _REGISTRY_LOCK:
        known = _REGISTRY.get(_key(code))
        if known is not None:
            _REGISTRY.move_to_end(_key(code))
    return known if known is not None and known.top == top else None


def _remember(result: Sanitized) -> None:
    global _registry_chars
    key = _key(result.code)
    with _REGISTRY_LOCK:
        if key not in _REGISTRY:
            _registry_chars += len(result.code)
        _REGISTRY[key] = result
        while len(_REGISTRY) > _REGISTRY_SIZE or _registry_chars > _REGISTRY_CHARS:
            _, old = _REGISTRY.popitem(last=False)
            _registry_chars -= len(old.code)


def rename_modules(code: str, mapping: dict[str, str]) -> str:
    """Rename module definitions and instantiations in trusted ``code`` (e.g. the reference)."""
    return "".join(t.text for t in _rename(lexer.tokenize(code), mapping))


# ---------------------------------------------------------------------------------------------- steps


def _check_agreement(tokens: list[Token], strings: list[tuple[int, int]]) -> list[Token]:
    """The compiler's tokens of the preprocessed text hold what the preprocessor wrote, nothing more."""
    seen = set(strings)
    for tok in tokens:
        if tok.kind == STRING:
            if (tok.start, tok.end) not in seen:
                raise Forbidden(f"a string literal {tok.text[:40]!r} is read differently by the preprocessor "
                                "and the compiler")
            seen.discard((tok.start, tok.end))
        elif tok.kind == lexer.COMMENT:
            raise Forbidden(f"macro expansion produces a comment {tok.text[:40]!r}; the preprocessor and the "
                            "compiler would disagree on it")
        elif tok.kind == OP and tok.text in ('"', "(*", "*)"):
            raise Forbidden(f"stray {tok.text!r} outside a string or attribute")
        elif tok.kind == DIRECTIVE and not tok.text[1:] in ("timescale", "default_nettype", "resetall"):
            raise Forbidden(f"compiler directive {tok.text} is not allowed in candidate code")
    if seen:
        raise Forbidden("a string literal is read differently by the preprocessor and the compiler")
    return tokens


def _plain_escaped_names(tokens: list[Token]) -> list[Token]:
    """``\\foo`` is the identifier ``foo``: write it plainly (unless ``foo`` is a keyword), so that
    renaming and every check see one spelling of each name."""
    out: list[Token] = []
    for tok in tokens:
        if tok.kind == ESCAPED:
            name = tok.text[1:]
            if _PLAIN_NAME_RE.fullmatch(name) and name not in lexer.KEYWORDS:
                glue = out and out[-1].text and (out[-1].text[-1].isalnum() or out[-1].text[-1] in "_$")
                tok = Token(IDENT, (" " if glue else "") + name, tok.start)
        out.append(tok)
    return out


def _definitions(tokens: list[Token]) -> list[str]:
    names = []
    for name, idx in lexer.definitions(tokens):
        if tokens[idx].kind == ESCAPED:
            raise Forbidden(f"design unit name {name!r} must be a plain identifier")
        names.append(name.strip())
    return names


def _keyword_before(tokens: list[Token], idx: int) -> bool:
    """Whether the definition whose name is at ``idx`` is introduced by ``module``/``macromodule`` (the keyword,
    then optionally a lifetime, then the name, with spaces between)."""
    for tok in reversed(tokens[:idx]):
        if not tok.significant or tok.text in ("automatic", "static"):
            continue
        return tok.text in ("module", "macromodule")
    return False


def _parameterised(tokens: list[Token], top: str) -> bool:
    """Whether ``top`` declares parameters (or the candidate uses ``defparam``): conservative."""
    sig = [t for t in tokens if t.significant]
    inside = False
    for i, tok in enumerate(sig):
        if tok.kind != IDENT:
            continue
        if tok.text == "defparam":
            return True
        if tok.text in lexer.DEFINITION_KEYWORDS and i + 1 < len(sig) and sig[i + 1].text.strip() == top:
            inside = True
            if i + 2 < len(sig) and sig[i + 2].text == "#":
                return True
        elif inside and tok.text == "parameter":
            return True
        elif inside and tok.text in ("endmodule", "endinterface", "endprogram"):
            inside = False
    return False


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
                    out.append(Token(IDENT, "begin end", tok.start))
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
        elif tokens[j].kind == SYSTEM and tokens[j].text not in ALLOWED_SYSTEM | _INSIDE_NEUTRALISED:
            return None  # a forbidden call hidden in the arguments: refuse the whole thing
        j += 1
    return None


def _check_query_arguments(tokens: list[Token]) -> None:
    for i, tok in enumerate(tokens):
        if tok.kind != SYSTEM or tok.text not in QUERY_FUNCTIONS:
            continue
        j = _skip_space(tokens, i + 1)
        if j >= len(tokens) or tokens[j].text != "(":
            continue
        depth = 0
        while j < len(tokens):
            text = tokens[j].text
            if text == "(":
                depth += 1
            elif text == ")":
                depth -= 1
                if depth == 0:
                    break
            elif text in (".", "::") and tokens[j].kind == OP:
                raise Forbidden(f"{tok.text} of a dotted or scoped name is not allowed (Icarus reads an "
                                "unresolvable name there as 0 instead of failing)")
            j += 1


def _skip_space(tokens: list[Token], j: int) -> int:
    while j < len(tokens) and not tokens[j].significant:
        j += 1
    return j


_BLOCK_KEYWORDS = frozenset({"begin", "end", "fork", "join", "join_any", "join_none"})


def _rename(tokens: list[Token], mapping: dict[str, str]) -> list[Token]:
    """Rename definitions, instantiations, ``name::`` scopes and end labels of the names in ``mapping``."""
    if not mapping:
        return tokens
    sig = lexer.significant(tokens)
    out = list(tokens)
    for pos, idx in enumerate(sig):
        tok = tokens[idx]
        name = tok.text.strip() if tok.kind == IDENT else None
        if name not in mapping:
            continue
        prev = tokens[sig[pos - 1]].text if pos > 0 else ""
        prev2 = tokens[sig[pos - 2]].text if pos > 1 else ""
        nxt_tok = tokens[sig[pos + 1]] if pos + 1 < len(sig) else None
        is_definition = prev in lexer.DEFINITION_KEYWORDS or (
            prev in ("automatic", "static") and prev2 in lexer.DEFINITION_KEYWORDS
        )
        is_end_label = prev == ":" and prev2 in lexer._END_KEYWORDS
        is_block_label = prev == ":" and prev2 in _BLOCK_KEYWORDS  # `begin : helper`, `end : helper`
        is_instance = nxt_tok is not None and prev != "." and not is_block_label and (
            nxt_tok.text == "#" or (nxt_tok.kind in (IDENT, ESCAPED) and nxt_tok.text not in lexer.KEYWORDS))
        is_scope = nxt_tok is not None and nxt_tok.text == "::"
        if is_definition or is_end_label or is_instance or is_scope:
            out[idx] = Token(IDENT, tok.text.replace(name, mapping[name]), tok.start)
    return out


__all__ = ["ALLOWED_SYSTEM", "NEUTRALISED_SYSTEM", "Forbidden", "Sanitized", "header", "is_canonical",
           "normalise_text", "preprocessed_tokens", "rename_modules", "sanitize_candidate", "verify_canonical"]
