"""Split one Verilog/SystemVerilog file into design units, as the compiler sees them.

The ``pyslang`` front end preprocesses and parses the file with the source's settings (include
directories, predefined macros, language version). Each ``module`` / ``interface`` / ``package``
/ ``primitive`` declaration becomes a :class:`DesignUnit` whose ``text`` is printed back from the
token stream, so that it is exactly what the compiler parsed:

* branches of `` `ifdef``/`` `ifndef``/`` `elsif``/`` `else`` that are inactive under the build's
  macros are left out, and the conditional directives themselves too (a `` `FORMAL`` block with
  ``$past`` never reaches the reward engine; `` `ifdef PLUS`` keeps the branch the build saw);
* `` `include`` directives are replaced by the text they include (the reward engine refuses
  `` `include``: a task must stand alone);
* macro uses stay as written (readable code), and every macro they need — transitively, as
  defined at the unit's position in the file, including macros from included files and from the
  source's ``defines`` — is listed in ``macros`` with its definition text, so the reference
  carries the definitions the build saw and nothing else;
* text lexed with Verilog-2005 keywords (``language: verilog2005``, an ``auto`` ``.v`` file that only
  parses that way, or a `` `begin_keywords "1364-2005"`` region) may use SystemVerilog keywords
  (``logic``, ``bit``, ``do``...) as names: those identifiers are renamed (``logic_kw``), so the
  reference compiles under the SystemVerilog tools of the reward engine (Icarus ``-g2012``, Yosys
  ``-sv``, which knows no `` `begin_keywords``) with the same meaning.

Text is handled as characters end to end: the parser's byte offsets are never used to slice
text, so multi-byte UTF-8 comments or identifiers cannot shift a module boundary.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re

logger = logging.getLogger(__name__)

LANGUAGES = ("auto", "verilog2005", "sv")
#: file extensions read as SystemVerilog by ``language: auto``
SV_EXTENSIONS = (".sv", ".svh")

#: SystemVerilog (IEEE 1800-2017) keywords that are plain identifiers in Verilog-2005
SV_ONLY_KEYWORDS = frozenset("""
    accept_on alias always_comb always_ff always_latch assert assume before bind bins binsof bit
    break byte chandle checker class clocking const constraint context continue cover covergroup
    coverpoint cross dist do endchecker endclass endclocking endgroup endinterface endpackage
    endprogram endproperty endsequence enum eventually expect export extends extern final
    first_match foreach forkjoin global iff ignore_bins illegal_bins implements implies import
    inside int interconnect interface intersect join_any join_none let local logic longint matches
    modport nettype new nexttime null package packed priority program property protected pure rand
    randc randcase randsequence ref reject_on restrict return s_always s_eventually s_nexttime
    s_until s_until_with sequence shortint shortreal soft solve static string strong struct super
    sync_accept_on sync_reject_on tagged this throughout timeprecision timeunit type typedef union
    unique unique0 until until_with untyped var virtual void wait_order weak wildcard with within
