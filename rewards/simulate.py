"""Function level by simulation: run the candidate against the task's self-checking testbench.

Files are compiled in the order testbench, reference, candidate. The candidate file is its
canonical text (:mod:`rewards.sanitize`): it uses no macro and sets ```timescale`` and
```default_nettype`` itself, so nothing the testbench or the reference defines changes what it
says, and the testbench is parsed before it. Names the trusted sources declare at file scope (the
compilation unit: ``typedef``, ``localparam``, functions, variables...) are visible to the
candidate in the simulation only (``iverilog -u`` does not hide parameters, functions or variables):
any use of them fails the gate, except as the argument of ``$bits``, which Icarus evaluates to 0
for a name it cannot resolve instead of failing. A candidate naming one of them there is refused.

The ``verirl`` harness defines ``VERIRL_REPORT`` at the top of the testbench and undefines it at
its end; the report line carries a per-run secret (a random nonce).

Before the simulation runs:

* the parameter values each instance of ``top`` got from the testbench are read from the
  compiled image; where they differ from the defaults the gate elaborated, the candidate is
  elaborated alone again with them (:func:`rewards.syntax.check_in_context`), and a candidate that
  only elaborates inside the testbench is ``forbidden``;
* every source file is deleted and the compiled image is handed to ``vvp`` through a pipe, so
  nothing in the simulator's directory holds the secret while the candidate runs (see
  docs/sandbox.md for what remains trusted).

A simulation that ends without a valid verdict is ``missing_result``, never a pass.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import secrets

from . import lexer
from .errors import InfrastructureError, TaskError
from .sandbox import SandboxConfig, ToolResult, Workspace
from .sanitize import DEFAULT_TIMESCALE, rename_modules
from .syntax import (
    IVERILOG_FLAGS,
    MAX_IMAGE_BYTES,
    ParameterSet,
    check_in_context,
    classify_compile_failure,
    known_defaults,
    tail,
    top_parameters,
)
from .task import Task
from .toolchain import find_tool

logger = logging.getLogger(__name__)

REF_PREFIX = "ref_"
TB_FILE = "verirl_tb.v"
REF_FILE = "verirl_ref.v"
CANDIDATE_FILE = "verirl_cand.v"
IMAGE_FILE = "verirl_sim.vvp"
_VE_RESULT = re.compile(r"^Mismatches:\s*(\d+)\s+in\s+(\d+)\s+samples", re.MULTILINE)
_RTLLM_PASS = re.compile(r"Your Design Passed", re.IGNORECASE)
_RTLLM_FAIL = re.compile(r"=+\s*Error\s*=+|Test completed with\s+\d+\s*/\s*\d+\s+failures|\bfailed\b", re.IGNORECASE)
_TIMESCALE = re.compile(r"[ \t]*(1|10|100)[ \t]*(s|ms|us|ns|ps|fs)[ \t]*/[ \t]*(1|10|100)[ \t]*(s|ms|us|ns|ps|fs)")


@dataclasses.dataclass
class SimResult:
    passed: bool
    failure: str | None
    pass_fraction: float
    log: str
    stdout: str = ""
    compile_seconds: float = 0.0
    sim_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class SimLimits:
    """Timeouts for one simulation; the run timeout adapts to the reference's own run time."""

    compile_timeout: float = 20.0
    min_timeout: float = 0.3
    timeout_factor: float = 10.0
    max_timeout: float = 20.0

    def run_timeout(self, reference_seconds: float | None) -> float:
        if reference_seconds is None:
            return self.max_timeout
        return min(self.max_timeout, max(self.min_timeout, self.timeout_factor * reference_seconds + 0.2))


def reference_as_candidate(task: Task) -> str:
    """The task's golden design, named as the candidate must be named."""
    if task.reference is None:
        raise TaskError(f"task {task.id!r} has no reference design")
    if task.harness == "verilog-eval":
        return rename_modules(task.reference, {"RefModule": task.top})
    return task.reference


