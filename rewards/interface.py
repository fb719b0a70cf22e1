"""The interface of a Verilog module: ports, parameters, clocks and resets.

:func:`extract_interface` elaborates the source with the ``pyslang`` compiler front end (the
SystemVerilog compiler slang; no regular expressions over source text) and reads:

* every port of the top module: direction, width after parameter evaluation, signedness, and the
  unpacked dimensions of array ports (``input [7:0] mem [0:3]``);
* its parameters (overridable and local) with their elaborated values;
* its clocking: a module is *sequential* when any process in its hierarchy is triggered by a
  signal edge (``always @(posedge clk)``, ``always_ff``), *combinational* otherwise;
* clocks: input port bits that reach an edge event of such a process, directly or through
  sub-module ports, bit selects (``posedge clks[0]``), inversions and nets that only rename or
  invert a port (``wire nclk = ~clk``), with the edge(s) each is used on;
* resets: input ports that clear state. *Asynchronous* when the port is in a process's edge list
  next to the clock and the process's first statement tests it (``if (!rst_n)``); *synchronous*
  when a clocked process's first statement tests the port and its branch only assigns constants
  (``if (reset) q <= 0;``), or, for a port named like a reset, when any ``if`` inside a clocked
  process does so. The polarity always comes from the test in the design's logic (``!rst`` /
  ``~rst`` / ``rst == 0`` are active low), never from the port's name. A port that only the
  synchronous rule finds is a reset when it is also named like one (``rst``, ``rst_n``, ``reset``,
  ``areset``, ``srst``, ``clr``, ``init``...); otherwise it is a strobe that loads a constant
  (``if (i_wr) busy <= 1;``);
* strobes: one-bit data inputs that gate state (enables, write/read strobes, ``valid``, ``start``):
  tested by an ``if`` or a ``?:`` in any process of a sequential design, or, untested, named like
  one (``i_wr``, ``i_ce``, ``wr_en``, ``valid``...). Their active level comes from the test
  (``if (!we_n)`` is active low), else from a ``_n``/``_b``/``_l`` suffix. The testbench pulses them
  (a strobe held at its inactive level never exercises the design);
* internal clocks: edge-triggering signals that are not a single input port bit (divided clocks,
  clocks gated by logic or derived from registers).

The equivalence checker's testbench generator drives clocks and resets from this description;
the data pipeline stores it with each task.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

from .errors import VerirlRewardError

logger = logging.getLogger(__name__)

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
#: Names that suggest a reset: such a port is searched deeper for a reset test (polarity from the test).
_RESET_NAME = re.compile(r"(^|_)(a?rst|a?reset|[sn]rst|nreset|s?clr|clear|init)(_?n|_b|_l|_ni?)?($|_)"
                         r"|^(a?rst|a?reset|[sn]rst|nreset)", re.IGNORECASE)
#: Names that suggest a strobe or an enable (one-bit inputs only; the logic test comes first).
_STROBE_NAME = re.compile(
    r"(^|_)(wr|we|wen|write|rd|re|ren|read|en|ena|enable|ce|cen|clk_?en|valid|vld|start|go|req|request|"
    r"stb|strobe|load|ld|push|pop|shift|trig|trigger|next|update|latch|capture|sample|inc|dec|cs)"
    r"(_?n|_b|_l|_i|_in)?($|_)|(En|Enable|Valid|Start|Req|Wr|Rd|Load)(_?n)?$")
_ACTIVE_LOW_SUFFIX = re.compile(r"(_n|_b|_l|N)$")


class InterfaceError(VerirlRewardError, ValueError):
    """The source cannot be parsed or elaborated, or it has no usable top module."""


def is_identifier(name: str) -> bool:
    """True for a plain (non-escaped) Verilog identifier: safe to put into generated code and scripts."""
    return bool(isinstance(name, str) and _IDENT.match(name)) and "$" not in name


@dataclasses.dataclass(frozen=True)
class Port:
    name: str
    direction: str
    """``input``, ``output`` or ``inout``."""
    width: int
    signed: bool = False
    packed: bool = True
    """False for unpacked-array ports (``input [7:0] mem [0:3]``)."""
    unpacked: tuple[tuple[int, int], ...] = ()
    """The unpacked dimensions of an array port as ``(left, right)`` ranges, outermost first;
    ``width`` then counts every bit of every element."""

    @property
    def element_width(self) -> int:
        """Bits of one element (the whole port when it is not an unpacked array)."""
        count = 1
        for left, right in self.unpacked:
            count *= abs(left - right) + 1
        return self.width // max(count, 1)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["unpacked"] = [list(r) for r in self.unpacked]
        return data


@dataclasses.dataclass(frozen=True)
class Parameter:
    name: str
    value: str
    """The elaborated value as slang prints it (``4``, ``8'sd3``, ``"abc"``)."""
    local: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Clock:
    name: str
    edge: str
    """``posedge``, ``negedge`` or ``both`` (processes triggered on both edges, or mixed), as seen on
    the port bit (``posedge nclk`` with ``nclk = ~clk`` is a ``negedge`` of ``clk``)."""
    bit: int | None = None
    """For a clock that is one bit of a vector port (``posedge clks[0]``): its index from the least
    significant bit; ``None`` for a one-bit port."""

    def to_dict(self) -> dict[str, Any]:
        data = {"name": self.name, "edge": self.edge}
        if self.bit is not None:
            data["bit"] = self.bit
        return data


@dataclasses.dataclass(frozen=True)
class Reset:
    name: str
    active_low: bool
    synchronous: bool

    @property
    def active_level(self) -> int:
        return 0 if self.active_low else 1

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "polarity": "low" if self.active_low else "high",
                "kind": "sync" if self.synchronous else "async"}