""".split())  # noqa: SIM905 - a word list reads better as text
KEYWORD_SUFFIX = "_kw"

_FORMAL_ATTRIBUTES = frozenset({"anyseq", "anyconst", "allseq", "allconst"})
_FORMAL_CALLS = frozenset({"$anyseq", "$anyconst", "$allseq", "$allconst"})
_TESTBENCH_CALLS = frozenset({"$finish", "$stop", "$dumpfile", "$dumpvars", "$monitor"})
_MACRO_REF = re.compile(r"`([A-Za-z_][A-Za-z0-9_$]*)")
_UNIT_KINDS = {"ModuleDeclaration": "module", "InterfaceDeclaration": "interface", "PackageDeclaration": "package",
               "UdpDeclaration": "primitive", "ProgramDeclaration": "program"}


@dataclasses.dataclass(frozen=True)
class ParseSettings:
    """How the files of one source are preprocessed and parsed."""

    include_dirs: tuple[str, ...] = ()
    root: str = ""
    """The source folder: `include may read files below it and below ``include_dirs``, nowhere else."""
    defines: tuple[tuple[str, str], ...] = ()
    """``(name, value)`` macros defined before every file (``value`` may be empty)."""
    language: str = "auto"
    expand_macros: bool = True
    """Replace macro uses by their expansion (``False``: keep the uses, carry the definitions)."""

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise ValueError(f"language must be one of {LANGUAGES}, got {self.language!r}")


@dataclasses.dataclass
class DesignUnit:
    """One declaration of a file: its text as compiled, and what it needs."""

    name: str
    kind: str
    """``module``, ``interface``, ``package``, ``primitive`` or ``program``."""
    text: str
    macros: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    """``(name, definition text)`` of every macro ``text`` uses (transitively), in definition order."""
    instances: list[tuple[str, bool]] = dataclasses.field(default_factory=list)
    """``(type name, conditional)``: instantiated units; ``conditional`` when only inside generate if/case."""
    packages: list[str] = dataclasses.field(default_factory=list)
    ports: int = 0
    line: int = 0
    parse_error: str | None = None
    language: str = "sv"
    formal: bool = False
    """Uses formal-only constructs (``(* anyseq *)``, ``$anyconst``, ``assume``): a proof harness."""
    testbench: bool = False
    """Has no ports and drives itself (``initial``, ``$finish``): a testbench."""
    string_parameters: dict[str, str] = dataclasses.field(default_factory=dict)
    """Declared default text of parameters initialised with a string literal (``"ABC"``)."""
    integer_parameters: list[tuple[str, int, int, int]] = dataclasses.field(default_factory=list)
    """``(name, default, start, end)`` of overridable parameters whose default is a plain decimal
    literal; ``text[start:end]`` is that literal (parameter variants rewrite it)."""

    def with_parameter(self, name: str, value: int) -> DesignUnit:
        """This unit with the default of parameter ``name`` set to ``value`` (see ``integer_parameters``)."""
        for pname, _, start, end in self.integer_parameters:
            if pname == name:
                new = str(value)
                shift = len(new) - (end - start)
                params = []
                for n, v, s, e in self.integer_parameters:
                    if n == name:
                        params.append((n, value, start, start + len(new)))
                    else:
                        params.append((n, v, s + shift, e + shift) if s > start else (n, v, s, e))
                return dataclasses.replace(self, text=self.text[:start] + new + self.text[end:],
                                           integer_parameters=params)
        raise KeyError(name)

    def prelude(self) -> str:
        return "".join(text for _, text in self.macros)


def parse_file(text: str, path: str, settings: ParseSettings, display: str | None = None, *,
               local_includes: bool = True, names_only: bool = False) -> list[DesignUnit]:
    """Design units of one file. ``path`` locates relative includes (with ``local_includes``: the
    file's own folder is searched first, as compilers do); ``display`` names it in messages.
    ``names_only``: units with their name and kind only (no text): the cheap pass of a folder index."""
    display = display or path
    language = settings.language
    if language == "auto":
        language = "sv" if path.lower().endswith(SV_EXTENSIONS) else "auto-v"
    if language in ("sv", "auto-v"):
        units, n_errors = _parse(text, path, settings, display, "sv", local_includes, names_only)
        if language == "sv" or n_errors == 0:
            return units
        # a .v file that is not valid SystemVerilog: Verilog-2005 keywords (e.g. `logic` as a name)?
        units_2005, errors_2005 = _parse(text, path, settings, display, "verilog2005", local_includes, names_only)
        return units_2005 if errors_2005 == 0 else units
    return _parse(text, path, settings, display, "verilog2005", local_includes, names_only)[0]


def _parse(text: str, path: str, settings: ParseSettings, display: str, language: str,
           local_includes: bool, names_only: bool = False) -> tuple[list, int]:
    import pyslang
    from pyslang import parsing, syntax

    versions = pyslang.LanguageVersion
    version = versions.v1364_2005 if language == "verilog2005" else versions.v1800_2017
    options = []
    for cls in (parsing.PreprocessorOptions, parsing.LexerOptions, parsing.ParserOptions):
        opt = cls()
        opt.languageVersion = version
        options.append(opt)
    pre = options[0]
    local = [os.path.dirname(os.path.abspath(path))] if local_includes else []
    pre.additionalIncludePaths = [*local, *settings.include_dirs]
    pre.predefines = [f"{name}={value}" if value != "" else name for name, value in settings.defines]
    # a private source manager per file: the default one keeps every buffer it ever saw (a leak
    # of about 2 KiB per module over a streamed corpus); kept referenced while the tree is used
    sm = pyslang.SourceManager()
    if not local_includes:
        sm.setDisableLocalIncludes(True)
    tree = syntax.SyntaxTree.fromText(text, sm, os.path.basename(path), os.path.abspath(path),
                                      pyslang.Bag(options))
    errors = _errors(tree, sm, display)
    root = tree.root
    members = list(root.members) if root.kind == syntax.SyntaxKind.CompilationUnit else [root]
    if names_only:
        named = []
        for member in members:
            kind = _UNIT_KINDS.get(member.kind.name)
            name_tok = getattr(getattr(member, "header", None), "name", None)
            if kind is None or name_tok is None or not _name(name_tok):
                continue
            name = _name(name_tok)
            if name_tok.kind == parsing.TokenKind.Identifier and name in SV_ONLY_KEYWORDS:
                name += KEYWORD_SUFFIX
            named.append(DesignUnit(name=name, kind=kind, text=""))
        return named, len(errors)
    walker = _Walker(sm, expand=settings.expand_macros)
    walker.env.update((name, f"`define {name} {value}".rstrip() + "\n") for name, value in settings.defines)
    escaped = _includes_outside(tree, sm, settings, path if local_includes else None)
    if escaped:
        message = (f"{display}: `include of {escaped}, outside the source folder and its include_dirs "
                   "(not read into a task)")
        errors.append((None, -1, message))
    units: list[DesignUnit] = []
    main_buffer = None
    previous_end = -1
    for member in members:
        kind = _UNIT_KINDS.get(member.kind.name)
        if kind is None:
            walker.skip(member)  # still track its `define / `undef directives
            continue
        rng = member.sourceRange
        main_buffer = main_buffer if main_buffer is not None else rng.start.buffer
        unit = walker.unit(member, kind)
        if unit is None:
            continue
        unit.language = language
        unit.line = sm.getLineNumber(rng.start)
        # errors inside the unit, or in the file text before it (an unresolved `include, an unknown
        # directive): those change what the unit means
        unit.parse_error = next((msg for buf, offset, msg in errors if buf is None or (
            buf == rng.start.buffer and previous_end < offset <= rng.end.offset)), None)
        previous_end = rng.end.offset if rng.start.buffer == main_buffer else previous_end
        units.append(unit)
    return units, len(errors)


