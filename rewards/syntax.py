"""Syntax level and the elaboration gate: does the candidate compile and elaborate on its own?

:func:`check_syntax` elaborates the candidate's canonical text alone: no testbench, no reference,
``top`` instantiated once, without parameter overrides and without port connections, by a root
module whose name (and the name of its instance of ``top``) is random. Every other module the
candidate does not instantiate is a root as well. The gate is also the security check against
reaching outside the design:

* a hierarchical reference out of the candidate's own hierarchy (``tb.golden.out``, ``golden.s``,
  a ``force`` or ``disable`` of a testbench name), a call of a testbench task, or an instance of a
  module the candidate does not define (the reference ``RefModule``) cannot be resolved here: the
  only names above the candidate's instance are random;
* Icarus only *warns* about a ``defparam`` whose target scope does not exist; the gate fails it
  (``Scope of ... not found``), since in the simulation the target could be a testbench parameter.

Elaboration can still depend on ``top``'s parameter values, which the testbench may override:
``generate`` branches only exist for the values they are elaborated with. :func:`check_in_context`
is the second half of the gate: after the simulation is compiled, the parameter values each
instance of ``top`` really got there (read from the compiled image, :func:`top_parameters`) are
elaborated alone the same way (:mod:`rewards.simulate` runs it whenever they differ from the
defaults this gate reported).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import math
import re
import secrets
import threading

from . import lexer
from .errors import InfrastructureError
from .sandbox import SandboxConfig, ToolResult, Workspace
from .toolchain import find_tool

logger = logging.getLogger(__name__)

IVERILOG_FLAGS = ("-g2012",)
LOG_LIMIT = 4000
#: how much of a compiler's output ``compile_log`` keeps, from its beginning
COMPILE_LOG_LIMIT = 64 * 1024
#: Largest compiled image read back for its parameter values (a bigger one is a resource failure).
MAX_IMAGE_BYTES = 64 << 20

#: A parameter as Icarus' compiled image records it: (name, kind ``l``/``real``/``str``, value text).
Parameter = tuple[str, str, str]
ParameterSet = tuple[Parameter, ...]

_UNRESOLVED_DEFPARAM = re.compile(r"warning: Scope of \S+ not found")
#: What the iverilog driver (or the shell it starts its stages with) prints when it could not run a stage of its own:
#: a fork or exec refused (the process limit counts every process of the tools' user), a broken installation. Such a
#: failure says nothing of the source. Anchored at a line start: the compiler's messages about the source start with
#: a file name the frame chose, and candidate code holds no directive that could change it.
#: The shell a tool starts its stages with (``system``/``popen``) could not fork or find a stage: dash's own message.
SHELL_FAILURE = r"sh: \d+: (?:Cannot fork|.*: (?:not found|Permission denied))"
_DRIVER_FAILURE = re.compile(rf"^(?:{SHELL_FAILURE}"
                             r"|Failed to execute: |Cannot locate IVL modules|\S*iverilog: Error opening temporary file)",
                             re.MULTILINE)


@dataclasses.dataclass
class SyntaxResult:
    ok: bool
    failure: str | None
    log: str
    elapsed: float = 0.0
    parameters: ParameterSet | None = None
    """``top``'s overridable parameters with their default values (when asked for and ``ok``)."""
    compile_log: str = ""
    """The compiler's messages from their beginning (bounded), whole where ``log`` keeps only the tail."""


def classify_compile_failure(result: ToolResult) -> str:
    """Map a failed iverilog run to ``syntax``, ``elaboration``, ``compile``, ``timeout`` or ``resource``.

    Raises :class:`InfrastructureError` when the compiler itself crashed or could not start one of its stages
    (a fork refused by the process limit, a broken installation): neither is a verdict on the source.
    """
    if result.timed_out:
        return "timeout"
    if result.output_flood or result.killed_by_limit:
        return "resource"
    if result.signal is not None:
        raise InfrastructureError(f"{result.argv[0]} was killed by signal {result.signal}: {tail(result.output)}")
    text = result.output
    if result.returncode == 127 and not text.strip():
        # glibc's system() reports a shell it could not spawn as exit status 127, and the driver passes that on
        # without a word; the compiler never rejects a source silently
        raise InfrastructureError(f"{result.argv[0]} exited with status 127 and no message: it could not start the "
                                  f"shell for one of its stages (a fork refused by the process limit)")
    driver = _DRIVER_FAILURE.search(text)
    if driver is not None:
        raise InfrastructureError(f"{result.argv[0]} could not run one of its own stages ({driver.group(0).strip()}"
                                  f"): not a verdict on the source: {tail(text, 500)}")
    if "syntax error" in text:
        return "syntax"
    lowered = text.lower()
    if any(m in lowered for m in ("unknown module type", "unable to bind", "elaborat", "is not a port",
                                   "port ", "unable to find the root module", "no such")):
        return "elaboration"
    return "compile"