def task_timescale(task: Task) -> str:
    """The ```timescale`` in force where the candidate used to be compiled: the last one in the trusted
    sources (testbench, then reference), else Icarus' default ``1s/1s``; ``1ns/1ps`` without a testbench.

    The candidate's canonical text states it explicitly, so its delays keep the meaning the task's
    author gave them while nothing of the testbench's context reaches the candidate."""
    if not task.testbench:
        return DEFAULT_TIMESCALE
    found = "1s/1s"
    for text in (task.testbench, _reference_file(task) or ""):
        tokens = lexer.tokenize(text)
        for i, tok in enumerate(tokens):
            if tok.kind == lexer.DIRECTIVE and tok.text == "`timescale":
                end = text.find("\n", tok.end)
                rest = text[tok.end:len(text) if end < 0 else end].split("//")[0]
                m = _TIMESCALE.fullmatch(rest.rstrip())
                if m:
                    found = f"{m.group(1)}{m.group(2)}/{m.group(3)}{m.group(4)}"
    return found


def _testbench_file(task: Task, nonce: str) -> str:
    assert task.testbench is not None
    if task.harness != "verirl":
        return task.testbench
    header = (
        f"`define VERIRL_REPORT(p, t) begin $display(\"VERIRL-RESULT-{nonce} %0d %0d\", (p), (t)); "
        "$finish; end\n"
    )
    return header + task.testbench + "\n`undef VERIRL_REPORT\n"


def _reference_file(task: Task) -> str | None:
    if task.reference is None or task.harness == "rtllm":
        return None  # RTLLM testbenches instantiate only the design under test
    if task.harness == "verirl":
        names = lexer.module_names(task.reference)
        return rename_modules(task.reference, {n: REF_PREFIX + n for n in names})
    return task.reference


def simulate(
    task: Task,
    candidate: str,
    *,
    config: SandboxConfig | None = None,
    limits: SimLimits = SimLimits(),
    run_timeout: float | None = None,
    trusted: bool = False,
    defaults: ParameterSet | None = None,
    run: bool = True,
) -> SimResult:
    """Compile canonical ``candidate`` with the task's testbench and run it.

    ``defaults``: ``top``'s default parameter values as the gate elaborated them (looked up from
    :func:`rewards.syntax.known_defaults` when not given). ``trusted=True`` (the task's own reference)
    skips the parameter check. ``run=False`` stops after a successful compile (a pass without checks).
    """
    if not task.testbench:
        raise TaskError(f"task {task.id!r} has no testbench to simulate against")
    nonce = secrets.token_hex(16)
    files: dict[str, str] = dict(task.files)
    files[TB_FILE] = _testbench_file(task, nonce)
    order = [TB_FILE]
    ref = _reference_file(task)
    if ref is not None:
        files[REF_FILE] = ref
        order.append(REF_FILE)
    files[CANDIDATE_FILE] = candidate
    order.append(CANDIDATE_FILE)
    shared = unit_names(task.testbench) | (unit_names(ref) if ref is not None else frozenset())
    if shared and not trusted:
        found = query_argument_names(candidate)
        queried = found if "*" in shared else found & shared
        if queried:
            return SimResult(False, "forbidden", 0.0, f"the design queries {', '.join(sorted(queried))}, declared in "
                             "the testbench's compilation unit: it cannot see it on its own")

    iverilog, vvp = find_tool("iverilog"), find_tool("vvp")
    argv = [iverilog, *IVERILOG_FLAGS, "-o", IMAGE_FILE]
    if task.harness == "verilog-eval":  # the official harness's warning flags, so logs read the same
        argv += ["-Wall", "-Winfloop", "-Wno-timescale"]
    if task.tb_top:
        argv += ["-s", task.tb_top]
    with Workspace(files, config) as ws:
        comp = ws.run([*argv, *order], timeout=limits.compile_timeout)
        if not comp.ok:
            failure = classify_compile_failure(comp)
            return SimResult(False, failure, 0.0, tail(comp.output), compile_seconds=comp.elapsed)
        image = ws.read(IMAGE_FILE, MAX_IMAGE_BYTES + 1)
        if image is None:
            raise InfrastructureError("iverilog reported success but wrote no compiled image")
        if len(image) > MAX_IMAGE_BYTES:
            return SimResult(False, "resource", 0.0, f"the compiled design is larger than "
                             f"{MAX_IMAGE_BYTES >> 20} MiB", compile_seconds=comp.elapsed)
        if not run:
            return SimResult(True, None, 1.0, tail(comp.output), compile_seconds=comp.elapsed)
        if not trusted:
            refused = _context_gate(task, candidate, image, defaults, config, limits)
            if refused is not None:
                refused.compile_seconds = comp.elapsed
                return refused
        # the secret is in the testbench source and in the image: neither stays readable by the run
        for name in (*order, IMAGE_FILE):
            ws.remove(name)
        timeout = run_timeout if run_timeout is not None else limits.max_timeout
        # -n: $stop acts as $finish (never an interactive prompt); -none: no waveform dump is written
        ran = ws.run([vvp, "-n", "/dev/stdin", "-none"], timeout=timeout, stdin=image)
    result = _verdict(task, ran, nonce)
    if comp.output.strip():  # compiler warnings (e.g. missing sensitivities) explain many mismatches
        result.log = tail(comp.output.strip() + "\n" + result.log)
    result.compile_seconds = comp.elapsed
    result.sim_seconds = ran.elapsed
    return result


