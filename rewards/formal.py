"""Formal equivalence with Yosys, on a model faithful to the simulation the testbench runs.

One Yosys run per check builds a *miter* of the two designs and asks the SAT solver for a
k-induction proof anchored at reset (``sat -tempinduct``):

* **The text Yosys reads is the text the simulator runs**, minus what only a synthesis tool reads:
  comments (``translate_off``, ``full_case``, ``parallel_case`` pragmas) and attribute instances
  (``(* full_case *)``, ``(* keep *)``, ``(* anyseq *)``) are blanked out, ``read_verilog
  -nosynthesis`` leaves ``SYNTHESIS`` undefined, and a conditional on a macro one of the tools
  predefines (``YOSYS``, ``SYNTHESIS``, ``__ICARUS__``...) or a use of `` `__FILE__`` refuses the
  check. ``always_comb`` is read as ``always @*`` (same simulation semantics; Yosys would only
  refuse the latches below).
* **Simulation semantics of X**: ``proc -ifx`` gives ``if``/``case`` on an X the simulator's
  meaning (no branch taken: the else branch, or no case item, which holds the previous value -- a
  latch, modelled as one), the SAT model is three-valued (``-enable_undef``), registers start X
  (``-set-init-undef``), undriven nets are X (``setundef -undriven -undef``), memories return X
  out of range (``memory -memx``). The comparison is the testbench's: a golden X accepts anything,
  a golden 0/1 needs the same candidate value (an X there is a difference). Designs with ``z`` are
  refused before this point (:mod:`rewards.equiv_hazards`).
* **Clock edges as the simulator sees them**: ``clk2fflogic`` replaces every flip-flop and latch by
  logic on one global step: clocks are ordinary inputs, an edge is a change between two steps,
  ``negedge`` differs from ``posedge``, asynchronous resets act within their step. The wrapper
  changes at most one input group per step (one clock bit, one reset, or the data inputs), as the
  testbench does, so the model never has to order a data change against a clock edge.
* **Induction with a base case from reset**: step 1 has every reset asserted and every clock at 0
  (the testbench's time 1); the base case checks every step from there (a model is a counterexample
  trace, replayed in simulation by the caller); the induction step, from an arbitrary state, makes
  the result a proof. ``Check -assert`` refuses multiple drivers and combinational loops.

Outcomes: ``equivalent`` (proven), ``not_equivalent`` (a trace), ``bounded`` (no difference within
``bound`` steps from reset, no proof) or ``undecided``. Model text never reaches a Yosys command
line: sources are written to fixed file names, the script is fixed text plus the top module name,
which the caller validated as a plain identifier, and every signal the script names is the
wrapper's own.
"""

from __future__ import annotations

import dataclasses
import logging
import re

from . import lexer
from .equiv_tb import InputLayout, vname
from .interface import ModuleInterface, is_identifier
from .sandbox import Workspace
from .toolchain import find_tool

logger = logging.getLogger(__name__)

_GOLD, _GATE, _TOP = "verirl_gold", "verirl_gate", "verirl_top"
_EQUIV, _RC_MITER, _RC_TOP = "verirl_equiv", "verirl_rcmiter", "verirl_rctop"
#: Macros a simulator or a synthesis tool defines by itself: a conditional on one differs by tool.
TOOL_MACROS = frozenset({"YOSYS", "SYNTHESIS", "FORMAL", "BLACKBOX", "SIMULATION", "__ICARUS__", "IVERILOG",
                         "VERILATOR", "XILINX_SIMULATOR", "MODEL_TECH", "VCS", "__FILE__", "__LINE__"})


class Unfaithful(Exception):
    """The design text means something else to Yosys than to the simulator."""


@dataclasses.dataclass
class FormalOutcome:
    verdict: str
    """``equivalent`` (proven), ``not_equivalent``, ``bounded`` or ``undecided``."""
    reason: str = ""
    trace: list[dict[str, int]] = dataclasses.field(default_factory=list)
    """For ``not_equivalent``: per step, the value of every input group (``ck<k>``, ``rs<k>``, ``d``)."""
    bound: int = 0
    """Steps from reset the base case covered without a difference."""
    log: str = ""
    elapsed: float = 0.0