def tail(text: str, limit: int = LOG_LIMIT) -> str:
    """The end of ``text``, at most ``limit`` characters (``...`` marks a cut)."""
    return text if len(text) <= limit else "...\n" + text[-limit:]


def head(text: str, limit: int = COMPILE_LOG_LIMIT) -> str:
    """``text`` from its beginning, at most ``limit`` characters (a marker says when it was cut)."""
    return text if len(text) <= limit else text[:limit] + f"\n... (cut at {limit} characters)"


def check_syntax(code: str, top: str, *, config: SandboxConfig | None = None, timeout: float = 20.0,
                 parameters: bool = False) -> SyntaxResult:
    """Compile and elaborate ``code`` alone, ``top`` instantiated once with its defaults (the gate).

    With ``parameters=True`` the result also carries ``top``'s default parameter values, which the
    simulation compares with the values the testbench gives it (and they are remembered for
    :func:`known_defaults`).
    """
    names = [n.strip() for n in lexer.module_names(code)]
    if top not in names:
        found = ", ".join(names[:8]) or "none"
        return SyntaxResult(False, "elaboration" if names else "syntax",
                            f"the design does not define module `{top}` (modules found: {found})")
    result = _elaborate(code, top, [()], config, timeout, image=parameters)
    if result.ok and parameters:
        remember_defaults(code, top, result.parameters)
    return result


def check_in_context(code: str, top: str, parameter_sets: list[ParameterSet], *,
                     config: SandboxConfig | None = None, timeout: float = 20.0) -> SyntaxResult:
    """Elaborate ``code`` alone with ``top`` instantiated once per set of parameter values.

    A candidate that compiles inside the testbench but fails here reaches outside its own hierarchy
    in a ``generate`` branch that only the testbench's parameter values select.
    """
    return _elaborate(code, top, parameter_sets, config, timeout, image=False)


def gate_wrapper(top: str, tag: str, parameter_sets: list[ParameterSet] = ((),), root: str | None = None) -> str:
    """The gate's root module: ``top`` instantiated once per parameter set, no port connected; the root's and the
    instances' names hold the random ``tag``, so nothing the candidate can write names anything above it."""
    instances = "".join(f"  {top}{_overrides(ps)} verirl_dut_{tag}_{k} ();\n" for k, ps in enumerate(parameter_sets))
    return f"module {root or 'verirl_gate_' + tag};\n{instances}endmodule\n"


def defparam_escape(output: str) -> str | None:
    """The warning by which Icarus reports a ``defparam`` whose target scope does not exist, if any."""
    found = _UNRESOLVED_DEFPARAM.search(output)
    return found.group() if found else None


def _elaborate(code: str, top: str, parameter_sets: list[ParameterSet], config: SandboxConfig | None,
               timeout: float, *, image: bool) -> SyntaxResult:
    tag = secrets.token_hex(8)
    wrapper = gate_wrapper(top, tag, parameter_sets)
    iverilog = find_tool("iverilog")
    target = ["-tvvp", "-o", "gate.vvp"] if image else ["-tnull"]
    with Workspace({"cand.v": code, "gate.v": wrapper}, config) as ws:
        result = ws.run([iverilog, *IVERILOG_FLAGS, *target, "cand.v", "gate.v"], timeout=timeout)
        data = ws.read("gate.vvp", MAX_IMAGE_BYTES) if image and result.ok else None
    log = tail(result.output)
    if not result.ok:
        return SyntaxResult(False, classify_compile_failure(result), log, result.elapsed,
                            compile_log=head(result.output))
    unresolved = _UNRESOLVED_DEFPARAM.search(result.output)
    if unresolved:
        return SyntaxResult(False, "elaboration", f"defparam into a scope outside the design "
                            f"({unresolved.group()}):\n{log}", result.elapsed, compile_log=head(result.output))
    params = None
    if image:
        found = top_parameters((data or b"").decode("utf-8", errors="replace"), top)
        params = found[0] if len(found) == 1 else ()
    return SyntaxResult(True, None, log, result.elapsed, params)


# ------------------------------------------------------------------------------------ compiled images

_SCOPE = re.compile(r'^S_0x[0-9a-f]+ \.scope (\w+), "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"')
_PARAM = re.compile(r'^P_0x[0-9a-f]+ \.param/(l|real|str) "((?:[^"\\]|\\.)*)" (\d+) \d+ \d+, (.*?);(?: value=.*)?$')
_UNSUPPORTED = re.compile(r"^; parameter type \d+ unsupported")