_UNITS = {"module": "endmodule", "macromodule": "endmodule", "primitive": "endprimitive", "interface": "endinterface",
          "program": "endprogram", "package": "endpackage", "class": "endclass", "checker": "endchecker",
          "config": "endconfig"}


@functools.lru_cache(maxsize=512)
def unit_names(text: str) -> frozenset[str]:
    """A superset of the names trusted ``text`` declares in the compilation unit: every identifier outside
    design units (modules, packages, classes...) and directive lines; with a file-scope ``import``, every
    identifier of the packages too. ``"*"`` when a file-scope macro use or ```include`` may declare anything."""
    depth: list[str] = []
    tokens = lexer.tokenize(text)
    names: set[str] = set()
    in_package: set[str] = set()
    imports = False
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if not tok.significant:
            continue
        if tok.text == "(*":  # an attribute, whatever it annotates
            while i < len(tokens) and tokens[i].text != "*)":
                i += 1
            i += 1
            continue
        if tok.kind == lexer.DIRECTIVE:
            if tok.text[1:] in _DIRECTIVE_LINES:
                while i < len(tokens) and "\n" not in tokens[i].text:  # the rest of the directive's line
                    if tokens[i].text.endswith("\\") and i + 1 < len(tokens) and "\n" in tokens[i + 1].text:
                        i += 1  # a continued `define
                    i += 1
            elif not depth:
                return frozenset({"*"})  # a macro use or `include at file scope: it may declare anything
            continue
        name = lexer.identifier_name(tok)
        if tok.kind == lexer.IDENT and tok.text in _UNITS:
            depth.append(_UNITS[tok.text])
        elif tok.kind == lexer.IDENT and depth and tok.text == depth[-1]:
            depth.pop()
        elif name is not None and name not in lexer.KEYWORDS:
            if not depth:
                names.add(name)
            elif depth[0] == "endpackage":
                in_package.add(name)
        elif not depth and tok.text == "import":
            imports = True
    return frozenset(names | (in_package if imports else set()))


_DIRECTIVE_LINES = frozenset({"define", "undef", "timescale", "default_nettype", "resetall", "celldefine",
                              "endcelldefine", "ifdef", "ifndef", "elsif", "else", "endif", "line"})


def query_argument_names(code: str) -> set[str]:
    """Identifiers inside the arguments of query functions (``$bits``...) in ``code``."""
    from .sanitize import QUERY_FUNCTIONS

    tokens = [t for t in lexer.tokenize(code) if t.significant]
    found: set[str] = set()
    for i, tok in enumerate(tokens):
        if tok.kind != lexer.SYSTEM or tok.text not in QUERY_FUNCTIONS:
            continue
        depth = 0
        for t in tokens[i + 1:]:
            depth += {"(": 1, ")": -1}.get(t.text, 0)
            name = lexer.identifier_name(t)
            if name is not None:
                found.add(name)
            if depth <= 0:
                break
    return found