def _includes_outside(tree, sm, settings: ParseSettings, path: str | None) -> str | None:
    """The first included file outside the allowed folders (the source, its include_dirs), if any."""
    roots = [os.path.realpath(d) for d in settings.include_dirs]
    if path is not None:
        roots.append(os.path.realpath(settings.root or os.path.dirname(os.path.abspath(path))))
    for inc in tree.getIncludeDirectives():
        buffer = inc.buffer
        if not buffer or not buffer.id:
            continue  # not found: the parser reports it
        real = os.path.realpath(str(sm.getFullPath(buffer.id)))
        if not any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots):
            return str(inc.path)
    return None


def _errors(tree, sm, display: str) -> list[tuple[object, int, str]]:
    """``(buffer, offset, message)`` of every error, located at its origin in the main file."""
    import pyslang

    engine = pyslang.DiagnosticEngine(sm)
    out = []
    for diag in tree.diagnostics:
        if not diag.isError():
            continue
        loc = sm.getFullyOriginalLoc(diag.location)
        where = loc
        included = ""
        for _ in range(32):  # an error inside an included file: report it, located at the `include
            parent = sm.getIncludedFrom(where.buffer)
            if parent is None or parent.buffer.id == 0 or parent.buffer == where.buffer:
                break
            if not included:
                included = f" (in included file {sm.getFileName(loc)}:{sm.getLineNumber(loc)})"
            where = parent
        try:
            message = engine.formatMessage(diag)
        except Exception:  # noqa: BLE001 - an argument pyslang cannot format: the code still says what it is
            message = str(diag.code)
        place = f"{display}:{sm.getLineNumber(where)}:{sm.getColumnNumber(where)}"
        out.append((where.buffer, where.offset, f"{place}: error: {message}{included}"))
    return out


def _glues(a: str, b: str) -> bool:
    """Would two expanded tokens run together into one (``input`` + ``logic``) without a space?"""
    word = lambda c: c.isalnum() or c in "_$`\\"
    return bool(b) and word(a) and word(b)


_TRAILING_BLANKS = re.compile(r"[ \t]+(?=\n)")