def top_parameters(image: str, top: str) -> list[ParameterSet]:
    """The distinct sets of overridable parameter values of the instances of module ``top`` in a
    compiled Icarus image (``.scope module, "<instance>" "<top>"`` and the ``.param`` lines after it).

    A parameter Icarus does not write out (``; parameter type N unsupported``) appears as
    ``("?", "unsupported", "")``.
    """
    found: list[ParameterSet] = []
    current: list[Parameter] | None = None

    def close() -> None:
        if current is not None:
            ps = tuple(sorted(current))
            if ps not in found:
                found.append(ps)

    for line in image.splitlines():
        if line.startswith("S_0x"):
            m = _SCOPE.match(line)
            close()
            current = [] if m and m.group(1) == "module" and m.group(3) == top else None
        elif current is not None:
            if line.startswith("P_0x"):
                m = _PARAM.match(line)
                if m and m.group(3) == "0":  # 1 marks a localparam, which no override reaches
                    current.append((m.group(2), m.group(1), m.group(4)))
            elif _UNSUPPORTED.match(line):
                current.append(("?", "unsupported", ""))
    close()
    return found


@dataclasses.dataclass
class ImageScope:
    """One ``.scope`` of a compiled image: its kind, instance name, definition name and parent scope."""

    kind: str
    name: str
    type: str
    parent: str | None
    parameters: list[Parameter] = dataclasses.field(default_factory=list)


_ANY_SCOPE = re.compile(r'^(S_0x[0-9a-f]+) \.scope ([\w.$]+), "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"[^;]*?'
                        r'(?:, (S_0x[0-9a-f]+))?;$')


def image_scopes(image: str) -> dict[str, ImageScope]:
    """Every scope of a compiled Icarus image by address, with the overridable parameters declared in it."""
    scopes: dict[str, ImageScope] = {}
    current: ImageScope | None = None
    for line in image.splitlines():
        if line.startswith("S_0x"):
            m = _ANY_SCOPE.match(line)
            current = None
            if m:
                current = scopes[m.group(1)] = ImageScope(m.group(2).split(".")[0], m.group(3), m.group(4), m.group(5))
        elif current is not None and current.kind == "module":
            if line.startswith("P_0x"):
                m = _PARAM.match(line)
                if m and m.group(3) == "0":
                    current.parameters.append((m.group(2), m.group(1), m.group(4)))
            elif _UNSUPPORTED.match(line):
                current.parameters.append(("?", "unsupported", ""))
    return scopes


def scope_root(scopes: dict[str, ImageScope], address: str) -> str:
    """The address of the root scope above ``address``."""
    seen = set()
    while scopes[address].parent is not None and address not in seen:
        seen.add(address)
        address = scopes[address].parent  # type: ignore[assignment]
    return address


def _overrides(ps: ParameterSet) -> str:
    if not ps:
        return ""
    return " #(" + ", ".join(f".{name}({_literal(kind, value)})" for name, kind, value in ps) + ")"


def _literal(kind: str, value: str) -> str:
    """A Verilog constant with exactly the value (width, signedness, bits) the image records."""
    if kind == "l":
        m = re.fullmatch(r"(\+?)C4<([01xz]+)>", value)
        if not m:
            raise InfrastructureError(f"unexpected vector constant {value!r} in a compiled image")
        return f"{len(m.group(2))}'{'s' if m.group(1) else ''}b{m.group(2)}"
    if kind == "real":
        m = re.fullmatch(r"Cr<m([0-9a-f]+)g([0-9a-f]+)>", value)
        if not m:
            raise InfrastructureError(f"unexpected real constant {value!r} in a compiled image")
        mant, vexp = int(m.group(1), 16), int(m.group(2), 16)
        sign = -1.0 if vexp & 0x4000 else 1.0
        if vexp & 0x3FFF == 0x3FFF:  # tgt-vvp's encoding of infinities and NaN
            return f"({'-' if sign < 0 else ''}1.0/0.0)" if mant == 0 else "(0.0/0.0)"
        number = sign * math.ldexp(mant, (vexp & 0x3FFF) - 0x1000)
        text = repr(number)
        return text if "e" in text or "." in text else text + ".0"
    if kind == "str":
        return value  # already a quoted string with octal escapes
    raise InfrastructureError(f"cannot reproduce a parameter of kind {kind!r}")


# ------------------------------------------------------------------------------------ defaults of gated texts

_DEFAULTS: collections.OrderedDict[str, ParameterSet] = collections.OrderedDict()
_DEFAULTS_LOCK = threading.Lock()


def _defaults_key(code: str, top: str) -> str:
    return hashlib.sha256(f"{top}\0{code}".encode("utf-8", errors="surrogatepass")).hexdigest()


def remember_defaults(code: str, top: str, params: ParameterSet | None) -> None:
    """Record ``top``'s default parameter values for :func:`known_defaults` (the gate decided them)."""
    if params is None:
        return
    with _DEFAULTS_LOCK:
        _DEFAULTS[_defaults_key(code, top)] = params
        while len(_DEFAULTS) > 4096:
            _DEFAULTS.popitem(last=False)


def known_defaults(code: str, top: str) -> ParameterSet | None:
    """``top``'s default parameter values, when this process already gated ``code`` with ``parameters=True``."""
    with _DEFAULTS_LOCK:
        return _DEFAULTS.get(_defaults_key(code, top))
