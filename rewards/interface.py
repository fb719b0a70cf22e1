"""The interface of a Verilog module: ports, parameters, clocks and resets.

:func:`extract_interface` elaborates the source with the ``pyslang`` compiler front end (the
SystemVerilog compiler slang; no regular expressions over source text) and reads:

* every port of the top module: direction, width after parameter evaluation, signedness;
* its parameters (overridable and local) with their elaborated values;
* its clocking: a module is *sequential* when any process in its hierarchy is triggered by a
  signal edge (``always @(posedge clk)``, ``always_ff``), *combinational* otherwise;
* clocks: input ports that reach an edge event of such a process (through sub-module ports too),
  with the edge(s) used;
* resets: input ports that clear state. *Asynchronous* when the port is in a process's edge list
  next to the clock and the process's first statement tests it (``if (!rst_n)``); *synchronous*
  when a clocked process's first statement tests the port and its branch only assigns constants
  (``if (reset) q <= 0;``). Polarity comes from the test (``!rst`` / ``~rst`` / ``rst == 0`` are
  active low).

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
#: Names that suggest a reset; used only to break ties between structurally plausible candidates.
_RESET_NAME = re.compile(r"(^|_)(a?rst|a?reset|clr|clear)(_?n|_b|_l|_ni?)?($|_)", re.IGNORECASE)
_ACTIVE_LOW_NAME = re.compile(r"(_?n|_b|_l|_ni)$", re.IGNORECASE)


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
    """False for unpacked-array ports (``input [7:0] mem [0:3]``), which testbenches cannot drive simply."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
    """``posedge``, ``negedge`` or ``both`` (processes triggered on both edges, or mixed)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
class ModuleInterface:
    name: str
    ports: tuple[Port, ...]
    parameters: tuple[Parameter, ...] = ()
    sequential: bool = False
    clocks: tuple[Clock, ...] = ()
    resets: tuple[Reset, ...] = ()
    internal_clocks: tuple[str, ...] = ()
    """Edge-triggering signals that are not input ports (divided or gated clocks, internal strobes)."""

    @property
    def inputs(self) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.direction == "input")

    @property
    def outputs(self) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.direction == "output")

    @property
    def data_inputs(self) -> tuple[Port, ...]:
        """Inputs that are neither clocks nor resets."""
        special = {c.name for c in self.clocks} | {r.name for r in self.resets}
        return tuple(p for p in self.inputs if p.name not in special)

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
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModuleInterface:
        return cls(
            name=data["name"],
            ports=tuple(Port(**p) for p in data["ports"]),
            parameters=tuple(Parameter(**p) for p in data.get("parameters", [])),
            sequential=data.get("kind") == "sequential",
            clocks=tuple(Clock(**c) for c in data.get("clocks", [])),
            resets=tuple(Reset(r["name"], r["polarity"] == "low", r["kind"] == "sync")
                         for r in data.get("resets", [])),
            internal_clocks=tuple(data.get("internal_clocks", [])),
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
    errors = [d for d in comp.getAllDiagnostics() if d.isError()]
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
        ports.append(Port(port.name, direction, int(ptype.bitWidth), bool(ptype.isSigned),
                          packed=not ptype.isUnpackedArray))
    params: list[Parameter] = []
    for member in body:
        if member.kind == ast.SymbolKind.Parameter:
            params.append(Parameter(member.name, str(member.value), bool(member.isLocalParam)))
    analysis = _Clocking({p.name for p in ports if p.direction == "input"})
    analysis.scan(body, {p.name: p.name for p in ports})
    # a port that clears state asynchronously in one process is a reset even where another
    # process lists it without testing it (RTLLM's synchronizer does that)
    async_resets = {name for name, (_, sync) in analysis.resets.items() if not sync}
    clocks = tuple(Clock(name, "both" if len(edges) > 1 else next(iter(edges)))
                   for name, edges in analysis.clocks.items() if name not in async_resets)
    clock_names = {c.name for c in clocks}
    resets = [Reset(name, low, sync) for name, (low, sync) in analysis.resets.items()
              if name not in clock_names]
    if analysis.sequential:
        # a reset the structure did not reveal (``if (reset || q == 9)`` inside a loop): a one-bit
        # input named like a reset, synchronous, polarity from its suffix (``rst_n`` is active low)
        known = {r.name for r in resets} | clock_names
        for port in ports:
            if (port.direction == "input" and port.width == 1 and port.name not in known
                    and _RESET_NAME.search(port.name)):
                resets.append(Reset(port.name, bool(_ACTIVE_LOW_NAME.search(port.name)), True))
    return ModuleInterface(
        name=inst.name,
        ports=tuple(ports),
        parameters=tuple(params),
        sequential=analysis.sequential,
        clocks=clocks,
        resets=tuple(resets),
        internal_clocks=tuple(sorted(analysis.internal)),
    )


class _Clocking:
    """Walks the hierarchy below a top instance and classifies edge-triggered processes."""

    def __init__(self, top_inputs: set[str]):
        self.top_inputs = top_inputs
        self.clocks: dict[str, set[str]] = {}
        self.resets: dict[str, tuple[bool, bool]] = {}
        self.internal: set[str] = set()
        self.sequential = False
        self._depth = 0

    # ports of a sub-module map to top-level inputs when wired straight to them
    def scan(self, scope, mapping: dict[str, str]) -> None:
        from pyslang import ast

        for member in scope:
            kind = member.kind
            if kind == ast.SymbolKind.ProceduralBlock:
                self._process(member, mapping)
            elif kind in (ast.SymbolKind.GenerateBlock,):
                if not member.isUninstantiated:
                    self.scan(member, mapping)
            elif kind == ast.SymbolKind.GenerateBlockArray:
                for entry in member.entries:
                    self.scan(entry, mapping)
            elif kind == ast.SymbolKind.Instance and member.isModule:
                self._instance(member, mapping)
            elif kind == ast.SymbolKind.InstanceArray:
                for element in member.elements:
                    if element.kind == ast.SymbolKind.Instance and element.isModule:
                        self._instance(element, mapping)

    def _instance(self, inst, mapping: dict[str, str]) -> None:
        if self._depth >= 32:
            return
        child_map: dict[str, str] = {}
        for conn in inst.portConnections:
            name = _signal_name(conn.expression) if conn.expression is not None else None
            if name is not None and name in mapping:
                child_map[conn.port.name] = mapping[name]
        self._depth += 1
        self.scan(inst.body, child_map)
        self._depth -= 1

    def _process(self, block, mapping: dict[str, str]) -> None:
        from pyslang import ast

        stmt = block.body
        if block.procedureKind not in (ast.ProceduralBlockKind.Always, ast.ProceduralBlockKind.AlwaysFF):
            return
        if stmt.kind != ast.StatementKind.Timed:
            return
        events = _edge_events(stmt.timing)
        if not events:
            return
        self.sequential = True
        inner = _first_statement(stmt.stmt)
        async_reset: dict[str, bool] = {}
        if len(events) > 1 and inner is not None and inner.kind == ast.StatementKind.Conditional:
            tested = _tested_signal(inner.conditions[0].expr)
            if tested is not None and tested[0] in {n for n, _ in events}:
                async_reset[tested[0]] = tested[1]
        for local, edge in events:
            top = mapping.get(local)
            if top is None or top not in self.top_inputs:
                self.internal.add(local)
                continue
            if local in async_reset:
                if self.resets.get(top, (None, True))[1]:
                    self.resets[top] = (async_reset[local], False)
            else:
                self.clocks.setdefault(top, set()).add(edge)
        if len(events) == 1 and inner is not None and inner.kind == ast.StatementKind.Conditional:
            tested = _tested_signal(inner.conditions[0].expr)
            if tested is not None and _assigns_only_constants(inner.ifTrue):
                top = mapping.get(tested[0])
                if top is not None and top in self.top_inputs and top not in self.clocks:
                    # an asynchronous use elsewhere wins: the port then clears state between edges
                    self.resets.setdefault(top, (tested[1], True))


def _edge_events(timing) -> list[tuple[str, str]]:
    from pyslang import ast

    controls = list(timing.events) if timing.kind == ast.TimingControlKind.EventList else [timing]
    found: list[tuple[str, str]] = []
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
        name = _signal_name(ctl.expr)
        if name is not None:
            found.append((name, edge))
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


def _tested_signal(expr) -> tuple[str, bool] | None:
    """``(name, active_low)`` when ``expr`` tests one signal: ``rst``, ``!rst``, ``~rst``, ``rst == 0``."""
    from pyslang import ast

    expr = _strip(expr)
    if expr is None:
        return None
    name = _signal_name(expr)
    if name is not None:
        return (name, False) if expr.type.bitWidth == 1 else None
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