def formal_text(code: str) -> str:
    """``code`` as Yosys must read it to see what the simulator runs (see the module documentation).

    Raises :class:`Unfaithful` for conditional compilation on a tool's own macros.
    """
    tokens = lexer.tokenize(code)
    defined: set[str] = set()
    out: list[str] = []
    sig = [i for i, t in enumerate(tokens) if t.significant]
    nxt = {sig[k]: sig[k + 1] for k in range(len(sig) - 1)}
    skip_until = -1
    for i, tok in enumerate(tokens):
        if i <= skip_until:
            out.append(_blank(tok.text))
            continue
        if tok.kind == lexer.COMMENT:
            out.append(_blank(tok.text))
            continue
        if tok.kind == lexer.DIRECTIVE:
            name = tok.text[1:]
            target = tokens[nxt[i]].text if i in nxt else ""
            if name == "define":
                defined.add(target)
            elif name in ("ifdef", "ifndef", "elsif") and target in TOOL_MACROS and target not in defined:
                raise Unfaithful(f"`{name} {target}: conditional compilation on a macro a tool defines by itself")
            elif name in ("__FILE__", "__LINE__"):
                raise Unfaithful(f"`{name} differs between the simulator's and Yosys's file")
        if tok.text == "(*" and tok.kind != lexer.COMMENT:  # an attribute instance (lexers that keep it whole)
            end = next((j for j in sig if j > i and tokens[j].text == "*)"), None)
            if end is not None:
                out.append(_blank(tok.text))
                skip_until = end
                continue
        if tok.text == "(" and i in nxt and tokens[nxt[i]].text == "*":
            star = nxt[i]
            after = nxt.get(star)
            if after is not None and tokens[after].text != ")":
                end = _attribute_end(tokens, sig, star)
                if end is not None:
                    out.append(_blank(tok.text))
                    skip_until = end
                    continue
        if tok.kind == lexer.IDENT and tok.text == "always_comb":
            out.append("always @*  ")
            continue
        out.append(tok.text)
    return "".join(out)


def _attribute_end(tokens, sig, star: int) -> int | None:
    """Index of the ``)`` closing an attribute instance whose ``(*`` ends at ``star``."""
    pos = sig.index(star)
    for k in range(pos + 1, len(sig) - 1):
        if tokens[sig[k]].text == "*" and tokens[sig[k + 1]].text == ")":
            return sig[k + 1]
        if tokens[sig[k]].text in (";", "begin", "end", "module", "endmodule"):
            return None
    return None


def _blank(text: str) -> str:
    return "".join(c if c == "\n" else " " for c in text)


def _group_ports(layout: InputLayout) -> list[str]:
    ports = []
    if layout.clocks:
        ports.append(f"input [{len(layout.clocks) - 1}:0] verirl_ck")
    if layout.resets:
        ports.append(f"input [{len(layout.resets) - 1}:0] verirl_rs")
    if layout.data:
        ports.append(f"input [{len(layout.data) - 1}:0] verirl_d")
    return ports


def _input_connections(iface: ModuleInterface, layout: InputLayout) -> list[str]:
    conns = []
    for port in iface.inputs:
        conns.append(f".{vname(port.name)}({layout.port_expr(port, 'verirl_ck', 'verirl_rs', 'verirl_d')})")
    return conns


