"""Syntax level: does the candidate compile and elaborate on its own?

The candidate is elaborated alone (no testbench, no reference), with every module it
defines as a root. This is also a security check: a hierarchical reference out of the
candidate's own hierarchy (``tb.ref.out``) or an instantiation of a module the candidate
does not define (e.g. the reference ``RefModule``) cannot be resolved and fails here.
"""

from __future__ import annotations

import dataclasses
import logging

from . import lexer
from .errors import InfrastructureError
from .sandbox import SandboxConfig, ToolResult, Workspace
from .toolchain import find_tool

logger = logging.getLogger(__name__)

IVERILOG_FLAGS = ("-g2012",)
LOG_LIMIT = 4000


@dataclasses.dataclass
class SyntaxResult:
    ok: bool
    failure: str | None
    log: str
    elapsed: float = 0.0


def classify_compile_failure(result: ToolResult) -> str:
    """Map a failed iverilog run to ``syntax``, ``elaboration``, ``compile``, ``timeout`` or ``resource``.

    Raises :class:`InfrastructureError` when the compiler itself crashed.
    """
    if result.timed_out:
        return "timeout"
    if result.output_flood or result.killed_by_limit:
        return "resource"
    if result.signal is not None:
        raise InfrastructureError(f"{result.argv[0]} was killed by signal {result.signal}: {tail(result.output)}")
    text = result.output
    if "syntax error" in text:
        return "syntax"
    lowered = text.lower()
    if any(m in lowered for m in ("unknown module type", "unable to bind", "elaborat", "is not a port",
                                   "port ", "unable to find the root module", "no such")):
        return "elaboration"
    return "compile"


def tail(text: str, limit: int = LOG_LIMIT) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def check_syntax(code: str, top: str, *, config: SandboxConfig | None = None, timeout: float = 20.0) -> SyntaxResult:
    """Compile and elaborate sanitized candidate ``code`` alone; ``top`` must be defined."""
    names = lexer.module_names(code)
    if top not in names:
        found = ", ".join(names[:8]) or "none"
        return SyntaxResult(False, "elaboration" if names else "syntax",
                            f"the design does not define module `{top}` (modules found: {found})")
    iverilog = find_tool("iverilog")
    with Workspace({"cand.v": code}, config) as ws:
        result = ws.run([iverilog, *IVERILOG_FLAGS, "-tnull", "cand.v"], timeout=timeout)
    if result.ok:
        return SyntaxResult(True, None, tail(result.output), result.elapsed)
    failure = classify_compile_failure(result)
    return SyntaxResult(False, failure, tail(result.output), result.elapsed)