@dataclasses.dataclass(frozen=True)
class Strobe:
    """A one-bit data input that gates state (an enable, a write/read strobe, ``valid``, ``start``)."""

    name: str
    active_low: bool
    clears: bool = False
    """True when some clocked process loads only constants while it is active (``if (i_wr) busy
    <= 1;``): the testbench also holds it active at the start of every sequence, as it does a reset."""

    @property
    def active_level(self) -> int:
        return 0 if self.active_low else 1

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "polarity": "low" if self.active_low else "high", "clears": self.clears}


@dataclasses.dataclass(frozen=True)
class ModuleInterface:
    name: str
    ports: tuple[Port, ...]
    parameters: tuple[Parameter, ...] = ()
    sequential: bool = False
    clocks: tuple[Clock, ...] = ()
    resets: tuple[Reset, ...] = ()
    internal_clocks: tuple[str, ...] = ()
    """Edge-triggering signals that are not input ports (divided or gated clocks, internal strobes)."""
    strobes: tuple[Strobe, ...] = ()
    """One-bit data inputs that gate state (enables, strobes); still data inputs, driven as pulses."""

    @property
    def inputs(self) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.direction == "input")

    @property
    def outputs(self) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.direction == "output")

    @property
    def data_inputs(self) -> tuple[Port, ...]:
        """Inputs that are neither clocks nor resets (a vector port with a clock bit is neither)."""
        special = {c.name for c in self.clocks} | {r.name for r in self.resets}
        return tuple(p for p in self.inputs if p.name not in special)

    def clock_bits(self, name: str) -> dict[int, Clock]:
        """The bits of port ``name`` that are clocks (bit index -> clock)."""
        return {c.bit or 0: c for c in self.clocks if c.name == name}

    def port(self, name: str) -> Port | None:
        return next((p for p in self.ports if p.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "sequential" if self.sequential else "combinational",
            "ports": [p.to_dict() for p in self.ports],
            "parameters": [p.to_dict() for p in self.parameters],
            "clocks": [c.to_dict() for c in self.clocks],
            "resets": [r.to_dict() for r in self.resets],
            "internal_clocks": list(self.internal_clocks),
            "strobes": [s.to_dict() for s in self.strobes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModuleInterface:
        return cls(
            name=data["name"],
            ports=tuple(Port(**{**p, "unpacked": tuple(tuple(r) for r in p.get("unpacked", ()))})
                        for p in data["ports"]),
            parameters=tuple(Parameter(**p) for p in data.get("parameters", [])),
            sequential=data.get("kind") == "sequential",
            clocks=tuple(Clock(**c) for c in data.get("clocks", [])),
            resets=tuple(Reset(r["name"], r["polarity"] == "low", r["kind"] == "sync")
                         for r in data.get("resets", [])),
            internal_clocks=tuple(data.get("internal_clocks", [])),
            strobes=tuple(Strobe(s["name"], s.get("polarity") == "low", bool(s.get("clears", False)))
                          for s in data.get("strobes", [])),
        )


# --------------------------------------------------------------------------------------------
# front end


def module_names(source: str) -> list[str]:
    """Names of the modules ``source`` defines, in source order (parsed, not pattern-matched)."""
    import pyslang
    from pyslang import syntax

    # a private source manager per call: the default one keeps every buffer it ever saw
    source_manager = pyslang.SourceManager()
    return _declared_modules(syntax.SyntaxTree.fromText(source, source_manager, "source.sv"))


def _declared_modules(tree) -> list[str]:
    from pyslang import syntax

    root = tree.root
    members = list(root.members) if root.kind == syntax.SyntaxKind.CompilationUnit else [root]
    return [m.header.name.valueText for m in members if m.kind == syntax.SyntaxKind.ModuleDeclaration]


def elaborate(source: str, top: str | None = None):
    """Compile ``source`` with slang; return ``((compilation, source_manager), top_instance)``.

    The first item must stay referenced while the instance is used: it owns the symbols and the text.

    Raises :class:`InterfaceError` with slang's own diagnostics when the source has errors.
    """
    try:
        import pyslang
        from pyslang import ast, syntax
    except ImportError as exc:  # pragma: no cover - pyslang is a hard dependency
        from .errors import InfrastructureError

        raise InfrastructureError("pyslang is not installed: `pip install pyslang==12.1.0`") from exc
    if not isinstance(source, str) or not source.strip():
        raise InterfaceError("the Verilog source is empty: pass the text of at least one module")
    if top is not None and not is_identifier(top):
        raise InterfaceError(f"top module name {top!r} is not a plain Verilog identifier")
    # a private source manager per call (the default one keeps every buffer it ever saw); the
    # compilation keeps using it, so it is returned alongside (see extract_interface)
    source_manager = pyslang.SourceManager()
    tree = syntax.SyntaxTree.fromText(source, source_manager, "source.sv")
    names = _declared_modules(tree)
    if not names:
        raise InterfaceError("no module declaration found in the Verilog source")
    if top is not None and top not in names:
        raise InterfaceError(f"module {top!r} is not defined; the source defines: {', '.join(names)}")
    options = ast.CompilationOptions()
    if top is not None:
        options.topModules = {top}
    comp = ast.Compilation(pyslang.Bag([options]))
    comp.addSyntaxTree(tree)
    root = comp.getRoot()
    # a design where only some modules have a `timescale is legal for Icarus (it warns): not an error here
    errors = [d for d in comp.getAllDiagnostics() if d.isError() and d.code != pyslang.Diags.MissingTimeScale]
    if errors:
        text = pyslang.DiagnosticEngine.reportAll(comp.sourceManager, errors)
        raise InterfaceError(f"the Verilog source does not compile:\n{_truncate(text)}")
    tops = list(root.topInstances)
    if top is None:
        if len(tops) != 1:
            found = ", ".join(t.name for t in tops) or "none"
            raise InterfaceError(f"cannot tell the top module (top-level modules: {found}); pass top=NAME")
        return (comp, source_manager), tops[0]
    for inst in tops:
        if inst.name == top:
            return (comp, source_manager), inst
    raise InterfaceError(f"module {top!r} could not be elaborated as a top module")


def _truncate(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else text[:limit] + "\n... (truncated)"


def extract_interface(source: str, top: str | None = None) -> ModuleInterface:
    """Ports, parameters and clocking of module ``top`` (the single top-level module by default)."""
    owners, inst = elaborate(source, top)  # the compilation owns the symbols: keep it alive
    result = interface_of_instance(inst)
    del owners
    return result


def interface_of_instance(inst) -> ModuleInterface:
    from pyslang import ast

    body = inst.body
    ports: list[Port] = []
    for port in body.portList:
        if port.kind != ast.SymbolKind.Port:
            raise InterfaceError(f"port {port.name!r} of module {inst.name!r} is an interface or multi-port, "
                                 "which is not supported; use plain input/output ports")
        direction = {ast.ArgumentDirection.In: "input", ast.ArgumentDirection.Out: "output",
                     ast.ArgumentDirection.InOut: "inout"}.get(port.direction, "ref")
        ptype = port.type
        dims: list[tuple[int, int]] = []
        element = ptype
        while element.isUnpackedArray and hasattr(element, "range"):
            dims.append((int(element.range.left), int(element.range.right)))
            element = element.elementType
        width = int(element.bitWidth)
        for left, right in dims:
            width *= abs(left - right) + 1
        ports.append(Port(port.name, direction, width, bool(element.isSigned), packed=not dims,
                          unpacked=tuple(dims)))
    params: list[Parameter] = []
    for member in body:
        if member.kind == ast.SymbolKind.Parameter:
            params.append(Parameter(member.name, str(member.value), bool(member.isLocalParam)))
    analysis = _Clocking({p.name: p.width for p in ports if p.direction == "input" and p.packed})
    analysis.scan_top(inst)
    # a port bit that clears state asynchronously in one process is a reset even where another
    # process lists it without testing it (RTLLM's synchronizer does that)
    async_resets = {key for key, (_, sync) in analysis.resets.items() if not sync}
    clocks = tuple(Clock(name, "both" if len(edges) > 1 else next(iter(edges)),
                         bit if analysis.widths.get(name, 1) > 1 else None)
                   for (name, bit), edges in analysis.clocks.items() if (name, bit) not in async_resets)
    clock_keys = {(c.name, c.bit or 0) for c in clocks}
    resets: list[Reset] = []
    clearing: dict[str, bool] = {}
    for (name, bit), (low, sync) in analysis.resets.items():
        if (name, bit) in clock_keys or analysis.widths.get(name, 1) != 1:
            continue
        if sync and not _RESET_NAME.search(name):
            # the synchronous rule alone cannot tell ``if (rst) q <= 0;`` from ``if (i_wr) busy <= 1;``:
            # the name decides, and a strobe is still held active at the start like a reset
            clearing[name] = low
            continue
        resets.append(Reset(name, low, sync))
    if analysis.sequential:
        # a reset the first statements did not reveal (``if (reset || q == 9)`` inside a loop): a
        # one-bit input named like a reset that some ``if`` inside a clocked process tests with a
        # branch that only assigns constants; polarity from that test
        known = {r.name for r in resets} | {c.name for c in clocks}
        for port in ports:
            if (port.direction == "input" and port.width == 1 and port.name not in known
                    and _RESET_NAME.search(port.name) and (port.name, 0) in analysis.deep_resets):
                resets.append(Reset(port.name, analysis.deep_resets[(port.name, 0)], True))
    strobes = _strobes(ports, analysis, clearing, {r.name for r in resets} | {c.name for c in clocks}) \
        if analysis.sequential else []
    return ModuleInterface(
        name=inst.name,
        ports=tuple(ports),
        parameters=tuple(params),
        sequential=analysis.sequential,
        clocks=clocks,
        resets=tuple(resets),
        internal_clocks=tuple(sorted(analysis.internal)),
        strobes=tuple(strobes),
    )


def _strobes(ports: list[Port], analysis: _Clocking, clearing: dict[str, bool], special: set[str]) -> list[Strobe]:
    """One-bit data inputs of a sequential design that gate state: tested by a condition (polarity
    from the test) or named like a strobe (polarity from a ``_n``-like suffix)."""
    found: list[Strobe] = []
    for port in ports:
        if port.direction != "input" or port.width != 1 or not port.packed or port.name in special:
            continue
        key = (port.name, 0)
        if port.name in clearing:
            found.append(Strobe(port.name, clearing[port.name], clears=True))
        elif key in analysis.gates:
            found.append(Strobe(port.name, analysis.gates[key]))
        elif _STROBE_NAME.search(port.name):
            found.append(Strobe(port.name, bool(_ACTIVE_LOW_SUFFIX.search(port.name))))
    return found


@dataclasses.dataclass(frozen=True)
class Source:
    """One bit of a top-level input port, possibly inverted: what a local signal bit really is."""

    port: str
    bit: int
    inverted: bool = False

    def flipped(self) -> Source:
        return Source(self.port, self.bit, not self.inverted)


class SignalResolver:
    """Maps expressions inside the hierarchy to the top-level input bits they carry.

    A sub-module port maps to whatever its connection carries; a net whose only driver is a
    continuous assignment (or declaration initializer) of a port, a bit select, an inversion or a
    concatenation of such is resolved through that driver. Anything else (logic of several
    signals, registers) resolves to ``None``: it is not a plain input bit.
    """

    def __init__(self, top_widths: dict[str, int]):
        self.top_widths = top_widths
        self.sources: dict[str, list[Source | None]] = {}
        self.drivers: dict[str, Any] = {}
        self._resolving: set[str] = set()

    def bind_top(self, body) -> None:
        for port in body.portList:
            width = self.top_widths.get(port.name)
            internal = getattr(port, "internalSymbol", None)
            if width is not None and internal is not None and width <= 4096:
                self.sources[internal.hierarchicalPath] = [Source(port.name, i) for i in range(width)]

    def collect_drivers(self, scope) -> None:
        """Record single whole-net drivers declared directly in ``scope`` (not in sub-scopes)."""
        from pyslang import ast

        counts: dict[str, int] = {}
        for member in scope:
            if member.kind == ast.SymbolKind.Net and member.initializer is not None:
                path = member.hierarchicalPath
                counts[path] = counts.get(path, 0) + 1
                self.drivers[path] = member.initializer
            elif member.kind == ast.SymbolKind.ContinuousAssign:
                assign = member.assignment
                if assign.kind != ast.ExpressionKind.Assignment:
                    continue
                left = _strip(assign.left)
                if left is not None and left.kind == ast.ExpressionKind.NamedValue:
                    path = left.symbol.hierarchicalPath
                    counts[path] = counts.get(path, 0) + 1
                    self.drivers[path] = assign.right
        for path, count in counts.items():
            if count > 1:
                self.drivers.pop(path, None)  # several drivers: not a plain renaming

    def resolve(self, expr) -> list[Source | None] | None:
        """Per-bit sources of ``expr`` (least significant first), or ``None`` when unknown."""
        from pyslang import ast

        expr = _strip(expr)
        if expr is None:
            return None
        kind = expr.kind
        if kind == ast.ExpressionKind.NamedValue:
            path = expr.symbol.hierarchicalPath
            if path in self.sources:
                return self.sources[path]
            driver = self.drivers.get(path)
            if driver is None or path in self._resolving:
                return None
            self._resolving.add(path)
            try:
                found = self.resolve(driver)
            finally:
                self._resolving.discard(path)
            if found is not None:
                self.sources[path] = found
            return found
        if kind == ast.ExpressionKind.ElementSelect:
            base = self.resolve(expr.value)
            index = _constant_int_value(expr.selector)
            pos = _bit_position(expr.value, index)
            if base is None or pos is None or not 0 <= pos < len(base):
                return None
            return [base[pos]]
        if kind == ast.ExpressionKind.RangeSelect:
            base = self.resolve(expr.value)
            left, right = _constant_int_value(expr.left), _constant_int_value(expr.right)
            lo, hi = _bit_position(expr.value, right), _bit_position(expr.value, left)
            if base is None or lo is None or hi is None or str(expr.selectionKind).split(".")[-1] != "Simple":
                return None
            lo, hi = min(lo, hi), max(lo, hi)
            return base[lo:hi + 1] if 0 <= lo and hi < len(base) else None
        if kind == ast.ExpressionKind.UnaryOp and expr.op in (ast.UnaryOperator.BitwiseNot,
                                                              ast.UnaryOperator.LogicalNot):
            inner = self.resolve(expr.operand)
            if inner is None or (expr.op == ast.UnaryOperator.LogicalNot and len(inner) != 1):
                return None
            return [s.flipped() if s is not None else None for s in inner]
        if kind == ast.ExpressionKind.Concatenation:
            bits: list[Source | None] = []
            for operand in reversed(list(expr.operands)):
                part = self.resolve(operand)
                if part is None:
                    width = int(operand.type.bitWidth) if operand.type is not None else 0
                    part = [None] * width
                bits += part
            return bits
        return None

    def bit(self, expr) -> Source | None:
        """The input bit an edge or a test on ``expr`` follows (the least significant one)."""
        found = self.resolve(expr)
        return found[0] if found else None


def _bit_position(value_expr, index: int | None) -> int | None:
    """Position from the least significant bit of element ``index`` of a packed vector."""
    if index is None:
        return None
    try:
        rng = value_expr.type.getBitVectorRange()
        left, right = int(rng.left), int(rng.right)
    except Exception:  # noqa: BLE001 - not a simple vector
        return None
    return index - right if left >= right else right - index


def _constant_int_value(expr) -> int | None:
    """The value of a constant integer expression without unknown bits, else ``None``."""
    expr = _strip(expr)
    value = expr.constant if expr is not None else None
    if value is None or value.hasUnknown():
        return None
    try:
        return int(value.value)
    except (TypeError, ValueError, AttributeError):
        return None


class _Clocking:
    """Walks the hierarchy below a top instance and classifies edge-triggered processes."""

    def __init__(self, top_widths: dict[str, int]):
        self.widths = top_widths
        self.resolver = SignalResolver(top_widths)
        self.clocks: dict[tuple[str, int], set[str]] = {}
        self.resets: dict[tuple[str, int], tuple[bool, bool]] = {}
        self.deep_resets: dict[tuple[str, int], bool] = {}
        self.gates: dict[tuple[str, int], bool] = {}
        """Input bits tested by a condition (``if``, ``?:``) in any process: bit -> active low."""
        self.internal: set[str] = set()
        self.sequential = False
        self._depth = 0

    def scan_top(self, inst) -> None:
        self.resolver.bind_top(inst.body)
        self.scan(inst.body)

    def scan(self, scope) -> None:
        from pyslang import ast

        self.resolver.collect_drivers(scope)
        for member in scope:
            kind = member.kind
            if kind == ast.SymbolKind.ProceduralBlock:
                self._process(member)
            elif kind == ast.SymbolKind.ContinuousAssign:
                self._gate_tests(member.assignment)
            elif kind == ast.SymbolKind.Net and member.initializer is not None:
                self._gate_tests(member.initializer)
            elif kind == ast.SymbolKind.GenerateBlock:
                if not member.isUninstantiated:
                    self.scan(member)
            elif kind == ast.SymbolKind.GenerateBlockArray:
                for entry in member.entries:
                    self.scan(entry)
            elif kind == ast.SymbolKind.Instance and member.isModule:
                self._instance(member)
            elif kind == ast.SymbolKind.InstanceArray:
                for element in _instance_elements(member):
                    self._instance(element)

    def _instance(self, inst) -> None:
        if self._depth >= 32:
            return
        for conn in inst.portConnections:
            internal = getattr(conn.port, "internalSymbol", None)
            if conn.expression is None or internal is None:
                continue
            found = self.resolver.resolve(conn.expression)
            if found is not None:
                self.resolver.sources[internal.hierarchicalPath] = found
        self._depth += 1
        self.scan(inst.body)
        self._depth -= 1

    def _process(self, block) -> None:
        from pyslang import ast

        stmt = block.body
        if block.procedureKind not in (ast.ProceduralBlockKind.Initial, ast.ProceduralBlockKind.Final):
            self._gate_tests(stmt)
        if block.procedureKind not in (ast.ProceduralBlockKind.Always, ast.ProceduralBlockKind.AlwaysFF):
            return
        if stmt.kind != ast.StatementKind.Timed:
            return
        events = _edge_events(stmt.timing)
        if not events:
            return
        self.sequential = True
        inner = _first_statement(stmt.stmt)
        sources = [(self.resolver.bit(expr), edge, expr) for expr, edge in events]
        async_reset: dict[tuple[str, int], bool] = {}
        if len(events) > 1 and inner is not None and inner.kind == ast.StatementKind.Conditional:
            tested = _tested_signal(inner.conditions[0].expr)
            src = self.resolver.bit(tested[0]) if tested is not None else None
            if src is not None and any(s == src or s == src.flipped() for s, _, _ in sources if s is not None):
                async_reset[(src.port, src.bit)] = tested[1] ^ src.inverted
        for src, edge, expr in sources:
            if src is None:
                self.internal.add(_describe(expr))
                continue
            key = (src.port, src.bit)
            if key in async_reset:
                if self.resets.get(key, (None, True))[1]:
                    self.resets[key] = (async_reset[key], False)
            else:
                if src.inverted:
                    edge = {"posedge": "negedge", "negedge": "posedge"}.get(edge, edge)
                self.clocks.setdefault(key, set()).add(edge)
        clock_keys = {(s.port, s.bit) for s, _, _ in sources if s is not None}
        if len(events) == 1 and inner is not None and inner.kind == ast.StatementKind.Conditional:
            tested = _tested_signal(inner.conditions[0].expr)
            src = self.resolver.bit(tested[0]) if tested is not None else None
            if src is not None and _assigns_only_constants(inner.ifTrue):
                key = (src.port, src.bit)
                if key not in clock_keys and key not in self.clocks:
                    # an asynchronous use elsewhere wins: the port then clears state between edges
                    self.resets.setdefault(key, (tested[1] ^ src.inverted, True))
        self._deep_reset_tests(stmt.stmt, clock_keys)

    def _gate_tests(self, node) -> None:
        """Record every input bit a condition (``if``, ``?:``) tests, with the level that selects
        the first branch (``if (!we_n)``: active low)."""
        from pyslang import ast

        def visit(item):
            if ((isinstance(item, ast.Statement) and item.kind == ast.StatementKind.Conditional)
                    or (isinstance(item, ast.Expression) and item.kind == ast.ExpressionKind.ConditionalOp)):
                for sig, low in _condition_terms(item.conditions[0].expr):
                    src = self.resolver.bit(sig)
                    if src is not None:
                        self.gates.setdefault((src.port, src.bit), low ^ src.inverted)
            return ast.VisitAction.Advance

        node.visit(visit)

    def _deep_reset_tests(self, stmt, clock_keys) -> None:
        """Any ``if (<input test>) <constants only>`` in a clocked process: polarity of that input."""
        from pyslang import ast

        def visit(node):
            if isinstance(node, ast.Statement) and node.kind == ast.StatementKind.Conditional:
                tested = _tested_signal(node.conditions[0].expr)
                src = self.resolver.bit(tested[0]) if tested is not None else None
                if src is not None and (src.port, src.bit) not in clock_keys \
                        and _assigns_only_constants(node.ifTrue):
                    self.deep_resets.setdefault((src.port, src.bit), tested[1] ^ src.inverted)
            return ast.VisitAction.Advance

        stmt.visit(visit)


def _instance_elements(array):
    from pyslang import ast

    for element in array.elements:
        if element.kind == ast.SymbolKind.Instance and element.isModule:
            yield element
        elif element.kind == ast.SymbolKind.InstanceArray:
            yield from _instance_elements(element)


def _describe(expr) -> str:
    expr = _strip(expr)
    try:
        return expr.symbol.name
    except AttributeError:
        text = str(expr.syntax) if getattr(expr, "syntax", None) is not None else "expression"
        return " ".join(text.split())[:60]


def _edge_events(timing) -> list[tuple[Any, str]]:
    """``(expression, edge)`` of every event of an edge-triggered timing control; empty when any
    event of the list is level-sensitive (a combinational process or a latch)."""
    from pyslang import ast

    controls = list(timing.events) if timing.kind == ast.TimingControlKind.EventList else [timing]
    found: list[tuple[Any, str]] = []
    for ctl in controls:
        if ctl.kind != ast.TimingControlKind.SignalEvent:
            return []
        if ctl.edge == ast.EdgeKind.PosEdge:
            edge = "posedge"
        elif ctl.edge == ast.EdgeKind.NegEdge:
            edge = "negedge"
        elif ctl.edge == ast.EdgeKind.BothEdges:
            edge = "both"
        else:
            return []  # a level-sensitive list: combinational or latch
        found.append((ctl.expr, edge))
    return found


def _strip(expr):
    from pyslang import ast

    while expr is not None and expr.kind == ast.ExpressionKind.Conversion:
        expr = expr.operand
    return expr


def _signal_name(expr) -> str | None:
    """The name of a plain signal reference (``clk``; a one-bit select ``clk[0]`` is not plain)."""
    from pyslang import ast

    expr = _strip(expr)
    if expr is not None and expr.kind == ast.ExpressionKind.NamedValue:
        return expr.symbol.name
    return None


def _tested_signal(expr) -> tuple[Any, bool] | None:
    """``(signal expression, active_low)`` when ``expr`` tests one one-bit signal: ``rst``, ``!rst``,
    ``~rst``, ``rst == 0``, ``rst[0]``; in ``a || b`` the one side that is such a test."""
    from pyslang import ast

    expr = _strip(expr)
    if expr is None:
        return None
    if expr.kind in (ast.ExpressionKind.NamedValue, ast.ExpressionKind.ElementSelect):
        return (expr, False) if expr.type.bitWidth == 1 else None
    if expr.kind == ast.ExpressionKind.UnaryOp and expr.op in (ast.UnaryOperator.LogicalNot,
                                                                     ast.UnaryOperator.BitwiseNot):
        inner = _tested_signal(expr.operand)
        return (inner[0], not inner[1]) if inner else None
    if expr.kind == ast.ExpressionKind.BinaryOp and expr.op == ast.BinaryOperator.LogicalOr:
        # ``if (reset || q == 10) q <= 1;``: the signal that forces the constant on its own
        sides = [_tested_signal(expr.left), _tested_signal(expr.right)]
        sides = [s for s in sides if s is not None]
        return sides[0] if len(sides) == 1 else None
    if expr.kind == ast.ExpressionKind.BinaryOp and expr.op in (
            ast.BinaryOperator.Equality, ast.BinaryOperator.CaseEquality,
            ast.BinaryOperator.Inequality, ast.BinaryOperator.CaseInequality):
        for sig, const in ((expr.left, expr.right), (expr.right, expr.left)):
            inner = _tested_signal(sig)
            value = _constant_int(const)
            if inner is not None and value in (0, 1):
                low = inner[1] ^ (value == 0)
                if expr.op in (ast.BinaryOperator.Inequality, ast.BinaryOperator.CaseInequality):
                    low = not low
                return inner[0], low
    return None


def _condition_terms(expr, depth: int = 0) -> list[tuple[Any, bool]]:
    """Every one-bit test inside ``&&``/``||`` (and one-bit ``&``/``|``) of a condition:
    ``(signal expression, active_low)``."""
    from pyslang import ast

    expr = _strip(expr)
    if expr is None or depth > 16:
        return []
    if expr.kind == ast.ExpressionKind.BinaryOp and (
            expr.op in (ast.BinaryOperator.LogicalAnd, ast.BinaryOperator.LogicalOr)
            or (expr.op in (ast.BinaryOperator.BinaryAnd, ast.BinaryOperator.BinaryOr) and expr.type.bitWidth == 1)):
        return _condition_terms(expr.left, depth + 1) + _condition_terms(expr.right, depth + 1)
    if expr.kind == ast.ExpressionKind.UnaryOp and expr.op == ast.UnaryOperator.LogicalNot:
        inner = _condition_terms(expr.operand, depth + 1)
        if len(inner) == 1:
            return [(inner[0][0], not inner[0][1])]
    tested = _tested_signal(expr)
    return [tested] if tested is not None else []


def _constant_int(expr) -> int | None:
    """0 or 1 for a constant compared against a reset signal, ``None`` otherwise."""
    expr = _strip(expr)
    value = expr.constant if expr is not None else None
    if value is None or value.hasUnknown():
        return None
    if value.isFalse():
        return 0
    return 1 if value.isTrue() else None


def _first_statement(stmt):
    """The first real statement of a process body (unwrapping ``begin ... end`` blocks)."""
    from pyslang import ast

    while stmt is not None:
        if stmt.kind == ast.StatementKind.Block:
            stmt = stmt.body
        elif stmt.kind == ast.StatementKind.List:
            items = [s for s in stmt.list if s.kind != ast.StatementKind.VariableDeclaration]
            if not items:
                return None
            stmt = items[0]
        else:
            return stmt
    return None


def _assigns_only_constants(stmt) -> bool:
    """True when ``stmt`` assigns something and every assignment under it stores a constant."""
    from pyslang import ast

    verdict = {"ok": True, "seen": False}

    def visit(node):
        if isinstance(node, ast.Expression) and node.kind == ast.ExpressionKind.Assignment:
            verdict["seen"] = True
            if not _is_constant_expression(node.right):
                verdict["ok"] = False
            return ast.VisitAction.Skip
        return ast.VisitAction.Advance

    stmt.visit(visit)
    return verdict["ok"] and verdict["seen"]


def _is_constant_expression(expr) -> bool:
    """True when ``expr`` reads no net or variable (literals, parameters, enum values only)."""
    from pyslang import ast

    if expr is None:
        return False
    if expr.constant is not None:
        return True
    verdict = {"ok": True}

    def visit(node):
        if (isinstance(node, ast.Expression)
                and node.kind in (ast.ExpressionKind.NamedValue, ast.ExpressionKind.HierarchicalValue)
                and node.symbol.kind not in (ast.SymbolKind.Parameter, ast.SymbolKind.EnumValue,
                                             ast.SymbolKind.Specparam)):
            verdict["ok"] = False
            return ast.VisitAction.Interrupt
        if isinstance(node, ast.Expression) and node.kind == ast.ExpressionKind.Call:
            verdict["ok"] = False
            return ast.VisitAction.Interrupt
        return ast.VisitAction.Advance

    expr.visit(visit)
    return verdict["ok"]