def wrapper_source(iface: ModuleInterface, layout: InputLayout) -> str:
    """The miter: both designs on shared inputs, the comparison, and the one-group-per-step rule."""
    nc, nr, nd = len(layout.clocks), len(layout.resets), len(layout.data)
    ports = _group_ports(layout) + ["output verirl_ok", "output verirl_assume"]  # outputs: kept by every pass
    lines = [f"module {_TOP}({', '.join(ports)});"]
    conns = _input_connections(iface, layout)
    outputs = list(iface.outputs)
    for i, port in enumerate(outputs):
        lines.append(f"  wire [{port.width - 1}:0] verirl_g{i}, verirl_c{i};")
    gold = conns + [f".{vname(p.name)}(verirl_g{i})" for i, p in enumerate(outputs)]
    gate = conns + [f".{vname(p.name)}(verirl_c{i})" for i, p in enumerate(outputs)]
    lines.append(f"  {_GOLD} g({', '.join(gold)});")
    lines.append(f"  {_GATE} c({', '.join(gate)});")
    oks = []
    for i, port in enumerate(outputs):
        lines += [f"  wire [{port.width - 1}:0] verirl_ok{i};",
                  f"  genvar verirl_b{i};",
                  f"  for (verirl_b{i} = 0; verirl_b{i} < {port.width}; verirl_b{i} = verirl_b{i} + 1) begin : cmp{i}",
                  (f"    assign verirl_ok{i}[verirl_b{i}] = (verirl_g{i}[verirl_b{i}] === 1'bx) || "
                   f"(verirl_g{i}[verirl_b{i}] === verirl_c{i}[verirl_b{i}]);"),
                  "  end"]
        oks.append(f"&verirl_ok{i}")
    lines.append(f"  assign verirl_ok = {' && '.join(oks) or '1'};")
    # the previous step's inputs: at most one group may change from one step to the next
    groups, current = [], []
    if nc:
        lines.append(f"  reg [{nc - 1}:0] verirl_ck_p;")
        groups += [f"(verirl_ck[{k}] ^ verirl_ck_p[{k}])" for k in range(nc)]
        current.append(("verirl_ck_p", "verirl_ck"))
    if nr:
        lines.append(f"  reg [{nr - 1}:0] verirl_rs_p;")
        groups += [f"(verirl_rs[{k}] ^ verirl_rs_p[{k}])" for k in range(nr)]
        current.append(("verirl_rs_p", "verirl_rs"))
    if nd:
        lines.append(f"  reg [{nd - 1}:0] verirl_d_p;")
        groups.append("(|(verirl_d ^ verirl_d_p))")
        current.append(("verirl_d_p", "verirl_d"))
    lines.append("  reg verirl_first = 1'b1;")
    body = " ".join(f"{prev} <= {cur};" for prev, cur in current)
    lines.append(f"  always @($global_clock) begin verirl_first <= 1'b0; {body} end")
    if len(groups) > 1:
        lines.append(f"  wire [{len(groups) - 1}:0] verirl_changed = {{{', '.join(groups)}}};")
        lines.append("  assign verirl_assume = verirl_first || ((verirl_changed & (verirl_changed - 1'b1)) == 0);")
    else:
        lines.append("  assign verirl_assume = 1'b1;")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def rc_wrapper_source(iface: ModuleInterface, layout: InputLayout) -> str:
    """Step 1 of the register-correspondence miter: every matched signal equal right after reset."""
    ports = _group_ports(layout) + ["output verirl_ok"]
    conns = _input_connections(iface, layout) + [".trigger(verirl_trigger)"]
    return "\n".join([f"module {_RC_TOP}({', '.join(ports)});", "  wire verirl_trigger;",
                      f"  {_RC_MITER} m({', '.join(conns)});", "  assign verirl_ok = !verirl_trigger;",
                      "endmodule"]) + "\n"


def _read(path: str, top: str, name: str) -> list[str]:
    return [
        "design -reset-vlog",
        f"read_verilog -sv -nosynthesis {path}",
        f"hierarchy -check -top {top}",
        "proc -ifx",
        "flatten",
        "memory -memx",
        "opt_clean",
        "setundef -undriven -undef",
        "check -assert",
        f"rename {top} {name}",
    ]


def _both(top: str) -> list[str]:
    if not is_identifier(top):
        raise ValueError(f"top module name {top!r} is not a plain Verilog identifier")
    return [*_read("gold.v", top, _GOLD), "design -stash verirl_gold_design", *_read("gate.v", top, _GATE),
            f"design -copy-from verirl_gold_design -as {_GOLD} {_GOLD}"]


def _pins(layout: InputLayout) -> list[str]:
    """Step 1: every clock at 0 and every reset at its active level (the testbench's time 1)."""
    sets = []
    if layout.clocks:
        sets.append(f"-set-at 1 verirl_ck {len(layout.clocks)}'b0")
    if layout.resets:
        levels = "".join(str(level) for _, level in reversed(layout.resets))
        sets.append(f"-set-at 1 verirl_rs {len(layout.resets)}'b{levels}")
    return sets


