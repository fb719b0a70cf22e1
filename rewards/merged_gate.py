"""The elaboration gate and the simulation compile in one compiler run.

The gate (:mod:`rewards.syntax`) elaborates the canonical text alone, under a root whose name is random, so that a
name reaching outside the design cannot resolve. The simulation compiles the same text after the testbench. Both are
one ``iverilog`` run each; this module makes them one: the testbench, the reference, the candidate and the gate's
root (which instantiates ``top`` once with its default parameters) are compiled together, with the gate's root as a
second root of the design. That run is only used in place of the two when it decides exactly what they would:

* **Nothing of the testbench can be named from the gate's instance.** Seen from there, the only names outside the
  candidate's own hierarchy are the roots of the design (the testbench's), the design units the trusted sources
  define (modules, packages, interfaces, classes...) and the names they declare in the compilation unit. Everything
  above the gate's instance has a random name. :func:`mergeable` requires that the canonical text uses none of those
  trusted names (any identifier equal to one, anywhere); a trusted text whose names cannot all be listed (a macro at
  file scope, a macro-made definition name, ```begin_keywords``) makes the run separate. Then the gate's instance
  resolves exactly what the candidate resolves alone.
* **Every design unit of the candidate is elaborated under the gate's root** (alone, the gate also elaborates every
  module nothing instantiates), it defines nothing but modules, and the compiler reported no ``defparam`` into a
  missing scope: otherwise the gate runs alone.
* **The gate's instance never runs.** The compiled image is rewritten before ``vvp`` sees it: every process of the
  gate's subtree (``initial``, ``always``, ``final`` blocks: the image's ``.thread`` statements in its scopes) is
  dropped, so only its nets remain, with nothing driving them. A function called from a continuous assignment of
  the gate's subtree (``.ufunc``, evaluated by the nets themselves) makes the run separate.
* **The log reads as the separate compile's.** The gate's root sorts after every root the testbench may have (Icarus
  elaborates roots in ``-s`` order, else by name), so each message the gate's instance adds follows the same message
  of the testbench's instance of ``top``; lines about the gate's own file are removed.

When the joint compile fails, a syntax error is the candidate's (the trusted sources compile on their own, and the
canonical text parses the same in any context): the gate's verdict is ``syntax``. Any other failure is decided by
running the gate alone, then, if it passes, the simulation compile alone, exactly as before.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import secrets

from . import lexer
from .preprocess import FILE_NAME as CANONICAL_FILE
from .sanitize import Sanitized
from .syntax import ParameterSet, gate_wrapper, image_scopes, scope_root

GATE_FILE = "verirl_gate.v"
#: the gate root's name starts with this: it sorts after the roots of any testbench we accept (Icarus elaborates
#: roots it picks itself in name order)
ROOT_PREFIX = "zzzz_verirl_gate_"

_THREAD_LABEL = re.compile(r"^(T_\d+) ;")
_THREAD = re.compile(r"^\s+\.thread (T_\d+)\b")
_CODE_SCOPE = re.compile(r"^\s+\.scope (S_0x[0-9a-f]+);$")
_DIRECTIVE = frozenset({"define", "undef", "timescale", "default_nettype", "resetall", "celldefine",
                        "endcelldefine", "ifdef", "ifndef", "elsif", "else", "endif", "line", "include"})


@dataclasses.dataclass(frozen=True)
class Plan:
    """How to add the gate to one simulation compile."""

    tag: str
    root: str

    @property
    def instance(self) -> str:
        return f"verirl_dut_{self.tag}_0"


@dataclasses.dataclass
class Inspection:
    """What the joint compile decided for the gate, read from its output and image."""

    image: bytes | None
    """The image ``vvp`` runs (the gate's processes dropped), or ``None`` when the gate must run alone."""
    reason: str = ""
    """Why the gate must run alone (empty when it need not)."""
    defaults: ParameterSet | None = None
    """``top``'s default parameter values, as the gate's instance got them."""
    instances: list[ParameterSet] = dataclasses.field(default_factory=list)
    """The distinct parameter values the testbench's instances of ``top`` got."""


def plan(top: str) -> Plan:
    tag = secrets.token_hex(8)
    return Plan(tag, ROOT_PREFIX + tag)


def wrapper(plan_: Plan, top: str) -> str:
    """The gate's root for ``top`` (one instance, default parameters, no port connected)."""
    return gate_wrapper(top, plan_.tag, [()], root=plan_.root)


@functools.lru_cache(maxsize=512)
def trusted_names(testbench: str, reference: str | None) -> frozenset[str] | None:
    """Every name the trusted sources make visible to a root of the design: the design units they define and the
    names they declare in the compilation unit (:func:`rewards.lexer.unit_names`). ``None`` when that list
    cannot be complete."""
    names: set[str] = set()
    for text in (testbench, reference):
        if text is None:
            continue
        if "begin_keywords" in text:
            return None
        unit = lexer.unit_names(text)
        if "*" in unit:
            return None
        names |= unit
        tokens = lexer.trusted_tokens(text)
        sig = lexer.significant(tokens)
        for pos, idx in enumerate(sig):
            tok = tokens[idx]
            if tok.kind == lexer.IDENT and tok.text in _UNIT_KEYWORDS:
                nxt = pos + 1
                while nxt < len(sig) and tokens[sig[nxt]].text in ("automatic", "static"):
                    nxt += 1
                if nxt >= len(sig):
                    continue
                name_tok = tokens[sig[nxt]]
                if name_tok.kind == lexer.DIRECTIVE and name_tok.text[1:] not in _DIRECTIVE:
                    return None  # a design unit named by a macro: its name is not in the text
                name = lexer.identifier_name(name_tok)
                if name is not None:
                    names.add(name.strip())
    return frozenset(names)


_UNIT_KEYWORDS = frozenset({"module", "macromodule", "primitive", "interface", "program", "package", "class",
                            "checker", "config"})


def mergeable(sanitized: Sanitized, testbench: str, reference: str | None) -> str | None:
    """``None`` when the gate may share the simulation's compile, else why not."""
    if not sanitized.only_modules:
        return "the design defines units other than modules"
    trusted = trusted_names(testbench, reference)
    if trusted is None:
        return "the trusted sources' names cannot all be listed"
    shared = (sanitized.identifiers - {sanitized.top}) & trusted
    if shared:
        return f"the design uses names the trusted sources define ({', '.join(sorted(shared)[:5])})"
    if sanitized.top in trusted:
        return f"the trusted sources define `{sanitized.top}`"
    if any(name >= ROOT_PREFIX for name in trusted):
        return "a trusted design unit's name sorts after the gate's root"
    return None


def inspect(image: bytes, output: str, plan_: Plan, sanitized: Sanitized) -> Inspection:
    """Read the joint compile's verdict for the gate from its image, and make the image ``vvp`` runs."""
    from .syntax import defparam_escape

    if defparam_escape(output):
        return Inspection(None, "a defparam into a missing scope")
    text = image.decode("utf-8", errors="replace")
    scopes = image_scopes(text)
    roots = [a for a, s in scopes.items() if s.parent is None and s.name == plan_.root]
    if len(roots) != 1:
        return Inspection(None, "the gate's root is not in the image")
    gate_root = roots[0]
    under = {a for a in scopes if scope_root(scopes, a) == gate_root}
    types = {scopes[a].type for a in under if scopes[a].kind == "module"}
    own = {sanitized.top, *sanitized.renamed.values()}
    missing = own - types
    if missing:
        return Inspection(None, f"module(s) {', '.join(sorted(missing))} not elaborated under the gate's root")
    if f"TD_{plan_.root}." in text and _ufunc_under(text, plan_.root):
        return Inspection(None, "a function evaluated by the gate's nets")
    pruned = _prune_threads(text, under)
    if pruned is None:
        return Inspection(None, "a process of the image could not be placed in its scope")
    defaults = next((tuple(sorted(s.parameters)) for a, s in scopes.items()
                     if s.parent == gate_root and s.name == plan_.instance and s.type == sanitized.top), None)
    if defaults is None:
        return Inspection(None, "the gate's instance is not in the image")
    instances: list[ParameterSet] = []
    for a, s in scopes.items():
        if a not in under and s.kind == "module" and s.type == sanitized.top:
            ps = tuple(sorted(s.parameters))
            if ps not in instances:
                instances.append(ps)
    return Inspection(pruned.encode("utf-8", errors="surrogateescape"), "", defaults, instances)


def _ufunc_under(text: str, root: str) -> bool:
    return any(".ufunc" in line and f"TD_{root}." in line for line in text.splitlines())


def _prune_threads(text: str, scopes: set[str]) -> str | None:
    """The image without the ``.thread`` statements (process starts) whose code lies in ``scopes``."""
    out: list[str] = []
    current: str | None = None
    thread_scope: dict[str, str | None] = {}
    for line in text.splitlines(keepends=True):
        m = _CODE_SCOPE.match(line)
        if m:
            current = m.group(1)
        else:
            m = _THREAD_LABEL.match(line)
            if m:
                thread_scope[m.group(1)] = current
            else:
                m = _THREAD.match(line)
                if m:
                    where = thread_scope.get(m.group(1))
                    if where is None:
                        return None
                    if where in scopes:
                        continue
        out.append(line)
    return "".join(out)


def filter_log(output: str, plan_: Plan) -> str:
    """The joint compile's messages as the separate compile prints them: the gate's own lines removed."""
    lines = [line for line in output.splitlines()
             if not line.startswith(GATE_FILE + ":") and plan_.tag not in line]
    return "\n".join(lines)


def standalone_log(output: str, candidate_file: str) -> str:
    """The joint compile's messages about the candidate's and the gate's files, named as the gate alone names them
    (``cand.v``, ``gate.v``): the log of a syntax error. The canonical text names itself ``candidate.v`` (its
    `` `line`` directive), so that is how most of the candidate's messages begin."""
    own = (CANONICAL_FILE + ":", candidate_file + ":", GATE_FILE + ":")
    lines = [line.replace(candidate_file, "cand.v", 1).replace(GATE_FILE, "gate.v", 1)
             for line in output.splitlines(keepends=True)
             if line.startswith(own) or not re.match(r"^\S+:\d+:", line)]
    return "".join(lines)


__all__ = ["GATE_FILE", "Inspection", "Plan", "filter_log", "inspect", "mergeable", "plan",
           "standalone_log", "trusted_names", "wrapper"]
