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

import contextlib
import dataclasses
import logging
import re
import secrets
from collections.abc import Iterator

from . import lexer, merged_gate
from .errors import InfrastructureError, TaskError
from .sandbox import SandboxConfig, ToolResult, Workspace, stage
from .sanitize import DEFAULT_TIMESCALE, Sanitized, rename_modules
from .syntax import (
    IVERILOG_FLAGS,
    MAX_IMAGE_BYTES,
    ParameterSet,
    SyntaxResult,
    check_in_context,
    check_syntax,
    classify_compile_failure,
    head,
    known_defaults,
    remember_defaults,
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
    sim_cpu_seconds: float = 0.0
    """CPU seconds of the simulation run: the unit of the adaptive timeout (wall time depends on the load)."""
    compile_log: str = ""
    """The compiler's messages from their beginning (:func:`head`), whole where ``log`` keeps only its tail."""


@dataclasses.dataclass(frozen=True)
class SimLimits:
    """CPU-time budgets (seconds) of one compile and one simulation. CPU time, not wall-clock time, so a loaded
    machine never makes a design time out (see :meth:`rewards.sandbox.Workspace.run`).

    The simulation's budget adapts to the CPU time the reference's own simulation used:
    ``timeout_factor x reference + timeout_margin``, within ``[min_timeout, max_timeout]``. CPU time varies little
    from run to run (a few milliseconds), so the margin is small and an endless loop costs about ten reference
    runs, not a fixed fraction of a second."""

    compile_timeout: float = 20.0
    min_timeout: float = 0.05
    timeout_factor: float = 10.0
    timeout_margin: float = 0.02
    max_timeout: float = 20.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, (int, float)) or value < 0 or (field.name != "timeout_margin" and value == 0):
                raise ValueError(f"SimLimits.{field.name} must be a positive number of seconds, got {value!r}")
        if self.min_timeout > self.max_timeout:
            raise ValueError(f"SimLimits.min_timeout ({self.min_timeout}) exceeds max_timeout ({self.max_timeout})")

    def run_timeout(self, reference_seconds: float | None) -> float:
        """The candidate's simulation budget, from the reference's simulation CPU seconds (``None``: not run)."""
        if reference_seconds is None:
            return self.max_timeout
        budget = self.timeout_factor * reference_seconds + self.timeout_margin
        return min(self.max_timeout, max(self.min_timeout, budget))


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
        if "`timescale" not in text:
            continue
        for tok in lexer.trusted_tokens(text):
            if tok.text == "`timescale" and tok.kind == lexer.DIRECTIVE:
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
    """Compile canonical ``candidate`` with the task's testbench and run it (no gate: see :func:`compile_candidate`).

    ``defaults``: ``top``'s default parameter values as the gate elaborated them (looked up from
    :func:`rewards.syntax.known_defaults` when not given). ``trusted=True`` (the task's own reference)
    skips the parameter check. ``run=False`` stops after a successful compile (a pass without checks).
    ``run_timeout``: the simulation's CPU budget in seconds (default ``limits.max_timeout``).
    """
    with compile_candidate(task, candidate, config=config, limits=limits, trusted=trusted) as compiled:
        if compiled.failure is not None:
            return compiled.failure
        if not run:
            return SimResult(True, None, 1.0, tail(compiled.output), compile_seconds=compiled.compile_seconds,
                             compile_log=head(compiled.output))
        if not trusted:
            refused = compiled.context_gate(defaults)
            if refused is not None:
                return refused
        return compiled.run(run_timeout)