def rc_script(top: str, layout: InputLayout) -> str:
    """Register correspondence: same-named signals of the two designs (``equiv_make``) proved equal
    by one-step induction (``equiv_induct``), with the base case -- all of them equal at step 1,
    right after reset -- checked by SAT. Fast for designs that keep the golden's registers."""
    lines = [*_both(top),
             # equiv_miter drops initial values: designs with any are left to the k-induction
             "select -assert-none a:init",
             "clk2fflogic",
             f"equiv_make {_GOLD} {_GATE} {_EQUIV}",
             f"equiv_miter -trigger -undef {_RC_MITER} {_EQUIV}",
             "design -reset-vlog",
             "read_verilog -sv -formal rc.v",
             f"flatten {_RC_TOP}",
             f"sat -seq 1 -prove verirl_ok 1 {' '.join(_pins(layout))} -set-def-inputs -set-init-undef {_RC_TOP}",
             f"equiv_induct -undef -seq 1 {_EQUIV}",
             f"equiv_status -assert {_EQUIV}"]
    return "\n".join(lines) + "\n"


def model_script(top: str, layout: InputLayout, steps: int) -> str:
    """k-induction from reset on the clock-accurate miter of :func:`wrapper_source`."""
    lines = [*_both(top),
             "design -reset-vlog",
             "read_verilog -sv -formal wrap.v",
             f"hierarchy -check -top {_TOP}",
             "proc",
             "flatten",
             "clk2fflogic",
             "opt_expr -keepdc",
             "opt_merge",  # logic the two designs share merges: a one-point mutant leaves little to solve
             "opt_clean",
             (f"sat -tempinduct -maxsteps {steps} -prove verirl_ok 1 -set verirl_assume 1 {' '.join(_pins(layout))} "
              f"-set-def-inputs -set-init-undef -show-inputs {_TOP}")]
    return "\n".join(lines) + "\n"


class FormalSession:
    """The two Yosys checks of one pair of sanitized sources, sharing one sandbox directory.

    :meth:`correspondence` is the fast proof for designs that keep the golden's register names;
    :meth:`induction` is the k-induction from reset (counterexamples, bounded checks, proofs).
    Use as a context manager.
    """

    def __init__(self, gold_code: str, cand_code: str, iface: ModuleInterface, config):
        self.iface, self.config = iface, config
        self.top = iface.name
        if not is_identifier(self.top):
            raise ValueError(f"top module name {self.top!r} is not a plain Verilog identifier")
        self.refused = _unsupported(iface)
        gold_text = cand_text = ""
        if self.refused is None:
            try:
                gold_text, cand_text = formal_text(gold_code), formal_text(cand_code)
            except Unfaithful as exc:
                self.refused = str(exc)
        self.layout = InputLayout.of(iface)
        files = {}
        if self.refused is None:
            files = {"gold.v": gold_text, "gate.v": cand_text, "rc.v": rc_wrapper_source(iface, self.layout),
                     "rc.ys": rc_script(self.top, self.layout), "wrap.v": wrapper_source(iface, self.layout),
                     "check.ys": model_script(self.top, self.layout, config.formal_depth)}
        self._ws = Workspace(files, config.sandbox)

    def __enter__(self):
        self._ws.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self._ws.__exit__(*exc_info)

    def correspondence(self, budget: float) -> FormalOutcome:
        """``equivalent`` when matching registers prove equivalence, else ``undecided``."""
        if self.refused:
            return FormalOutcome("undecided", self.refused)
        run = self._ws.run([find_tool("yosys"), "-q", "-l", "rc.log", "-s", "rc.ys"], timeout=budget)
        log = (self._ws.read("rc.log", limit=8 << 20) or b"").decode("utf-8", errors="replace")
        if run.ok and "SAT proof finished - no model found: SUCCESS!" in log \
                and "Equivalence successfully proven!" in log:
            return FormalOutcome("equivalent", "induction on matching registers (equiv_induct) with its base case "
                                 "checked at reset", log=log[-3000:], elapsed=run.elapsed)
        return FormalOutcome("undecided", _why(run.output + "\n" + log, "registers do not correspond"),
                             log=log[-3000:], elapsed=run.elapsed)

    def induction(self, budget: float) -> FormalOutcome:
        """The k-induction from reset: ``equivalent``, ``not_equivalent``, ``bounded`` or ``undecided``."""
        if self.refused:
            return FormalOutcome("undecided", self.refused)
        run = self._ws.run([find_tool("yosys"), "-q", "-l", "yosys.log", "-s", "check.ys"], timeout=budget)
        log = (self._ws.read("yosys.log", limit=8 << 20) or b"").decode("utf-8", errors="replace")
        return _outcome(run, log, self.layout, self.top)


