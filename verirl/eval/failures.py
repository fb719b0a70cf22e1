"""Failure classes, and VerilogEval's own reading of a compile-and-run log (``scripts/sv-iv-analyze``).

:func:`sv_iv_analyze` is a line-for-line port of the per-sample analysis of NVlabs/verilog-eval's
``scripts/sv-iv-analyze`` (commit c498220): it scans the log (compiler output, then the simulator's) line by line,
and the first line that matches a "stop" pattern decides, checked in this order within a line:

=====  ==================================================================================================
``S``  ``syntax error``
``e``  ``error: This assignment requires an explicit cast``
``0``  ``error: Sized numeric constant must have a size greater than zero``
``n``  ``warning: always_comb process has no sensitivities`` or ``found no sensitivities so it will never
       trigger`` — a *warning*: the sample fails even when the simulation prints ``Mismatches: 0``
``w``  ``is declared here as wire``
``m``  ``Unknown module type``
``c``  ``Unable to bind wire/reg/memory `clk'``
``T``  ``TIMEOUT`` (printed by the testbench, or by the harness after ``timeout 30``)
=====  ==================================================================================================

After the scan: any ``Unable to bind wire/reg`` line → ``p``; any other line containing ``error`` → ``C``; a line
``Mismatches: 0 in N samples`` → ``.`` (pass); otherwise the sample's source decides: ``r`` when it contains
``posedge reset``, ``negedge reset`` or ``posedge r)``, else ``R``.

verirl adds the classes the reward engine detects before or around simulation: ``format`` (no code in the reply),
``forbidden`` (the sanitizer rejected the code: system tasks, ``include``, hierarchical references — the exploit
attempts), ``missing_result`` (the testbench never printed its verdict, or checked zero samples: early ``$finish``,
crash), ``resource`` (memory/output limits), ``broken_reference`` (the benchmark's own reference fails its
testbench on this simulator) and ``unscorable`` (infrastructure or other task fault; counted as a failure in pass@k
and reported with its reason).
"""

from __future__ import annotations

import re

#: name → (VerilogEval's one-letter code or a verirl code, description); order is the report order.
FAILURE_CLASSES: dict[str, tuple[str, str]] = {
    "syntax": ("S", "syntax error"),
    "explicit_cast": ("e", "assignment requires an explicit cast"),
    "zero_width_constant": ("0", "sized numeric constant of size zero"),
    "no_sensitivities": ("n", "always block with no sensitivities (a compiler warning; fails the sample)"),
    "wire_as_reg": ("w", "wire assigned as a reg"),
    "unknown_module": ("m", "unknown module type"),
    "unbound_clock": ("c", "unbound clock signal"),
    "unbound_port": ("p", "unbound port or signal"),
    "compile_error": ("C", "other compile error"),
    "timeout": ("T", "simulation timeout"),
    "reset_issue": ("r", "runtime mismatch, design uses an asynchronous reset"),
    "runtime_mismatch": ("R", "runtime mismatch"),
    "missing_result": ("M", "testbench printed no verdict or checked no sample (early $finish or crash)"),
    "format": ("F", "no Verilog code in the reply"),
    "forbidden": ("X", "code rejected by the sanitizer (system tasks, include, hierarchical references)"),
    "resource": ("L", "resource limit (memory, output) exceeded"),
    "broken_reference": ("B", "the benchmark's reference fails its own testbench here (benchmark defect)"),
    "unscorable": ("?", "infrastructure or task fault (counted as a failure; see its reason)"),
}
LETTER_CLASSES = {code: name for name, (code, _) in FAILURE_CLASSES.items()}
#: letters sv-iv-analyze decides from the log alone (compile errors, warnings, TIMEOUT)
LOG_LETTERS = frozenset("Se0nwmcTpC")

#: (pattern, letter), in sv-iv-analyze's order of checks within a line; "error" (→ C) sits after "syntax error"
_STOPS: tuple[tuple[str, str], ...] = (
    ("error: This assignment requires an explicit cast", "e"),
    ("error: Sized numeric constant must have a size greater than zero", "0"),
    ("warning: always_comb process has no sensitivities", "n"),
    ("found no sensitivities so it will never trigger", "n"),
    ("is declared here as wire", "w"),
    ("Unknown module type", "m"),
)
_MISMATCH = re.compile(r"^Mismatches: (\d+) in \d+ samples$")
_RESET_MARKERS = ("posedge reset", "negedge reset", "posedge r)")
#: how the reward engine words the task fault of a reference that fails its own testbench
BROKEN_REFERENCE_MARK = "the reference fails its own testbench"
_COMPILE_LIKE = {"syntax", "compile", "elaboration", "interface_mismatch"}