@contextlib.contextmanager
def compile_candidate(task: Task, candidate: Sanitized | str, *, config: SandboxConfig | None = None,
                      limits: SimLimits = SimLimits(), trusted: bool = False, gate: bool = False,
                      parameters: bool = False) -> Iterator[Compiled]:
    """Compile ``candidate`` (its canonical text) with the task's testbench, in a sandbox directory that lives as
    long as the block; :meth:`Compiled.run` simulates it.

    ``gate=True`` (a :class:`~rewards.sanitize.Sanitized` candidate) also decides the elaboration gate: in the
    same compiler run when :mod:`rewards.merged_gate` allows it, else by :func:`rewards.syntax.check_syntax` first
    (``Compiled.gate``; when it fails, nothing is compiled for simulation). ``parameters``: the gate reports
    ``top``'s default parameter values. ``Compiled.failure`` is set when the simulation compile fails.
    """
    if not task.testbench:
        raise TaskError(f"task {task.id!r} has no testbench to simulate against")
    sanitized = candidate if isinstance(candidate, Sanitized) else None
    code = candidate.code if isinstance(candidate, Sanitized) else candidate
    if gate and sanitized is None:
        raise TypeError("the gate needs the candidate's Sanitized result")
    nonce = secrets.token_hex(16)
    files: dict[str, str] = dict(task.files)
    files[TB_FILE] = _testbench_file(task, nonce)
    order = [TB_FILE]
    ref = _reference_file(task)
    if ref is not None:
        files[REF_FILE] = ref
        order.append(REF_FILE)
    files[CANDIDATE_FILE] = code
    order.append(CANDIDATE_FILE)
    with Workspace(files, config) as ws:
        compiled = Compiled(task, code, nonce, ws, config, limits, order, trusted=trusted)
        reason = "not gated" if not gate else merged_gate.mergeable(sanitized, task.testbench, ref)
        if gate and reason is None:
            with stage("compile"):
                reason = compiled.compile_merged(sanitized, parameters)
            if not reason:
                yield compiled
                return
        compiled.gate_reason = reason
        if gate:
            with stage("gate"):
                compiled.gate = check_syntax(code, task.top, config=config, timeout=limits.compile_timeout,
                                             parameters=parameters)
            if not compiled.gate.ok:
                yield compiled
                return
        refused = None if trusted else _query_refusal(task, code, ref)
        if refused is not None:
            compiled.failure = refused
        else:
            with compiled.stage("compile"):
                compiled.compile_separately()
        yield compiled


def _query_refusal(task: Task, code: str, ref: str | None) -> SimResult | None:
    shared = lexer.unit_names(task.testbench or "") | (lexer.unit_names(ref) if ref is not None else frozenset())
    if not shared:
        return None
    found = query_argument_names(code)
    queried = found if "*" in shared else found & shared
    if queried:
        return SimResult(False, "forbidden", 0.0, f"the design queries {', '.join(sorted(queried))}, declared in "
                         "the testbench's compilation unit: it cannot see it on its own")
    return None