def _strip_trailing_blanks(text: str, offsets: list[int]) -> tuple[str, list[int]]:
    """``text`` without blanks before line breaks, and ``offsets`` moved to match."""
    removed = [(m.start(), m.end() - m.start()) for m in _TRAILING_BLANKS.finditer(text)]
    if not removed:
        return text, offsets
    moved = [off - sum(n for start, n in removed if start < off) for off in offsets]
    return _TRAILING_BLANKS.sub("", text), moved


def _name(tok) -> str:
    """A declared or referenced name; escaped identifiers keep their backslash (``\\a+b``)."""
    raw = tok.rawText
    return raw if raw.startswith("\\") else tok.valueText


class _Walker:
    """Prints units from the token stream and tracks the macro definitions in effect."""

    def __init__(self, sm, *, expand: bool = True):
        from pyslang import parsing, syntax

        self.sm = sm
        self.expand = expand
        self._last_kind = None
        self.env: dict[str, str] = {}
        self.K = syntax.SyntaxKind
        self.TK = parsing.TriviaKind
        self.Tok = parsing.Token
        self.TokKind = parsing.TokenKind
        self.Node = syntax.SyntaxNode
        self._conditional = {self.K.IfDefDirective, self.K.IfNDefDirective, self.K.ElsIfDirective,
                             self.K.ElseDirective, self.K.EndIfDirective}
        self._generate_branch = {self.K.IfGenerate, self.K.CaseGenerate}

    # -- tokens ---------------------------------------------------------------------------------

    def _tokens(self, node):
        for child in node:
            if isinstance(child, self.Tok):
                yield child
            elif child is not None:
                yield from self._tokens(child)

    def _is_macro(self, tok) -> bool:
        return self.sm.isMacroLoc(tok.location)

    def _token_text(self, tok) -> str:
        # lexed as a name although SystemVerilog reserves it: only under Verilog-2005 keywords
        if tok.kind == self.TokKind.Identifier and tok.rawText in SV_ONLY_KEYWORDS:
            return tok.rawText + KEYWORD_SUFFIX
        return tok.rawText

    # -- directives ---------------------------------------------------------------------------

    def _track(self, node) -> None:
        """Update the macro table for a `define / `undef directive."""
        if node.kind == self.K.DefineDirective:
            name = node.name.valueText
            self.env.pop(name, None)
            self.env[name] = self._print_directive(node) + "\n"
        elif node.kind == self.K.UndefDirective:
            self.env.pop(node.name.valueText, None)

    def _print_directive(self, node) -> str:
        """A directive's own text (without the trivia before it), continuation lines included."""
        out: list[str] = []
        for i, tok in enumerate(self._tokens(node)):
            if i:
                for tr in tok.trivia:
                    if tr.kind != self.TK.Directive:
                        out.append(tr.getRawText())
            out.append(self._token_text(tok))
        return "".join(out).rstrip()

    def _leading_trivia(self, node, out: list[str]) -> None:
        """The comments and line breaks before a dropped directive (kept: they are source text)."""
        first = next(self._tokens(node), None)
        if first is None:
            return
        for tr in first.trivia:
            if tr.kind in (self.TK.Whitespace, self.TK.EndOfLine, self.TK.LineComment, self.TK.BlockComment):
                out.append(tr.getRawText())

    def _trivia(self, tok, out: list[str] | None, used: set[str]) -> None:
        """Print (into ``out``; ``None``: only track) the trivia of a token outside macro expansions."""
        for tr in tok.trivia:
            kind = tr.kind
            if kind == self.TK.Directive:
                node = tr.syntax()
                nk = node.kind
                if nk in (self.K.DefineDirective, self.K.UndefDirective):
                    self._track(node)
                    if out is not None:
                        self._leading_trivia(node, out)
                        out.append(self._print_directive(node))
                elif nk == self.K.MacroUsage:
                    if self.expand:  # it expanded to nothing: keep only the text before it
                        if out is not None:
                            self._leading_trivia(node, out)
                    else:
                        self._macro_usage(node, out, used)
                elif out is not None:  # conditional, include, timescale...: the directive is resolved
                    self._leading_trivia(node, out)
            elif kind == self.TK.DisabledText:
                continue
            elif out is not None:
                out.append(tr.getRawText())

    def _macro_usage(self, node, out: list[str] | None, used: set[str]) -> None:
        first = next(self._tokens(node), None)
        if first is None or self._is_macro(first):
            return  # a macro used inside another macro's expansion: the outer use is printed
        used.add(first.rawText[1:])
        if out is None:
            return
        for i, tok in enumerate(self._tokens(node)):
            for tr in tok.trivia:
                if tr.kind != self.TK.Directive:
                    out.append(tr.getRawText())
            out.append(self._token_text(tok))

    # -- units ----------------------------------------------------------------------------------

    def _expanded(self, tok, out: list[str]) -> None:
        """A token produced by a macro expansion, with the text before the macro use it starts."""
        for tr in tok.trivia:
            if tr.kind == self.TK.Directive:
                node = tr.syntax()
                if node.kind == self.K.MacroUsage:
                    first = next(self._tokens(node), None)
                    if first is not None and not self._is_macro(first):
                        self._leading_trivia(node, out)  # the text before the use, in the file
                continue
            if tr.kind in (self.TK.DisabledText, self.TK.SkippedTokens, self.TK.SkippedSyntax):
                continue
            text = tr.getRawText()
            if tr.kind == self.TK.EndOfLine:
                if not text:
                    continue  # the backslash of a continuation line: its newline follows
                if out and out[-1].strip(" \t") == "":  # no trailing blanks before a line break
                    out[-1] = out[-1].rstrip(" \t")
            out.append(text)
        numeric = (self.TokKind.IntegerLiteral, self.TokKind.IntegerBase, self.TokKind.RealLiteral,
                   self.TokKind.TimeLiteral, self.TokKind.UnbasedUnsizedLiteral)
        pieces_of_a_number = tok.kind in numeric and self._last_kind in numeric  # 8 'h ff: one literal
        if (out and out[-1] and not out[-1][-1].isspace() and not pieces_of_a_number
                and _glues(out[-1][-1], tok.rawText[:1])):
            out.append(" ")
        out.append(self._token_text(tok))

    def skip(self, member) -> None:
        used: set[str] = set()
        for tok in self._tokens(member):
            if not self._is_macro(tok):
                self._trivia(tok, None, used)

    def unit(self, member, kind: str) -> DesignUnit | None:
        K = self.K
        header = getattr(member, "header", None)
        name_tok = getattr(header, "name", None) if header is not None else None
        name = _name(name_tok) if name_tok is not None else ""
        out: list[str] = []
        used: set[str] = set()
        start_env: dict[str, str] | None = None
        info = {"initial": False, "finish": False, "formal": False}
        literals = self._parameter_literals(member)
        slots: list[tuple[str, int, int]] = []  # (name, value, index in out)
        for i, tok in enumerate(self._tokens(member)):
            macro = self._is_macro(tok)
            if i == 0:
                self._trivia(tok, None, used)  # the file's prelude: macro definitions, not unit text
                start_env = dict(self.env)
                if macro:
                    logger.debug("unit %s starts inside a macro expansion; skipped", name)
                    return None
                out.append(self._token_text(tok))
                continue
            if macro:
                if self.expand:
                    self._expanded(tok, out)  # print what the compiler saw
                else:  # expanded text: print only the macro use that produced it
                    for tr in tok.trivia:
                        if tr.kind == self.TK.Directive and tr.syntax().kind == K.MacroUsage:
                            self._macro_usage(tr.syntax(), out, used)
                    continue
            else:
                self._trivia(tok, out, used)
                if literals:
                    found = literals.get((tok.location.buffer.id, tok.location.offset))
                    if found is not None:
                        slots.append((found[0], found[1], len(out)))
                out.append(self._token_text(tok))
            tk = tok.kind
            self._last_kind = tk
            if tk == self.TokKind.InitialKeyword:
                info["initial"] = True
            elif tk == self.TokKind.SystemIdentifier:
                if tok.rawText in _TESTBENCH_CALLS:
                    info["finish"] = True
                elif tok.rawText in _FORMAL_CALLS:
                    info["formal"] = True
            elif tk in (self.TokKind.AssumeKeyword, self.TokKind.RestrictKeyword):
                info["formal"] = True
        if not name:
            return None
        if name_tok.kind == self.TokKind.Identifier and name in SV_ONLY_KEYWORDS:
            name += KEYWORD_SUFFIX
        starts = [sum(len(x) for x in out[:index]) for _, _, index in slots]
        text, starts = _strip_trailing_blanks("".join(out), starts)
        unit = DesignUnit(name=name, kind=kind, text=text)
        for (pname, value, index), start in zip(slots, starts):
            unit.integer_parameters.append((pname, value, start, start + len(out[index])))
        self._scan(member, unit, info)
        unit.macros = [] if self.expand else self._closure(used, start_env or {})
        unit.testbench = kind == "module" and unit.ports == 0 and (info["initial"] or info["finish"])
        unit.formal = info["formal"]
        return unit

    def _parameter_literals(self, member) -> dict[tuple[int, int], tuple[str, int]]:
        """Location → (name, value) of the decimal-literal defaults of overridable parameters: those of
        the header's ``#(...)`` list, or body ``parameter`` declarations when there is no such list."""
        K = self.K
        header = getattr(member, "header", None)
        plist = getattr(header, "parameters", None) if header is not None else None
        decls = []
        if plist is not None:
            decls = [d for d in plist.declarations if isinstance(d, self.Node)]
        else:
            for item in getattr(member, "members", None) or []:
                node = item.parameter if item.kind == K.ParameterDeclarationStatement else None
                if node is not None:
                    decls.append(node)
        found: dict[tuple[int, int], tuple[str, int]] = {}
        for decl in decls:
            if decl.kind != K.ParameterDeclaration or decl.keyword.kind == self.TokKind.LocalParamKeyword:
                continue
            for d in decl.declarators:
                if not isinstance(d, self.Node) or d.initializer is None:
                    continue
                expr = d.initializer.expr
                text = str(expr).strip()
                if expr.kind == K.IntegerLiteralExpression and text.isdigit():
                    tok = expr.getFirstToken()
                    if not self._is_macro(tok):
                        found[(tok.location.buffer.id, tok.location.offset)] = (d.name.valueText, int(text))
        return found

    def _closure(self, used: set[str], env: dict[str, str]) -> list[tuple[str, str]]:
        needed: set[str] = set()
        todo = [n for n in used if n in env]
        while todo:
            name = todo.pop()
            if name in needed:
                continue
            needed.add(name)
            body = env[name].split(None, 2)[2] if len(env[name].split(None, 2)) > 2 else ""
            todo += [m for m in _MACRO_REF.findall(body) if m in env and m not in needed]
        return [(name, text) for name, text in env.items() if name in needed]

    def _scan(self, member, unit: DesignUnit, info: dict) -> None:
        """Instances, package references, ports, attributes and string parameters (syntax only)."""
        K = self.K
        seen: dict[str, bool] = {}
        packages: list[str] = []

        def add_package(name: str) -> None:
            if name and name not in packages and name not in ("std", "$unit", "local", "super", "this"):
                packages.append(name)

        def walk(node, conditional: bool) -> None:
            for child in node:
                if child is None or isinstance(child, self.Tok):
                    continue
                kind = child.kind
                if kind == K.HierarchyInstantiation:
                    type_name = _name(child.type)
                    if child.type.kind == self.TokKind.Identifier and type_name in SV_ONLY_KEYWORDS:
                        type_name += KEYWORD_SUFFIX
                    if type_name:
                        seen[type_name] = seen.get(type_name, True) and conditional
                elif kind == K.PackageImportItem:
                    add_package(child.package.valueText)
                elif kind == K.ScopedName and child.separator.kind == self.TokKind.DoubleColon:
                    left = child.left
                    if left.kind == K.IdentifierName:
                        add_package(left.identifier.valueText)
                elif kind == K.AttributeSpec and child.name.valueText in _FORMAL_ATTRIBUTES:
                    info["formal"] = True
                elif kind == K.ParameterDeclaration:
                    for decl in child.declarators:
                        if (isinstance(decl, self.Node) and decl.kind == K.Declarator
                                and decl.initializer is not None):
                            expr = decl.initializer.expr
                            if expr.kind == K.StringLiteralExpression:
                                unit.string_parameters[decl.name.valueText] = str(expr).strip()
                walk(child, conditional or kind in self._generate_branch)

        walk(member, False)
        unit.instances = list(seen.items())
        unit.packages = packages
        ports = getattr(getattr(member, "header", None), "ports", None)
        if ports is not None and hasattr(ports, "ports"):  # separated list: skip the comma tokens
            unit.ports = sum(1 for p in ports.ports if isinstance(getattr(p, "kind", None), K))
