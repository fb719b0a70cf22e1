"""Failure classes as VerilogEval defines them, read from Icarus compiler and simulator logs.

VerilogEval v2 (``scripts/sv-iv-analyze``) classifies each failed sample by scanning its compile-and-run log line
by line; the first line that matches one of the "stop" patterns decides, in this order of checks within a line:
``syntax error`` → syntax; ``This assignment requires an explicit cast`` → explicit cast; ``Sized numeric constant
must have a size greater than zero`` → zero-width constant; ``always_comb process has no sensitivities`` or ``found
no sensitivities so it will never trigger`` → no sensitivities; ``is declared here as wire`` → wire assigned as
reg; ``Unknown module type`` → unknown module; ``Unable to bind wire/reg/memory `clk'`` → unbound clock;
``TIMEOUT`` → timeout. After the scan: any ``Unable to bind wire/reg`` → unbound port; any other line containing
``error`` → other compile error; otherwise a runtime failure, split into "reset issue" when the design's source
mentions ``posedge reset``, ``negedge reset`` or ``posedge r)`` and "runtime mismatch" otherwise. We apply the same
rules to both benchmarks.

verirl adds the classes the reward engine detects before or around simulation: ``format`` (no code in the reply),
``forbidden`` (the sanitizer rejected the code: system tasks, ``include``, hierarchical references — the exploit
attempts), ``missing_result`` (the testbench never printed its verdict: early ``$finish``, crash), ``resource``
(memory/output limits), ``broken_reference`` (the reward engine refused the problem because the benchmark's own
reference fails its testbench on this simulator: a benchmark defect, counted as a failure like the official harness
does and listed separately in the report) and ``unscorable`` (infrastructure or other task fault: never counted
against the model).
"""

from __future__ import annotations

import re

#: name → (VerilogEval's one-letter code or a verirl code, description); order is the report order.
FAILURE_CLASSES: dict[str, tuple[str, str]] = {
    "syntax": ("S", "syntax error"),
    "explicit_cast": ("e", "assignment requires an explicit cast"),
    "zero_width_constant": ("0", "sized numeric constant of size zero"),
    "no_sensitivities": ("n", "always block with no sensitivities"),
    "wire_as_reg": ("w", "wire assigned as a reg"),
    "unknown_module": ("m", "unknown module type"),
    "unbound_clock": ("c", "unbound clock signal"),
    "unbound_port": ("p", "unbound port or signal"),
    "compile_error": ("C", "other compile error"),
    "timeout": ("T", "simulation timeout"),
    "reset_issue": ("r", "runtime mismatch, design uses an asynchronous reset"),
    "runtime_mismatch": ("R", "runtime mismatch"),
    "missing_result": ("M", "testbench printed no verdict (early $finish or crash)"),
    "format": ("F", "no Verilog code in the reply"),
    "forbidden": ("X", "code rejected by the sanitizer (system tasks, include, hierarchical references)"),
    "resource": ("L", "resource limit (memory, output) exceeded"),
    "broken_reference": ("B", "the benchmark's reference fails its own testbench here (benchmark defect)"),
    "unscorable": ("?", "infrastructure or task fault: not counted against the model"),
}

_STOP_PATTERNS: tuple[tuple[str, str], ...] = (
    ("syntax error", "syntax"),
    ("error: This assignment requires an explicit cast", "explicit_cast"),
    ("error: Sized numeric constant must have a size greater than zero", "zero_width_constant"),
    ("warning: always_comb process has no sensitivities", "no_sensitivities"),
    ("found no sensitivities so it will never trigger", "no_sensitivities"),
    ("is declared here as wire", "wire_as_reg"),
    ("Unknown module type", "unknown_module"),
    ("Unable to bind wire/reg/memory `clk'", "unbound_clock"),
    ("TIMEOUT", "timeout"),
)
#: how the reward engine words the task fault of a reference that fails its own testbench
BROKEN_REFERENCE_MARK = "the reference fails its own testbench"
_RESET_MARKERS = ("posedge reset", "negedge reset", "posedge r)")
_COMPILE_LIKE = {"syntax", "compile", "elaboration", "interface_mismatch"}
_MISMATCH_LINE = re.compile(r"^Mismatches: (\d+) in \d+ samples$")


def classify_log(log: str, code: str = "") -> str:
    """VerilogEval's failure class of a failed sample from its log (and the candidate's source)."""
    unbound = other_error = False
    for line in log.splitlines():
        for pattern, name in _STOP_PATTERNS[:-1]:
            if pattern in line:
                return name
        if "error" in line:
            other_error = True
        if "Unable to bind wire/reg" in line:
            unbound = True
        if _STOP_PATTERNS[-1][0] in line:
            return "timeout"
    if unbound:
        return "unbound_port"
    if other_error:
        return "compile_error"
    return runtime_class(code)


def runtime_class(code: str) -> str:
    """``reset_issue`` when the design has VerilogEval's asynchronous-reset markers, else ``runtime_mismatch``."""
    return "reset_issue" if any(marker in (code or "") for marker in _RESET_MARKERS) else "runtime_mismatch"


def classify(failure: str | None, log: str = "", code: str = "", passed: bool | None = None) -> str | None:
    """Failure class of one scored sample from the reward engine's verdict (``Score.failure``) and its log.

    ``None`` when the sample passed. For task faults, ``log`` is the engine's reason. Compile-stage failures are refined with VerilogEval's log rules; simulation
    failures become timeout / reset issue / runtime mismatch.
    """
    if passed:
        return None
    if failure == "task_error" and BROKEN_REFERENCE_MARK in (log or ""):
        return "broken_reference"
    if failure in ("infrastructure", "task_error") or (passed is None and failure is None):
        return "unscorable"
    if failure in ("format", "forbidden", "missing_result", "resource", "timeout"):
        return failure
    if failure in _COMPILE_LIKE:
        name = classify_log(log, code)
        if name in ("reset_issue", "runtime_mismatch"):  # the engine saw a compile failure the patterns miss
            return "syntax" if failure == "syntax" else "compile_error"
        return name
    if failure == "mismatch":
        return "timeout" if "TIMEOUT" in log else runtime_class(code)
    return classify_log(log, code)


def code_of(name: str | None) -> str:
    """One-letter code (``.`` for a pass), as in VerilogEval's per-sample result strings."""
    if name is None:
        return "."
    return FAILURE_CLASSES.get(name, ("?", ""))[0]
