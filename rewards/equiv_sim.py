"""Run an equivalence testbench on a golden and a candidate design that share no compilation state.

Icarus compiles three files in one run: the testbench, the golden design, the candidate. Its
``-u`` (one compilation unit per file) is not usable in Icarus 11 (it loses ``$unit`` functions and
parameters and crashes on ``$unit`` typedefs), so the files form one unit and the golden file is
made unable to affect the candidate, and the candidate unable to collide with it:

* every golden module and package is renamed ``verirl_ref_<name>``, and so is everything the
  golden file declares outside modules (``$unit`` typedefs, enum values, functions, parameters);
  the candidate's sub-modules already carry a random prefix (:func:`rewards.sanitize.sanitize_candidate`);
* the golden file starts and ends with `` `resetall`` (`` `default_nettype``, `` `timescale``...
  go back to their defaults) and ends by undefining every macro it defines;
* the testbench undefines its own verdict macro at its end.

The testbench defines its verdict macro with a per-run secret in its own file; the candidate can
neither use nor print it (output tasks are removed from candidate code), and a run that ends
without exactly one verdict line is ``missing_result``, never a pass.
"""

from __future__ import annotations

import dataclasses
import re
import secrets

from . import lexer
from .sandbox import SandboxConfig, Workspace
from .sanitize import rename_modules
from .syntax import classify_compile_failure, tail
from .toolchain import find_tool

REF_PREFIX = "verirl_ref_"
IVERILOG_FLAGS = ("-g2012",)
FILES = ("verirl_tb.v", "verirl_gold.v", "verirl_cand.v")


@dataclasses.dataclass
class EquivRun:
    """What one testbench run did."""

    failure: str | None
    """``None`` (all checks passed), ``mismatch``, ``timeout``, ``resource``, ``missing_result``,
    or a compile failure class (``syntax``, ``elaboration``, ``compile``)."""
    passed: int = 0
    total: int = 0
    seq_passed: int = 0
    seq_total: int = 0
    stdout: str = ""
    log: str = ""
    at_fault: str | None = None
    """For a compile failure: ``golden`` or ``candidate`` (which file the compiler complained about)."""
    compile_seconds: float = 0.0
    run_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failure is None


def golden_for_simulation(gold_code: str, unit_names: tuple[str, ...] = (), keep: tuple[str, ...] = ()) -> str:
    """The golden text renamed apart (modules, packages and ``unit_names``, the names it declares
    outside modules, except ``keep``: the top's port names) and fenced with `` `resetall``."""
    tokens = lexer.tokenize(gold_code)
    names = lexer.module_names(gold_code)
    code = rename_modules(gold_code, {n: REF_PREFIX + n for n in names}) if names else gold_code
    packages = _package_names(tokens)
    if packages:
        code = rename_packages(code, {p: REF_PREFIX + p for p in packages})
    units = {n: REF_PREFIX + n for n in unit_names if n not in keep and n not in packages}
    if units:
        code = rename_identifiers(code, units)
    macros = sorted({tokens[j].text for i, t in enumerate(tokens) if t.kind == lexer.DIRECTIVE and t.text == "`define"
                     for j in [_next_significant(tokens, i)] if j is not None and tokens[j].kind == lexer.IDENT})
    undefs = "".join(f"`undef {m}\n" for m in macros)
    return f"`resetall\n{code}\n`resetall\n{undefs}"


def _next_significant(tokens: list[lexer.Token], i: int) -> int | None:
    for j in range(i + 1, len(tokens)):
        if tokens[j].kind != lexer.SPACE:
            return j
    return None


def rename_identifiers(code: str, mapping: dict[str, str]) -> str:
    """Rename every identifier in ``mapping`` except after ``.`` (named connections, members)."""
    tokens = lexer.tokenize(code)
    out = list(tokens)
    prev = ""
    for i, tok in enumerate(tokens):
        if tok.kind == lexer.IDENT and tok.text in mapping and prev != ".":
            out[i] = lexer.Token(lexer.IDENT, mapping[tok.text], tok.start)
        if tok.significant:
            prev = tok.text
    return "".join(t.text for t in out)


def _package_names(tokens: list[lexer.Token]) -> list[str]:
    sig = [t for t in tokens if t.significant]
    return [sig[i + 1].text for i, tok in enumerate(sig[:-1])
            if tok.text == "package" and sig[i + 1].kind == lexer.IDENT]


