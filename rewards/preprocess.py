"""The preprocessor of candidate text, faithful to Icarus Verilog 11's ``ivlpp``.

:func:`preprocess` runs the candidate's own compiler directives in Python, in-process, with
nothing from the testbench or the reference visible, and returns text the compiler reads without
any preprocessing left to do: macros expanded, ```ifdef`` branches resolved, comments and
attributes removed (each replaced by the line ends it held, or one space), the directives that
stay (```timescale``, ```default_nettype``, ```resetall``) rewritten on lines of their own.

It follows ivlpp's rules, quirks included (a ```define`` body loses everything from its first
``//``, even inside a string; macro arguments nest ``(`` and ``{`` but not ``[``; in a false
```ifdef`` branch only comments and ```ifdef``/```else``/```endif`` words are recognised, so a
```endif`` inside a string ends the branch). Where following ivlpp would let the preprocessor and
the compiler disagree, or where a construct has no use in a design, the candidate is refused with
:class:`rewards.errors.Forbidden`: ```include``, ```line``, ```pragma``, ```begin_keywords``,
```unconnected_drive`` and every other directive not listed above; undefined macros (ivlpp would
silently expand them to nothing); token pasting and stringification; redefinitions; directives
inside macro expansions; strings, comments or attributes that do not end where they start;
escaped identifiers containing characters the preprocessor reads differently from the compiler.

``tests/rewards/test_adversarial_lexer.py`` compares this preprocessor with ``iverilog -E`` on
random inputs.
"""

from __future__ import annotations

import dataclasses
import re

from .errors import Forbidden

#: The file name ```__FILE__`` expands to (the candidate is always compiled under this name).
FILE_NAME = "candidate.v"

#: Macros Icarus' driver defines before it reads a file.
PREDEFINED = {"__ICARUS__": "1"}

#: Directive names ivlpp passes on to the compiler (``ivlpp/main.c``); they count as defined.
KEYWORD_MACROS = frozenset({
    "begin_keywords", "celldefine", "default_nettype", "end_keywords", "endcelldefine", "line",
    "nounconnected_drive", "pragma", "resetall", "timescale", "unconnected_drive", "default_decay_time",
    "default_trireg_strength", "delay_mode_distributed", "delay_mode_path", "delay_mode_unit", "delay_mode_zero",
    "disable_portfaults", "enable_portfaults", "endprotect", "nosuppress_faults", "protect", "suppress_faults",
    "uselib",
})

#: Directives a candidate may write (see docs/rewards.md for why each is allowed).
ALLOWED_DIRECTIVES = frozenset({
    "define", "undef", "ifdef", "ifndef", "elsif", "else", "endif", "timescale", "default_nettype", "resetall",
    "celldefine", "endcelldefine", "__FILE__", "__LINE__",
})

_MAGIC = frozenset({"__FILE__", "__LINE__"})
_PP_KEYWORDS = ("include", "define", "undef", "ifdef", "ifndef", "else", "elseif", "endif")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_W = re.compile(r"[ \t]+")
_TIME_UNIT = r"(1|10|100)[ \t]*(s|ms|us|ns|ps|fs)"
_TIMESCALE_ARGS = re.compile(rf"[ \t]*{_TIME_UNIT}[ \t]*/[ \t]*{_TIME_UNIT}[ \t]*")
_NETTYPES = ("wire", "tri", "tri0", "tri1", "wand", "triand", "wor", "trior", "trireg", "uwire", "none")
_NETTYPE_ARGS = re.compile(r"[ \t]*(" + "|".join(_NETTYPES) + r")[ \t]*")
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$")
MAX_EXPANSION_DEPTH = 64
MAX_EXPANSIONS = 20_000
MAX_OUTPUT_CHARS = 512 * 1024

# states of the conditional stack (ivlpp's IFDEF_TRUE / IFDEF_FALSE / IFDEF_SUPR)
_TRUE, _FALSE, _SUPR = "true", "false", "supr"


@dataclasses.dataclass
class _Macro:
    params: list[str]  # empty for an object-like macro
    defaults: list[str | None]
    body: list[str | int]  # text pieces and parameter indices
    function_like: bool