def _context_gate(task: Task, candidate: str, image: bytes, defaults: ParameterSet | None,
                  config: SandboxConfig | None, limits: SimLimits) -> SimResult | None:
    """``None`` when the candidate elaborates alone with the parameter values the testbench gave it."""
    found = top_parameters(image.decode("utf-8", errors="replace"), task.top)
    if defaults is None:
        defaults = known_defaults(candidate, task.top)
    if defaults is None:
        todo = [ps for ps in found if ps]  # unknown defaults: check every parameterised instance
    else:
        todo = [ps for ps in found if ps != defaults]
    if not todo:
        return None
    if any(kind == "unsupported" for ps in todo for _, kind, _ in ps):
        return SimResult(False, "forbidden", 0.0, f"module {task.top} takes a parameter override of a kind "
                         "the elaboration gate cannot reproduce; it cannot be checked")
    gate = check_in_context(candidate, task.top, todo, config=config, timeout=limits.compile_timeout)
    if gate.ok:
        return None
    if gate.failure in ("timeout", "resource"):
        return SimResult(False, gate.failure, 0.0, gate.log)
    return SimResult(False, "forbidden", 0.0, "the design elaborates inside the testbench but not on its own with "
                     "the parameter values the testbench gives it: it reaches outside its own hierarchy\n" + gate.log)


def _verdict(task: Task, run: ToolResult, nonce: str) -> SimResult:
    out = run.stdout
    log = tail(run.output)
    if run.timed_out:
        return SimResult(False, "timeout", 0.0, log, out)
    if run.output_flood or run.killed_by_limit:
        return SimResult(False, "resource", 0.0, log, out)
    if run.signal is not None:
        raise InfrastructureError(f"vvp was killed by signal {run.signal}: {tail(run.output, 500)}")
    if run.returncode != 0 and "/dev/stdin: Unable to open input file" in run.stderr:
        raise InfrastructureError("vvp could not read its compiled image from /dev/stdin (is /proc mounted in the "
                                  "sandbox?)")
    if task.harness == "verirl":
        return _verdict_verirl(out, log, nonce)
    if task.harness == "verilog-eval":
        return _verdict_verilog_eval(out, log)
    return _verdict_rtllm(out, log)


def _verdict_verirl(out: str, log: str, nonce: str) -> SimResult:
    marker = f"VERIRL-RESULT-{nonce} "
    lines = [line for line in out.splitlines() if line.startswith(marker)]
    if len(lines) != 1:
        reason = "no verdict" if not lines else "more than one verdict"
        return SimResult(False, "missing_result", 0.0, f"{reason}: the simulation ended before the testbench "
                         f"reported\n{log}", out)
    try:
        passed, total = (int(x) for x in lines[0][len(marker):].split())
    except ValueError:
        return SimResult(False, "missing_result", 0.0, f"unreadable verdict line\n{log}", out)
    if total <= 0:
        return SimResult(False, "missing_result", 0.0, f"the testbench ran no checks\n{log}", out)
    fraction = max(0.0, min(1.0, passed / total))
    ok = passed == total
    return SimResult(ok, None if ok else "mismatch", fraction, log, out)


def _verdict_verilog_eval(out: str, log: str) -> SimResult:
    if re.search(r"^TIMEOUT", out, re.MULTILINE):
        return SimResult(False, "timeout", 0.0, log, out)
    matches = _VE_RESULT.findall(out)
    if len(matches) != 1:
        return SimResult(False, "missing_result", 0.0, f"no single 'Mismatches: M in N samples' line\n{log}", out)
    mismatches, samples = int(matches[0][0]), int(matches[0][1])
    if samples <= 0:
        return SimResult(False, "missing_result", 0.0, f"zero samples checked (simulation ended early)\n{log}", out)
    fraction = max(0.0, 1.0 - mismatches / samples)
    ok = mismatches == 0
    return SimResult(ok, None if ok else "mismatch", fraction, log, out)


def _verdict_rtllm(out: str, log: str) -> SimResult:
    passed = _RTLLM_PASS.search(out) is not None
    failed = _RTLLM_FAIL.search(out.replace("Your Design Passed", "")) is not None
    if passed and not failed:
        return SimResult(True, None, 1.0, log, out)
    if failed:
        return SimResult(False, "mismatch", 0.0, log, out)
    return SimResult(False, "missing_result", 0.0, f"the testbench printed no verdict\n{log}", out)