def sv_iv_analyze(log: str, code: str) -> str:
    """VerilogEval's result letter for one sample: ``.`` (pass) or a failure letter (see the module docstring).

    ``log`` is the sample's compile-and-run log, ``code`` the sample file as the harness wrote it (only read for
    the reset markers). Lines are split as Python's text-mode file iteration splits them (universal newlines).
    """
    letter = "?"
    error_c = error_p = no_mismatch = False
    for line in log.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if "syntax error" in line:
            letter = "S"
            break
        if "error" in line:
            error_c = True
        stop = next((lt for pattern, lt in _STOPS if pattern in line), None)
        if stop:
            letter = stop
            break
        if "Unable to bind wire/reg" in line:
            error_p = True
        if "Unable to bind wire/reg/memory `clk'" in line:
            letter = "c"
            break
        if "TIMEOUT" in line:
            letter = "T"
            break
        match = _MISMATCH.match(line)
        if match and int(match.group(1)) == 0:
            no_mismatch = True
    if letter == "?" and error_p:
        letter = "p"
    if letter == "?" and error_c:
        letter = "C"
    if letter == "?" and no_mismatch:
        letter = "."
    if letter == "?":
        letter = "r" if runtime_class(code) == "reset_issue" else "R"
    return letter


def classify_log(log: str, code: str = "") -> str | None:
    """The failure class sv-iv-analyze gives a log (``None`` for a pass)."""
    letter = sv_iv_analyze(log, code)
    return None if letter == "." else LETTER_CLASSES[letter]


def runtime_class(code: str) -> str:
    """``reset_issue`` when the design has VerilogEval's asynchronous-reset markers, else ``runtime_mismatch``."""
    return "reset_issue" if any(marker in (code or "") for marker in _RESET_MARKERS) else "runtime_mismatch"


def classify(failure: str | None, log: str = "", code: str = "", passed: bool | None = None) -> str | None:
    """Failure class of one sample from the reward engine's verdict (``Score.failure``) and its log.

    ``None`` when the sample passed. For task faults, ``log`` is the engine's reason. Compile-stage failures are
    refined with VerilogEval's log rules; simulation failures become timeout / reset issue / runtime mismatch.
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
        letter = sv_iv_analyze(log, code)
        if letter in LOG_LETTERS:
            return LETTER_CLASSES[letter]
        return "syntax" if failure == "syntax" else "compile_error"  # a compile failure the patterns miss
    if failure == "mismatch":
        return "timeout" if "TIMEOUT" in log else runtime_class(code)
    return classify_log(log, code) or "runtime_mismatch"


def official_class(engine_passed: bool | None, engine_failure: str | None, log: str,
                   code: str) -> tuple[bool, str | None]:
    """(passed, class) of a VerilogEval sample under the official analysis of the engine's log.

    The engine ran the official compile (same flags) and the testbench; ``log`` is its compiler output followed
    by the simulator's. A log line that sv-iv-analyze stops at (compile error, sensitivity warning, TIMEOUT) fails
    the sample with that letter, even when the simulation printed ``Mismatches: 0``. Otherwise the engine's
    verdict stands, with its stricter reading of the result (``Mismatches: 0 in 0 samples``, a verdict printed by
    the candidate, a hierarchical read of the reference — all passes for the official script — fail here).
    """
    if engine_failure in ("format", "forbidden", "resource", "infrastructure", "task_error"):
        return False, classify(engine_failure, log, code, engine_passed)
    letter = sv_iv_analyze(log, code)
    if letter in LOG_LETTERS:
        return False, LETTER_CLASSES[letter]
    if engine_passed:
        return True, None
    return False, classify(engine_failure, log, code, engine_passed)


def code_of(name: str | None) -> str:
    """One-letter code (``.`` for a pass), as in VerilogEval's per-sample result strings."""
    if name is None:
        return "."
    return FAILURE_CLASSES.get(name, ("?", ""))[0]