@dataclasses.dataclass
class Preprocessed:
    """The candidate with every preprocessor directive executed."""

    text: str
    """Directive-free text (but the kept directives, on lines of their own)."""
    strings: list[tuple[int, int]]
    """Spans of the string literals in ``text``, as the preprocessor delimited them."""
    directives: list[str]
    """The directives kept in ``text``, normalised (```timescale 1ns/1ps``...)."""
    macros_used: int


class _Frame:
    __slots__ = ("is_file", "pos", "text")

    def __init__(self, text: str, is_file: bool):
        self.text = text
        self.pos = 0
        self.is_file = is_file


class _Preprocessor:
    def __init__(self, source: str):
        self.macros: dict[str, _Macro] = {
            name: _Macro([], [], [value], False) for name, value in PREDEFINED.items()}
        self.file = _Frame(source, True)
        self.frames: list[_Frame] = [self.file]
        self.line = 1  # line of the file being read (ivlpp's istack->lineno + 1)
        self.cond: list[str] = []
        self.out: list[str] = []
        self.out_len = 0
        self.strings: list[tuple[int, int]] = []
        self.directives: list[str] = []
        self.expansions = 0

    # ------------------------------------------------------------------ output
    def emit(self, text: str) -> None:
        if not text:
            return
        self.out.append(text)
        self.out_len += len(text)
        if self.out_len > MAX_OUTPUT_CHARS:
            raise Forbidden(f"the candidate expands to more than {MAX_OUTPUT_CHARS // 1024} KiB of text "
                            "(runaway macro expansion)")

    def comment(self) -> None:
        """A comment is about to be dropped. ivlpp writes comments out, so right after a ``/`` it would make
        ``//`` or ``//*``: a line comment to the compiler, hiding what follows. Refuse that."""
        if self.out and self.out[-1].endswith("/"):
            raise Forbidden(f"line {self.line}: a comment right after a '/' written by a macro")

    def newline(self, frame: _Frame) -> None:
        if frame.is_file:
            self.line += 1
        self.emit("\n")

    def at_line_start(self, frame: _Frame, pos: int) -> bool:
        """Only blanks before ``pos`` on its line of the file (a directive the compiler reads must be there)."""
        if not frame.is_file or len(self.frames) != 1:
            return False
        start = frame.text.rfind("\n", 0, pos) + 1
        return frame.text[start:pos].strip(" \t") == ""

    # ------------------------------------------------------------------ driver
    def run(self) -> Preprocessed:
        while self.frames:
            frame = self.frames[-1]
            if frame.pos >= len(frame.text):
                self.frames.pop()
                continue
            if self.cond and self.cond[-1] != _TRUE:
                self.skip(frame)
            else:
                self.active(frame)
        if self.cond:
            raise Forbidden("an `ifdef/`ifndef has no matching `endif")
        return Preprocessed("".join(self.out), self.strings, self.directives, self.expansions)

    # ------------------------------------------------------------------ active text (INITIAL / IFDEF_TRUE)
    def active(self, frame: _Frame) -> None:
        text, pos = frame.text, frame.pos
        c = text[pos]
        if c == "\n":
            frame.pos = pos + 1
            self.newline(frame)
        elif (text.startswith("//", pos) or text.startswith("/*", pos)) and not frame.is_file:
            # ivlpp would write it out, and the compiler could read it as a comment with the text after it
            raise Forbidden(f"line {self.line}: a macro expansion produces a comment")
        elif text.startswith("//", pos):
            self.comment()
            end = text.find("\n", pos)
            frame.pos = len(text) if end < 0 else end
            self.emit(" ")
        elif text.startswith("/*", pos):
            end = text.find("*/", pos + 2)
            if end < 0:
                raise Forbidden(f"line {self.line}: a /* comment is not closed"
                                + ("" if frame.is_file else " inside a macro expansion"))
            self.comment()
            self.blank(frame, pos, end + 2)
        elif text.startswith("(*", pos):
            m = re.compile(r"\(\*[ \t]*\)").match(text, pos)
            if m:  # `(*)` and `(* )` are the operator of `@(*)`, not an attribute
                frame.pos = m.end()
                self.emit(m.group())
                return
            end = text.find("*)", pos + 2)
            if end < 0:
                raise Forbidden(f"line {self.line}: an attribute (* is not closed")
            body = text[pos + 2:end]
            if "`" in body:
                raise Forbidden(f"line {self.line}: macros inside an attribute (* *) are not allowed")
            if body.count('"') % 2:
                raise Forbidden(f"line {self.line}: an attribute (* *) holds an unterminated string or a "
                                "string containing *)")
            self.blank(frame, pos, end + 2)  # attributes are dropped: they change synthesis, not simulation
        elif c == '"':
            self.string(frame, pos)
        elif c == "\\":
            m = re.compile(r"\\[^ \t\n]+").match(text, pos)
            ident = m.group() if m else "\\"
            if any(s in ident for s in ("//", "/*", "(*", '"', "`")):
                raise Forbidden(f"line {self.line}: escaped identifier {ident!r} contains characters the "
                                "preprocessor and the compiler read differently")
            frame.pos = pos + len(ident)
            self.emit(ident)
        elif c == "`":
            self.directive(frame, pos)
        else:
            m = _PLAIN.match(text, pos)
            end = m.end() if m and m.end() > pos else pos + 1
            frame.pos = end
            chunk = text[pos:end]
            if frame.is_file:
                self.line += chunk.count("\n")
            self.emit(chunk)

    def blank(self, frame: _Frame, start: int, end: int) -> None:
        """Replace ``text[start:end]`` (a comment or attribute) by the line ends it held, or one space."""
        lines = frame.text.count("\n", start, end)
        frame.pos = end
        if lines:
            for _ in range(lines):
                self.newline(frame)
        else:
            self.emit(" ")

    def string(self, frame: _Frame, pos: int) -> None:
        text = frame.text
        i = pos + 1
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text) and text[i + 1] in '\\"`':
                i += 2
            elif ch == '"':
                start = self.out_len
                frame.pos = i + 1
                self.emit(text[pos:i + 1])
                self.strings.append((start, self.out_len))
                return
            elif ch == "\n":
                break
            else:
                i += 1
        raise Forbidden(f"line {self.line}: a string is not closed on its line")

    # ------------------------------------------------------------------ directives and macros
    def directive(self, frame: _Frame, pos: int) -> None:
        text = frame.text
        m = _NAME.match(text, pos + 1)
        if not m:
            nxt = text[pos + 1:pos + 2]
            what = {"`": "token pasting (``)", '"': "macro stringification (`\")"}.get(nxt, "a lone `")
            raise Forbidden(f"line {self.line}: {what} is not allowed in candidate code")
        name = m.group()
        after = m.end()
        if name in ("ifdef", "ifndef", "elsif"):
            w = _W.match(text, after)
            if not w:
                raise Forbidden(f"line {self.line}: `{name} without a macro name")
            self.no_expansion(frame, name)
            n = _NAME.match(text, w.end())
            if not n:
                raise Forbidden(f"line {self.line}: `{name} without a macro name")
            frame.pos = n.end()
            if name == "elsif":
                if not self.cond:
                    raise Forbidden(f"line {self.line}: `elsif without a matching `ifdef")
                self.cond[-1] = _SUPR  # we were in a true branch: everything after it is suppressed
            else:
                defined = self.is_defined(n.group())
                self.cond.append(_TRUE if defined == (name == "ifdef") else _FALSE)
            return
        if name in ("else", "endif"):
            self.no_expansion(frame, name)
            if not self.cond:
                raise Forbidden(f"line {self.line}: `{name} without a matching `ifdef")
            frame.pos = after
            if name == "else":
                self.cond[-1] = _SUPR
            else:
                self.cond.pop()
            return
        if name == "define":
            w = _W.match(text, after)
            if not w:
                raise Forbidden(f"line {self.line}: malformed `define")
            self.no_expansion(frame, name)
            self.define(frame, w.end())
            return
        if name == "undef":
            w = _W.match(text, after)
            n = _NAME.match(text, w.end()) if w else None
            if not n:
                raise Forbidden(f"line {self.line}: malformed `undef")
            self.no_expansion(frame, name)
            if n.group() in KEYWORD_MACROS or n.group() in _MAGIC or n.group() in PREDEFINED:
                raise Forbidden(f"line {self.line}: `undef of the built-in macro {n.group()}")
            self.macros.pop(n.group(), None)
            end = text.find("\n", n.end())  # ivlpp drops the rest of the line
            frame.pos = len(text) if end < 0 else end
            return
        if name in _PP_KEYWORDS:
            raise Forbidden(f"line {self.line}: `{name} is not allowed in candidate code"
                            + (" (it would read host files)" if name == "include" else ""))
        frame.pos = after
        if name in KEYWORD_MACROS:
            self.kept_directive(frame, pos, name)
        elif name in _MAGIC:  # expanded text is read again, as ivlpp does: `__FILE__ becomes a string
            self.push(str(self.line) if name == "__LINE__" else f'"{FILE_NAME}"')
        elif name in self.macros:
            self.use_macro(frame, name)
        else:
            raise Forbidden(f"line {self.line}: macro `{name} is not defined in the candidate "
                            "(nothing from the testbench is visible)")

    def no_expansion(self, frame: _Frame, name: str) -> None:
        if not frame.is_file:
            raise Forbidden(f"line {self.line}: `{name} inside a macro expansion is not allowed")

    def is_defined(self, name: str) -> bool:
        return name in self.macros or name in KEYWORD_MACROS or (name.startswith("__") and name in _MAGIC)

    def kept_directive(self, frame: _Frame, pos: int, name: str) -> None:
        if name not in ALLOWED_DIRECTIVES:
            raise Forbidden(f"line {self.line}: compiler directive `{name} is not allowed in candidate code")
        if not self.at_line_start(frame, pos):
            raise Forbidden(f"line {self.line}: `{name} must start a line of its own")
        text = frame.text
        end = text.find("\n", frame.pos)
        end = len(text) if end < 0 else end
        rest = text[frame.pos:end]
        cut = rest.find("//")
        if cut >= 0:
            rest = rest[:cut]
        if "`" in rest or "/*" in rest:
            raise Forbidden(f"line {self.line}: `{name} arguments may hold no macro or /* comment")
        if name == "timescale":
            m = _TIMESCALE_ARGS.fullmatch(rest)
            if not m:
                raise Forbidden(f"line {self.line}: malformed `timescale{rest}")
            line = f"`timescale {m.group(1)}{m.group(2)}/{m.group(3)}{m.group(4)}"
        elif name == "default_nettype":
            m = _NETTYPE_ARGS.fullmatch(rest)
            if not m:
                raise Forbidden(f"line {self.line}: malformed `default_nettype{rest}")
            line = f"`default_nettype {m.group(1)}"
        else:
            if rest.strip(" \t"):
                raise Forbidden(f"line {self.line}: `{name} takes no arguments")
            if name in ("celldefine", "endcelldefine"):  # cell marks change nothing we check: dropped
                frame.pos = end
                return
            line = f"`{name}"
        frame.pos = end
        self.directives.append(line)
        self.emit(line)

    def define(self, frame: _Frame, pos: int) -> None:
        text = frame.text
        n = _NAME.match(text, pos)
        if not n:
            raise Forbidden(f"line {self.line}: malformed `define")
        name = n.group()
        if name in _PP_KEYWORDS:
            raise Forbidden(f"line {self.line}: a macro cannot be named `{name}")
        if name in self.macros or name in KEYWORD_MACROS or name in _MAGIC:
            raise Forbidden(f"line {self.line}: redefinition of macro `{name} (undefine it first)")
        i = n.end()
        params: list[str] = []
        defaults: list[str | None] = []
        function_like = i < len(text) and text[i] == "("
        if function_like:
            i += 1
            while True:
                w = _W.match(text, i)
                i = w.end() if w else i
                p = _NAME.match(text, i)
                if not p:
                    raise Forbidden(f"line {self.line}: malformed parameter list of macro `{name}")
                i = p.end()
                w = _W.match(text, i)
                i = w.end() if w else i
                default = None
                if i < len(text) and text[i] == "=":
                    j = i + 1
                    while j < len(text) and text[j] not in ",)":
                        j += 1
                    default = text[i + 1:j].strip(" \t")
                    if "\n" in default or "`" in default:
                        raise Forbidden(f"line {self.line}: default of macro parameter {p.group()} must be "
                                        "plain text on the `define line")
                    i = j
                params.append(p.group())
                defaults.append(default)
                if i < len(text) and text[i] == ",":
                    i += 1
                    continue
                if i < len(text) and text[i] == ")":
                    i += 1
                    break
                raise Forbidden(f"line {self.line}: malformed parameter list of macro `{name}")
        w = _W.match(text, i)
        i = w.end() if w else i
        # the body: rest of the line, continued while a line ends with a backslash (ivlpp's do_define)
        body = ""
        while True:
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            chunk, more = _define_chunk(text[i:end], self.line)
            body += chunk
            i = end
            if not more or end >= len(text):
                break
            i = end + 1
            self.newline(frame)  # ivlpp keeps one output line per source line of the define
        frame.pos = i
        self.macros[name] = _Macro(params, defaults, _split_body(body, params), function_like)

    def use_macro(self, frame: _Frame, name: str) -> None:
        macro = self.macros[name]
        self.expansions += 1
        if self.expansions > MAX_EXPANSIONS:
            raise Forbidden(f"more than {MAX_EXPANSIONS} macro expansions (runaway macro expansion)")
        if len(self.frames) > MAX_EXPANSION_DEPTH:
            raise Forbidden(f"macro `{name} expands more than {MAX_EXPANSION_DEPTH} levels deep")
        if not macro.function_like:
            self.push("".join(p for p in macro.body if isinstance(p, str)))
            return
        args = self.collect_args(frame, name)
        if len(args) > len(macro.params):
            raise Forbidden(f"line {self.line}: too many arguments for macro `{name}")
        while len(args) < len(macro.params):
            if macro.defaults[len(args)] is None:
                raise Forbidden(f"line {self.line}: too few arguments for macro `{name}")
            args.append("")
        values = [a if a or macro.defaults[k] is None else macro.defaults[k] for k, a in enumerate(args)]
        self.push("".join(values[p] if isinstance(p, int) else p for p in macro.body))

    def push(self, text: str) -> None:
        if text:
            self.frames.append(_Frame(text, False))

    def collect_args(self, frame: _Frame, name: str) -> list[str]:
        """ivlpp's MA_START/MA_ADD states: the argument list of a function-like macro use."""
        text = frame.text
        i = frame.pos
        while i < len(text) and text[i] in " \t\n":
            if text[i] == "\n":
                self.newline(frame)
            i += 1
        if i >= len(text) or text[i] != "(":
            raise Forbidden(f"line {self.line}: missing argument list for macro `{name}")
        i += 1
        args: list[str] = []
        cur: list[str] = []
        level = 0
        while True:
            if i >= len(text):
                raise Forbidden(f"line {self.line}: argument list of macro `{name} is not closed"
                                + ("" if frame.is_file else " inside its expansion"))
            c = text[i]
            if c == '"':
                end = i + 1
                while end < len(text) and text[end] not in '"\n':
                    end += 1
                if end >= len(text) or text[end] != '"':
                    raise Forbidden(f"line {self.line}: unterminated string in the arguments of `{name}")
                cur.append(text[i:end + 1])
                i = end + 1
            elif c == "'" and i + 2 < len(text) and text[i + 1] != "\n" and text[i + 2] == "'":
                cur.append(text[i:i + 3])
                i += 3
            elif c in " \t":
                while i < len(text) and text[i] in " \t":
                    i += 1
                cur.append(" ")
            elif c == "\n":
                i += 1
                while i < len(text) and text[i] in " \t":
                    i += 1
                cur.append(" ")
                self.newline(frame)
            elif text.startswith("//", i):  # ivlpp writes comments out where they stand, before the expansion
                self.comment()
                end = text.find("\n", i)
                i = len(text) if end < 0 else end
                self.emit(" ")
            elif text.startswith("/*", i):
                end = text.find("*/", i + 2)
                if end < 0:
                    raise Forbidden(f"line {self.line}: a /* comment is not closed")
                self.comment()
                lines = text.count("\n", i, end)
                for _ in range(lines):
                    self.newline(frame)
                if not lines:
                    self.emit(" ")
                i = end + 2
            elif c in "({":
                level += 1
                cur.append(c)
                i += 1
            elif c == "," and level == 0:
                args.append(_trim_arg(cur))
                cur = []
                i += 1
            elif c in ")}":
                i += 1
                if level > 0:
                    level -= 1
                    cur.append(c)
                else:
                    args.append(_trim_arg(cur))
                    frame.pos = i
                    return args
            else:
                cur.append(c)
                i += 1

    # ------------------------------------------------------------------ false branches (IFDEF_FALSE / IFDEF_SUPR)
    def skip(self, frame: _Frame) -> None:
        """Skip text the way ivlpp does in a false branch: only comments and conditional words count."""
        if not frame.is_file:
            raise Forbidden(f"line {self.line}: a macro expansion inside a false `ifdef branch")
        text, pos = frame.text, frame.pos
        c = text[pos]
        if c == "\n":
            frame.pos = pos + 1
            self.newline(frame)
            return
        if text.startswith("//", pos):
            end = text.find("\n", pos)
            frame.pos = len(text) if end < 0 else end
            return
        if text.startswith("/*", pos):
            end = text.find("*/", pos + 2)
            if end < 0:
                raise Forbidden(f"line {self.line}: a /* comment is not closed")
            for _ in range(text.count("\n", pos, end)):
                self.newline(frame)
            frame.pos = end + 2
            return
        if c == "`":
            for word in ("ifdef", "ifndef", "elsif"):
                if text.startswith(word, pos + 1):
                    w = _W.match(text, pos + 1 + len(word))
                    if w:
                        if word == "elsif":
                            n = _NAME.match(text, w.end())
                            if not n:
                                raise Forbidden(f"line {self.line}: `elsif without a macro name")
                            frame.pos = n.end()
                            if self.cond[-1] == _FALSE and self.is_defined(n.group()):
                                self.cond[-1] = _TRUE
                        else:
                            frame.pos = w.end()
                            self.cond.append(_SUPR)
                        return
            if text.startswith("else", pos + 1):
                frame.pos = pos + 5
                if self.cond[-1] == _FALSE:
                    self.cond[-1] = _TRUE
                return
            if text.startswith("endif", pos + 1):
                frame.pos = pos + 6
                self.cond.pop()
                return
        m = _SKIP_PLAIN.match(text, pos)
        frame.pos = m.end() if m and m.end() > pos else pos + 1