@dataclasses.dataclass
class Compiled:
    """A candidate compiled with its testbench (see :func:`compile_candidate`)."""

    task: Task
    candidate: str
    nonce: str
    workspace: Workspace
    config: SandboxConfig | None
    limits: SimLimits
    order: list[str]
    trusted: bool = False
    """The task's own reference: its runs are booked under the caller's stage (``reference``)."""
    gate: SyntaxResult | None = None
    """The gate's verdict (``None`` when the candidate was not gated)."""
    gate_reason: str = ""
    """Why the gate ran on its own instead of inside the simulation compile (empty when it did not)."""
    failure: SimResult | None = None
    """The simulation compile failed (or the design was refused before it)."""
    image: bytes | None = None
    output: str = ""
    """The compiler's messages (the gate's own lines removed)."""
    compile_seconds: float = 0.0
    instances: list[ParameterSet] | None = None
    defaults: ParameterSet | None = None
    _context: tuple[SimResult | None] | None = None

    def stage(self, name: str):
        return contextlib.nullcontext() if self.trusted else stage(name)

    @property
    def merged(self) -> bool:
        return self.gate is not None and self.gate.ok and not self.gate_reason

    def _argv(self, extra_roots: tuple[str, ...] = ()) -> list[str]:
        argv = [find_tool("iverilog"), *IVERILOG_FLAGS, "-o", IMAGE_FILE]
        if self.task.harness == "verilog-eval":  # the official harness's warning flags, so logs read the same
            argv += ["-Wall", "-Winfloop", "-Wno-timescale"]
        if self.task.tb_top:
            argv += ["-s", self.task.tb_top, *(x for root in extra_roots for x in ("-s", root))]
        return argv

    def compile_merged(self, sanitized: Sanitized, parameters: bool) -> str:
        """The gate and the simulation compile in one run; "" when that decided both, else why not."""
        plan = merged_gate.plan(self.task.top)
        self.workspace.write(merged_gate.GATE_FILE, merged_gate.wrapper(plan, self.task.top))
        try:
            comp = self.workspace.run([*self._argv((plan.root,)), *self.order, merged_gate.GATE_FILE],
                                      timeout=self.limits.compile_timeout)
        finally:
            self.workspace.remove(merged_gate.GATE_FILE)
        if not comp.ok:
            if comp.signal is None and not comp.timed_out and not comp.output_flood and "syntax error" in comp.output:
                log = merged_gate.standalone_log(comp.output, CANDIDATE_FILE)
                self.gate = SyntaxResult(False, "syntax", tail(log), comp.elapsed, compile_log=head(log))
                self.compile_seconds = comp.elapsed
                return ""
            return "the joint compile failed"
        image = self.workspace.read(IMAGE_FILE, MAX_IMAGE_BYTES + 1)
        if image is None:
            raise InfrastructureError("iverilog reported success but wrote no compiled image")
        if len(image) > MAX_IMAGE_BYTES:
            return "the joint image is too large"
        found = merged_gate.inspect(image, comp.output, plan, sanitized)
        if found.image is None:
            return found.reason
        self.gate = SyntaxResult(True, None, "", comp.elapsed, found.defaults if parameters else None)
        if parameters:
            remember_defaults(sanitized.code, self.task.top, found.defaults)
        self.image, self.instances, self.defaults = found.image, found.instances, found.defaults
        self.output = merged_gate.filter_log(comp.output, plan)
        self.compile_seconds = comp.elapsed
        return ""

    def compile_separately(self) -> None:
        comp = self.workspace.run([*self._argv(), *self.order], timeout=self.limits.compile_timeout)
        self.compile_seconds = comp.elapsed
        self.output = comp.output
        if not comp.ok:
            self.failure = SimResult(False, classify_compile_failure(comp), 0.0, tail(comp.output),
                                     compile_seconds=comp.elapsed, compile_log=head(comp.output))
            return
        image = self.workspace.read(IMAGE_FILE, MAX_IMAGE_BYTES + 1)
        if image is None:
            raise InfrastructureError("iverilog reported success but wrote no compiled image")
        if len(image) > MAX_IMAGE_BYTES:
            self.failure = SimResult(False, "resource", 0.0, f"the compiled design is larger than "
                                     f"{MAX_IMAGE_BYTES >> 20} MiB", compile_seconds=comp.elapsed)
            return
        self.image = image
        if self.gate is not None:
            self.defaults = self.gate.parameters

    def context_gate(self, defaults: ParameterSet | None = None) -> SimResult | None:
        """The gate's second half: ``None`` when the candidate elaborates alone with the parameter values the
        testbench gives ``top``, else the ``forbidden`` (or ``timeout``/``resource``) result. Decided once."""
        assert self.image is not None
        if self._context is not None:
            return self._context[0]
        if self.instances is not None:
            found = self.instances
        else:
            found = top_parameters(self.image.decode("utf-8", errors="replace"), self.task.top)
        defaults = defaults if defaults is not None else self.defaults
        with self.stage("context"):
            refused = _context_gate(self.task, self.candidate, found, defaults, self.config, self.limits)
        if refused is not None:
            refused.compile_seconds = self.compile_seconds
            refused.compile_log = head(self.output)
        self._context = (refused,)
        return refused

    def run(self, run_timeout: float | None = None) -> SimResult:
        """Simulate the compiled image; ``run_timeout`` is the CPU budget (default ``limits.max_timeout``)."""
        assert self.image is not None and self.failure is None
        ws = self.workspace
        # the secret is in the testbench source and in the image: neither stays readable by the run
        for name in (*self.order, IMAGE_FILE):
            ws.remove(name)
        timeout = run_timeout if run_timeout is not None else self.limits.max_timeout
        # -n: $stop acts as $finish (never an interactive prompt); -none: no waveform dump is written
        with self.stage("simulate"):
            ran = ws.run([find_tool("vvp"), "-n", "/dev/stdin", "-none"], timeout=timeout, stdin=self.image)
        result = _verdict(self.task, ran, self.nonce)
        if self.merged and result.failure == "resource":
            return self._separate_rerun(timeout)  # the gate's nets added memory: decide without them
        if self.output.strip():  # compiler warnings (e.g. missing sensitivities) explain many mismatches
            result.log = tail(self.output.strip() + "\n" + result.log)
        result.compile_log = head(self.output)
        result.compile_seconds = self.compile_seconds
        result.sim_seconds = ran.elapsed
        result.sim_cpu_seconds = ran.cpu_seconds
        return result

    def _separate_rerun(self, timeout: float) -> SimResult:
        files = {TB_FILE: _testbench_file(self.task, self.nonce), CANDIDATE_FILE: self.candidate}
        ref = _reference_file(self.task)
        if ref is not None:
            files[REF_FILE] = ref
        for name, text in files.items():
            self.workspace.write(name, text)
        self.gate_reason = "the simulation with the gate's nets ran out of memory"
        self.instances = None
        with self.stage("compile"):
            self.compile_separately()
        if self.failure is not None:
            return self.failure
        return self.run(timeout)


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


def _context_gate(task: Task, candidate: str, found: list[ParameterSet], defaults: ParameterSet | None,
                  config: SandboxConfig | None, limits: SimLimits) -> SimResult | None:
    """``None`` when the candidate elaborates alone with the parameter values the testbench gave it."""
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