def rename_packages(code: str, mapping: dict[str, str]) -> str:
    """Rename package definitions and their uses (``p::x``, ``import p::*``, ``endpackage : p``)."""
    tokens = lexer.tokenize(code)
    sig = [i for i, t in enumerate(tokens) if t.significant]
    out = list(tokens)
    for pos, idx in enumerate(sig):
        tok = tokens[idx]
        if tok.kind != lexer.IDENT or tok.text not in mapping:
            continue
        prev = tokens[sig[pos - 1]].text if pos > 0 else ""
        prev2 = tokens[sig[pos - 2]].text if pos > 1 else ""
        nxt = tokens[sig[pos + 1]].text if pos + 1 < len(sig) else ""
        if prev == "package" or nxt == "::" or (prev == ":" and prev2 == "endpackage"):
            out[idx] = lexer.Token(lexer.IDENT, mapping[tok.text], tok.start)
    return "".join(t.text for t in out)


def run_testbench(testbench: str, gold_code: str, cand_code: str, *, sandbox: SandboxConfig | None,
                  timeout: float, compile_timeout: float = 20.0, unit_names: tuple[str, ...] = (),
                  keep: tuple[str, ...] = ()) -> EquivRun:
    """Compile and run ``testbench`` (top ``verirl_equiv_tb``) with both designs (``unit_names`` and
    ``keep``: see :func:`golden_for_simulation`)."""
    nonce = secrets.token_hex(16)
    header = (f"`define VERIRL_REPORT(p, t, sp, st) begin $display(\"VERIRL-RESULT-{nonce} %0d %0d %0d %0d\", "
              "(p), (t), (sp), (st)); $finish; end\n")
    files = {FILES[0]: header + testbench + "\n`undef VERIRL_REPORT\n",
             FILES[1]: golden_for_simulation(gold_code, unit_names, keep), FILES[2]: cand_code}
    iverilog, vvp = find_tool("iverilog"), find_tool("vvp")
    with Workspace(files, sandbox) as ws:
        comp = ws.run([iverilog, *IVERILOG_FLAGS, "-o", "verirl_equiv.vvp", "-s", "verirl_equiv_tb", *FILES],
                      timeout=compile_timeout)
        if not comp.ok:
            failure = classify_compile_failure(comp)
            golden_failed = any(line.startswith(FILES[1] + ":") for line in comp.output.splitlines())
            return EquivRun(failure, log=tail(comp.output), at_fault="golden" if golden_failed else "candidate",
                            compile_seconds=comp.elapsed)
        run = ws.run([vvp, "-n", "verirl_equiv.vvp", "-none"], timeout=timeout)
    result = _verdict(run, nonce)
    result.compile_seconds, result.run_seconds = comp.elapsed, run.elapsed
    if comp.output.strip():
        result.log = tail(comp.output.strip() + "\n" + result.log)
    return result


def compile_only(gold_code: str, cand_code: str, testbench: str, *, sandbox: SandboxConfig | None,
                 timeout: float = 20.0, unit_names: tuple[str, ...] = (), keep: tuple[str, ...] = ()) -> EquivRun:
    """Compile the three files as :func:`run_testbench` would, without running them."""
    files = {FILES[0]: "`define VERIRL_REPORT(p, t, sp, st) $finish;\n" + testbench + "\n`undef VERIRL_REPORT\n",
             FILES[1]: golden_for_simulation(gold_code, unit_names, keep), FILES[2]: cand_code}
    iverilog = find_tool("iverilog")
    with Workspace(files, sandbox) as ws:
        comp = ws.run([iverilog, *IVERILOG_FLAGS, "-tnull", "-s", "verirl_equiv_tb", *FILES], timeout=timeout)
    if comp.ok:
        return EquivRun(None, compile_seconds=comp.elapsed)
    golden_failed = any(line.startswith(FILES[1] + ":") for line in comp.output.splitlines())
    return EquivRun(classify_compile_failure(comp), log=tail(comp.output),
                    at_fault="golden" if golden_failed else "candidate", compile_seconds=comp.elapsed)


_RESULT = r"^VERIRL-RESULT-{nonce} (\d+) (\d+) (\d+) (\d+)$"


def _verdict(run, nonce: str) -> EquivRun:
    from .errors import InfrastructureError

    out = run.stdout
    log = tail(run.output)
    if run.timed_out:
        return EquivRun("timeout", stdout=out, log=log)
    if run.output_flood or run.killed_by_limit:
        return EquivRun("resource", stdout=out, log=log)
    if run.signal is not None:
        raise InfrastructureError(f"vvp was killed by signal {run.signal}: {tail(run.output, 500)}")
    found = re.findall(_RESULT.format(nonce=nonce), out, re.MULTILINE)
    if len(found) != 1:
        reason = "no verdict" if not found else "more than one verdict"
        return EquivRun("missing_result", stdout=out, log=f"{reason}: the simulation ended before the testbench "
                        f"reported\n{log}")
    passed, total, seq_passed, seq_total = (int(x) for x in found[0])
    if total <= 0:
        return EquivRun("missing_result", stdout=out, log=f"the testbench ran no checks\n{log}")
    failure = None if passed == total else "mismatch"
    return EquivRun(failure, passed, total, seq_passed, seq_total, stdout=out, log=log)