def formal_check(gold_code: str, cand_code: str, iface: ModuleInterface, config, *,
                 budget: float | None = None) -> FormalOutcome:
    """Both checks in turn (register correspondence, then k-induction) within ``budget`` seconds."""
    budget = budget if budget is not None else config.formal_timeout
    with FormalSession(gold_code, cand_code, iface, config) as session:
        first = session.correspondence(budget / 2)
        if first.verdict == "equivalent" or session.refused:
            return first
        outcome = session.induction(max(budget - first.elapsed, 0.5))
        outcome.elapsed += first.elapsed
        return outcome


def _unsupported(iface: ModuleInterface) -> str | None:
    for port in iface.ports:
        if port.direction == "inout":
            return f"inout port {port.name}: Yosys has no high impedance; left to simulation"
        if port.unpacked:
            return f"unpacked array port {port.name}: left to simulation"
    return None


_BASE_FAIL = "model found for base case: FAIL!"
_BASE_OK = re.compile(r"^Base case for induction length (\d+) proven\.", re.MULTILINE)
_STEP_ROW = re.compile(r"^\s*(\d+)\s+\\(verirl_(?:ck|rs|d))\s+\S+\s+\S+\s+([01xz-]+)\s*$")


def _outcome(run, log: str, layout: InputLayout, top: str) -> FormalOutcome:
    tail = log[-3000:]
    proven = [int(n) for n in _BASE_OK.findall(log)]
    bound = max(proven) if proven else 0
    if run.ok and "Induction step proven: SUCCESS!" in log:
        return FormalOutcome("equivalent", "k-induction proof from reset on a clock-accurate miter",
                             bound=bound, log=tail, elapsed=run.elapsed)
    if run.ok and _BASE_FAIL in log:
        trace = _trace(log.split(_BASE_FAIL, 1)[1], layout)
        if trace:
            return FormalOutcome("not_equivalent", f"bounded check from reset: a difference {len(trace)} steps "
                                 "after reset", trace=trace, bound=bound, log=tail, elapsed=run.elapsed)
        return FormalOutcome("undecided", "the counterexample could not be read", log=tail, elapsed=run.elapsed)
    if run.ok and "Reached maximum number of time steps" in log:
        return FormalOutcome("bounded", f"no difference within {bound} steps from reset; no induction proof",
                             bound=bound, log=tail, elapsed=run.elapsed)
    if run.timed_out:
        why = "yosys ran past its time budget"
    elif run.signal is not None or run.output_flood or run.killed_by_limit:
        logger.warning("yosys stopped abnormally on %s (signal %s); falling back to simulation", top, run.signal)
        why = "yosys stopped abnormally"
    else:
        why = _why(run.output + "\n" + log, "yosys did not finish the proof")
    if bound > 0 and run.timed_out:
        return FormalOutcome("bounded", f"no difference within {bound} steps from reset ({why})", bound=bound,
                             log=tail, elapsed=run.elapsed)
    return FormalOutcome("undecided", why, log=tail, elapsed=run.elapsed)


def _why(text: str, default: str) -> str:
    for line in text.splitlines():
        if "ERROR:" in line:
            return line.split("ERROR:", 1)[1].strip()[:300]
    return default


def _trace(log: str, layout: InputLayout) -> list[dict[str, int]] | None:
    """Per-step group values from ``sat -show-inputs`` (undefined bits read as 0)."""
    steps: dict[int, dict[str, int]] = {}
    for line in log.splitlines():
        match = _STEP_ROW.match(line)
        if match:
            bits = match.group(3).replace("x", "0").replace("z", "0").replace("-", "0")
            steps.setdefault(int(match.group(1)), {})[match.group(2)] = int(bits, 2)
    if not steps:
        return None
    trace = []
    for k in sorted(steps):
        row = steps[k]
        step: dict[str, int] = {}
        ck, rs = row.get("verirl_ck", 0), row.get("verirl_rs", 0)
        for i in range(len(layout.clocks)):
            step[f"ck{i}"] = (ck >> i) & 1
        for i in range(len(layout.resets)):
            step[f"rs{i}"] = (rs >> i) & 1
        if layout.data:
            if "verirl_d" not in row:
                return None
            step["d"] = row["verirl_d"]
        trace.append(step)
    return trace