#: Runs of characters with no meaning to the preprocessor (in active text, line ends included; in skipped text).
_PLAIN = re.compile(r"(?:[^/(\"\\`]|/(?![/*])|\((?!\*))+")
_SKIP_PLAIN = re.compile(r"(?:[^\n/`]|/(?![/*]))+")


def _define_chunk(line: str, lineno: int) -> tuple[str, bool]:
    """One source line of a ```define`` body, processed as ivlpp's ``do_define``: comments cut (naively,
    strings are not recognised), trailing blanks trimmed, a final backslash turned into a line end."""
    i = line.find("/")
    while 0 <= i < len(line):
        if line.startswith("//", i):
            line = line[:i]
            break
        if line.startswith("/*", i):
            end = line.find("*/", i + 2)
            if end < 0:
                raise Forbidden(f"line {lineno}: unterminated /* comment in a `define")
            line = line[:i] + line[end + 2:]
            continue
        i = line.find("/", i + 1)
    line = line.rstrip(" \t")
    if line.endswith("\\"):
        return line[:-1].rstrip(" \t") + "\n", True
    return line, False


def _split_body(body: str, params: list[str]) -> list[str | int]:
    """The body as text pieces and parameter indices (whole-word, textual matches, as ivlpp's find_arg)."""
    if not params:
        return [body]
    pieces: list[str | int] = []
    i = start = 0
    while i < len(body):
        if body[i] in _ID_CHARS and (i == 0 or body[i - 1] not in _ID_CHARS):
            j = i
            while j < len(body) and body[j] in _ID_CHARS:
                j += 1
            word = body[i:j]
            # ivlpp replaces the formal parameters in order; a word matching several is the first one
            if word in params:
                pieces.append(body[start:i])
                pieces.append(params.index(word))
                start = j
            i = j
        else:
            i += 1
    pieces.append(body[start:])
    return [p for p in pieces if p != ""]


def _trim_arg(parts: list[str]) -> str:
    return "".join(parts).removeprefix(" ").removesuffix(" ")


def preprocess(source: str) -> Preprocessed:
    """Run the candidate's directives (see the module docstring); raises :class:`Forbidden`."""
    return _Preprocessor(source).run()
