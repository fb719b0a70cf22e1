"""Where a synthesis model of a design stops describing what the simulator does.

The formal equivalence check (:mod:`rewards.formal`) reasons about a Yosys model of both designs;
that model is a proof about *simulation* only for designs whose simulated behaviour is a function
of their inputs' values sampled at clock edges. :func:`find_hazards` walks an elaborated design
(pyslang) and lists every construct for which that is not so, by mechanism:

``timing``
    delays (``#5``), ``wait``, ``forever``, ``fork``, event triggers or an event control inside a
    process body, a process without an event control, a delayed continuous assignment: behaviour
    that follows simulation time rather than the interface's clock (Yosys ignores delays).
``sensitivity``
    an explicit sensitivity list that misses a signal the process reads, or a process whose
    ``@*`` cannot see a signal read inside a called function: the simulator keeps a stale value
    where the model recomputes it.
``time_zero``
    (candidate only) an ``always @*`` / ``always @(list)`` process that nothing wakes at the start
    of the simulation: the simulator leaves its outputs X until one of its inputs changes, where
    the model already computes them. Waking sources are the data and reset inputs (driven at the
    first step), variables an asynchronous reset branch sets, and anything computed from them.
``comb_x``
    (candidate only) an X constant assigned in a combinational process: where such a process
    becomes a latch (any ``case`` that an X selector can miss), Yosys reads the X as "keep the old
    value", the simulator as X.
``multi_driver``
    a net or variable (bits of it) driven from two places: Yosys merges the drivers, the
    simulator resolves them (X) or lets the last writer win.
``race``
    a variable assigned with ``=`` in one clocked process and read by another clocked process:
    the simulator's result depends on process order.
``tristate``
    ``z`` constants outside ``casez``/``casex`` labels, ``tri``/``wand``/``wor``/``trireg`` nets,
    ``inout`` ports, tri-state or switch primitives, drive strengths: Yosys has no ``z``.
``casex``
    ``casex`` treats an X in the case *expression* as a wildcard in simulation only.
``procedural``
    ``force``/``release``/``assign``/``deassign`` and assertions.
``internal_clock``
    an edge on something other than one input bit (a register, logic of several signals): the
    simulator samples the values after the same time step's updates, the model before them.

A hazard makes the formal check refuse to prove anything (``strength`` at most ``simulated``);
formal counterexamples are still confirmed by simulation, so a refused design is decided by the
simulator. Golden-side ``time_zero`` findings are harmless (an X in the golden output accepts any
value), so they are reported for the candidate only.
"""

from __future__ import annotations

import dataclasses
from typing import Any

HAZARD_KINDS = ("timing", "sensitivity", "time_zero", "comb_x", "multi_driver", "race", "tristate", "casex",
                "procedural", "internal_clock")

_TRI_NETS = ("Tri", "TriAnd", "TriOr", "TriReg", "WAnd", "WOr", "Tri0", "Tri1", "Interconnect")
_TRI_PRIMITIVES = frozenset({"bufif0", "bufif1", "notif0", "notif1", "nmos", "pmos", "rnmos", "rpmos", "cmos",
                             "rcmos", "tran", "rtran", "tranif0", "tranif1", "rtranif0", "rtranif1", "pullup",
                             "pulldown"})


@dataclasses.dataclass(frozen=True)
class Hazard:
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclasses.dataclass
class _Process:
    ident: str
    kind: str
    """``edge``, ``level`` (explicit list), ``star`` (``@*``), ``comb`` (``always_comb``/``always_latch``)."""
    where: str
    reads: set[str] = dataclasses.field(default_factory=set)
    hidden_reads: set[str] = dataclasses.field(default_factory=set)
    listed: set[str] = dataclasses.field(default_factory=set)
    blocking: set[str] = dataclasses.field(default_factory=set)
    writes: set[str] = dataclasses.field(default_factory=set)
    reset_writes: set[str] = dataclasses.field(default_factory=set)
    loop_vars: set[str] = dataclasses.field(default_factory=set)
    assigns_x: bool = False
    async_reset: bool = False


def find_hazards(inst, clock_ports: set[str] | frozenset[str] = frozenset(), *,
                 candidate: bool = True) -> list[Hazard]:
    """The hazards of the design below top instance ``inst`` (see the module documentation).

    ``clock_ports`` are the top-level inputs used as clocks (they do not wake processes at the start
    of a simulation); ``candidate=False`` skips the checks that only matter for the candidate.
    """
    walk = _Walk(inst)
    walk.scan(inst.body, 0)
    return walk.report(set(clock_ports), candidate)


class _Walk:
    def __init__(self, inst):
        self.top = inst
        self.hazards: list[Hazard] = []
        self.signals: set[str] = set()
        self.processes: list[_Process] = []
        self.drivers: dict[str, list[tuple[str, tuple[int, int] | None]]] = {}
        self.net_reads: dict[str, set[str]] = {}
        self.inputs: set[str] = set()
        self.input_names: dict[str, str] = {}
        self.has_initial_values = False
        self._count = 0
        for port in inst.body.portList:
            internal = getattr(port, "internalSymbol", None)
            if internal is None:
                continue
            direction = str(port.direction).split(".")[-1]
            if direction == "In":
                self.inputs.add(internal.hierarchicalPath)
                self.input_names[internal.hierarchicalPath] = port.name
                self._drive(internal.hierarchicalPath, "testbench", None)

    def add(self, kind: str, detail: str) -> None:
        hazard = Hazard(kind, detail)
        if hazard not in self.hazards:
            self.hazards.append(hazard)

    def _next(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}#{self._count}"

    def _drive(self, path: str, owner: str, rng: tuple[int, int] | None) -> None:
        self.drivers.setdefault(path, []).append((owner, rng))

    # ---------------------------------------------------------------- hierarchy
    def scan(self, scope, depth: int) -> None:
        from pyslang import ast

        if depth > 32:
            return
        for member in scope:
            kind = member.kind
            if kind in (ast.SymbolKind.Net, ast.SymbolKind.Variable):
                self.signals.add(member.hierarchicalPath)
                if kind == ast.SymbolKind.Net:
                    self._net(member, scope)
                elif member.initializer is not None:
                    self.has_initial_values = True
            elif kind == ast.SymbolKind.Port and str(member.direction).split(".")[-1] == "InOut":
                self.add("tristate", f"inout port {member.name} of {scope_name(scope)}")
            elif kind == ast.SymbolKind.ProceduralBlock:
                self._process(member, scope)
            elif kind == ast.SymbolKind.ContinuousAssign:
                self._assign(member)
            elif kind == ast.SymbolKind.PrimitiveInstance:
                self._primitive(member)
            elif kind == ast.SymbolKind.GenerateBlock:
                if not member.isUninstantiated:
                    self.scan(member, depth)
            elif kind == ast.SymbolKind.GenerateBlockArray:
                for entry in member.entries:
                    self.scan(entry, depth)
            elif kind == ast.SymbolKind.Instance and member.isModule:
                self._instance(member, depth)
            elif kind == ast.SymbolKind.InstanceArray:
                for element in _elements(member):
                    self._instance(element, depth)

    def _net(self, net, scope) -> None:
        kind = str(net.netType.netKind).split(".")[-1] if net.netType is not None else "Wire"
        if kind in _TRI_NETS:
            self.add("tristate", f"{kind.lower()} net {net.name}")
        if net.delay is not None:
            self.add("timing", f"delayed net {net.name}")
        if net.initializer is not None:
            owner = self._next("net")
            self._drive(net.hierarchicalPath, owner, None)
            reads: set[str] = set()
            self._expression(net.initializer, reads, set(), "z")
            self.net_reads.setdefault(net.hierarchicalPath, set()).update(reads)

    def _assign(self, member) -> None:
        from pyslang import ast

        if member.delay is not None:
            self.add("timing", "delayed continuous assignment")
        if member.driveStrength is not None and any(s is not None for s in _tuple(member.driveStrength)):
            self.add("tristate", "continuous assignment with a drive strength")
        assign = member.assignment
        if assign.kind != ast.ExpressionKind.Assignment:
            return
        owner = self._next("assign")
        reads: set[str] = set()
        targets = self._lvalue(assign.left, reads)
        self._expression(assign.right, reads, set(), "z")
        for path, rng in targets:
            self._drive(path, owner, rng)
            self.net_reads.setdefault(path, set()).update(reads)

    def _primitive(self, member) -> None:
        name = str(member.primitiveType.name)
        if name in _TRI_PRIMITIVES:
            self.add("tristate", f"{name} primitive")
        if member.delay is not None:
            self.add("timing", f"delayed {name} primitive")
        owner = self._next("gate")
        conns = list(member.portConnections)
        if conns:
            reads: set[str] = set()
            for path, rng in self._lvalue(conns[0], reads):
                self._drive(path, owner, rng)
                inputs: set[str] = set()
                for expr in conns[1:]:
                    self._expression(expr, inputs, set(), None)
                self.net_reads.setdefault(path, set()).update(inputs | reads)

    def _instance(self, inst, depth: int) -> None:
        from pyslang import ast

        for conn in inst.portConnections:
            internal = getattr(conn.port, "internalSymbol", None)
            if conn.expression is None or internal is None:
                continue
            direction = str(getattr(conn.port, "direction", "In")).split(".")[-1]
            owner = self._next(f"port {inst.name}.{conn.port.name}")
            child = internal.hierarchicalPath
            reads: set[str] = set()
            expr = conn.expression
            if direction == "Out":
                if expr.kind == ast.ExpressionKind.Assignment:  # slang's form of an output connection
                    expr = expr.left
                for path, rng in self._lvalue(expr, reads):
                    self._drive(path, owner, rng)
                    self.net_reads.setdefault(path, set()).add(child)
            elif direction == "In":
                self._expression(expr, reads, set(), "z")
                self._drive(child, owner, None)
                self.net_reads.setdefault(child, set()).update(reads)
        self.scan(inst.body, depth + 1)

    # ---------------------------------------------------------------- processes
    def _process(self, block, scope) -> None:
        from pyslang import ast

        pk = block.procedureKind
        where = f"process in {scope_name(scope)}"
        body = block.body
        if pk == ast.ProceduralBlockKind.Final:
            return
        if pk == ast.ProceduralBlockKind.Initial:
            self.has_initial_values = True
            self._timing_inside(body, where)
            return
        ident = self._next("process")
        if pk in (ast.ProceduralBlockKind.AlwaysComb, ast.ProceduralBlockKind.AlwaysLatch):
            proc = _Process(ident, "comb", where)
            inner = body
        else:
            if body.kind != ast.StatementKind.Timed:
                self.add("timing", f"{where} has no event control at its head (runs on delays or waits)")
                self._timing_inside(body, where)
                return
            timing = body.timing
            inner = body.stmt
            proc = self._classify(timing, ident, where)
            if proc is None:
                self._timing_inside(inner, where)
                return
        self._timing_inside(inner, where)
        self._statements(inner, proc)
        if proc.kind == "edge":
            first = _first(inner)
            if first is not None and first.kind == ast.StatementKind.Conditional and proc.async_reset:
                writes: set[str] = set()
                self._statements_writes(first.ifTrue, writes)
                proc.reset_writes = writes
        self.processes.append(proc)

    def _classify(self, timing, ident: str, where: str) -> _Process | None:
        from pyslang import ast

        if timing.kind == ast.TimingControlKind.ImplicitEvent:
            return _Process(ident, "star", where)
        controls = list(timing.events) if timing.kind == ast.TimingControlKind.EventList else [timing]
        edges = levels = 0
        listed: set[str] = set()
        for ctl in controls:
            if ctl.kind != ast.TimingControlKind.SignalEvent:
                self.add("timing", f"{where} waits on a delay or a named event")
                return None
            if ctl.iffCondition is not None:
                self.add("timing", f"{where} uses an iff-qualified event")
            if ctl.edge == ast.EdgeKind.None_:
                levels += 1
            else:
                edges += 1
            self._expression(ctl.expr, listed, set(), None)
        if edges and levels:
            self.add("sensitivity", f"{where} mixes edge and level events")
            return None
        if edges:
            proc = _Process(ident, "edge", where, listed=listed)
            proc.async_reset = len(controls) > 1
            return proc
        return _Process(ident, "level", where, listed=listed)

    def _timing_inside(self, stmt, where: str) -> None:
        from pyslang import ast

        found: list[str] = []

        def visit(node):
            if isinstance(node, ast.Statement):
                kind = node.kind
                if kind in (ast.StatementKind.Timed, ast.StatementKind.Wait, ast.StatementKind.WaitFork,
                            ast.StatementKind.WaitOrder, ast.StatementKind.EventTrigger,
                            ast.StatementKind.ForeverLoop, ast.StatementKind.DisableFork):
                    found.append(str(kind).split(".")[-1])
                elif kind == ast.StatementKind.Block and str(node.blockKind).split(".")[-1] != "Sequential":
                    found.append("fork")
                elif kind in (ast.StatementKind.ProceduralAssign, ast.StatementKind.ProceduralDeassign):
                    self.add("procedural", f"{where} uses force/release or procedural assign/deassign")
                elif kind in (ast.StatementKind.ImmediateAssertion, ast.StatementKind.ConcurrentAssertion):
                    self.add("procedural", f"{where} contains an assertion")
            elif isinstance(node, ast.Expression) and node.kind == ast.ExpressionKind.Assignment \
                    and node.timingControl is not None:
                found.append("intra-assignment delay")
            return ast.VisitAction.Advance

        stmt.visit(visit)
        if found:
            self.add("timing", f"{where} uses {', '.join(sorted(set(found)))}")

    def _statements(self, stmt, proc: _Process) -> None:
        """Reads, writes and ``z``/``casex`` findings of a process body."""
        from pyslang import ast

        def visit(node):
            if isinstance(node, ast.Statement) and node.kind == ast.StatementKind.ForLoop:
                # loop counters (often one module-level `integer i` shared by several processes)
                # live within one activation of the process: not drivers, not races
                for expr in list(node.initializers) + list(node.steps):
                    target = expr.left if expr.kind == ast.ExpressionKind.Assignment else \
                        getattr(expr, "operand", None)
                    for path, _ in self._lvalue(target, proc.reads) if target is not None else []:
                        proc.loop_vars.add(path)
                    if expr.kind == ast.ExpressionKind.Assignment:
                        self._expression(expr.right, proc.reads, proc.hidden_reads, "z")
                self._expression(node.stopExpr, proc.reads, proc.hidden_reads, "z")
                node.body.visit(visit)
                return ast.VisitAction.Skip
            if isinstance(node, ast.Statement) and node.kind == ast.StatementKind.Case:
                cond = str(node.condition).split(".")[-1]
                if cond == "WildcardXOrZ":
                    self.add("casex", f"casex in {proc.where}")
                self._expression(node.expr, proc.reads, proc.hidden_reads, None)
                for item in node.items:
                    for expr in item.expressions:
                        # wildcard labels may carry z/?: only their reads matter
                        self._expression(expr, proc.reads, proc.hidden_reads,
                                         None if cond != "Normal" else "z")
                    item.stmt.visit(visit)
                if node.defaultCase is not None:
                    node.defaultCase.visit(visit)
                return ast.VisitAction.Skip
            if isinstance(node, ast.Expression):
                if node.kind == ast.ExpressionKind.Assignment:
                    targets = self._lvalue(node.left, proc.reads)
                    for path, rng in targets:
                        proc.writes.add(path)
                        if path in proc.loop_vars:
                            continue
                        if not node.isNonBlocking:
                            proc.blocking.add(path)
                        self._drive(path, proc.ident, rng)
                    if node.isCompound:
                        for path, _ in targets:
                            proc.reads.add(path)
                    if _has_x_literal(node.right):
                        proc.assigns_x = True
                    self._expression(node.right, proc.reads, proc.hidden_reads, "z")
                    return ast.VisitAction.Skip
                self._expression(node, proc.reads, proc.hidden_reads, "z")
                return ast.VisitAction.Skip
            return ast.VisitAction.Advance

        stmt.visit(visit)

    def _statements_writes(self, stmt, writes: set[str]) -> None:
        from pyslang import ast

        def visit(node):
            if isinstance(node, ast.Expression) and node.kind == ast.ExpressionKind.Assignment:
                for path, _ in self._lvalue(node.left, set()):
                    writes.add(path)
                return ast.VisitAction.Skip
            return ast.VisitAction.Advance

        stmt.visit(visit)

    # ---------------------------------------------------------------- expressions
    def _expression(self, expr, reads: set[str], hidden: set[str], zcheck: str | None) -> None:
        """Collect the module-level signals ``expr`` reads; calls add the signals their bodies read
        from outside (``hidden``); ``zcheck`` reports ``z`` literals."""
        from pyslang import ast

        if expr is None:
            return

        def visit(node):
            if not isinstance(node, ast.Expression):
                return ast.VisitAction.Advance
            kind = node.kind
            if kind in (ast.ExpressionKind.NamedValue, ast.ExpressionKind.HierarchicalValue):
                path = node.symbol.hierarchicalPath
                if node.symbol.kind in (ast.SymbolKind.Net, ast.SymbolKind.Variable):
                    reads.add(path)
            elif kind in (ast.ExpressionKind.IntegerLiteral, ast.ExpressionKind.UnbasedUnsizedIntegerLiteral):
                if zcheck and _has_z(node):
                    self.add("tristate", "a z (high-impedance) constant")
            elif kind == ast.ExpressionKind.Call and not node.isSystemCall:
                sub = node.subroutine
                prefix = sub.hierarchicalPath + "."
                inner: set[str] = set()
                if sub.body is not None:
                    self._subroutine_reads(sub.body, inner)
                for path in inner:
                    if not path.startswith(prefix):
                        hidden.add(path)
                        reads.add(path)
            return ast.VisitAction.Advance

        expr.visit(visit)

    def _subroutine_reads(self, body, out: set[str]) -> None:
        from pyslang import ast

        def visit(node):
            if isinstance(node, ast.Expression):
                if node.kind == ast.ExpressionKind.NamedValue and node.symbol.kind in (
                        ast.SymbolKind.Net, ast.SymbolKind.Variable):
                    out.add(node.symbol.hierarchicalPath)
                elif node.kind in (ast.ExpressionKind.IntegerLiteral,
                                   ast.ExpressionKind.UnbasedUnsizedIntegerLiteral) and _has_z(node):
                    self.add("tristate", "a z (high-impedance) constant in a function")
            return ast.VisitAction.Advance

        body.visit(visit)

    def _lvalue(self, expr, reads: set[str]) -> list[tuple[str, tuple[int, int] | None]]:
        """Targets ``(path, bit range or None for all)`` of an assignment's left side; index
        expressions it contains are reads."""
        from pyslang import ast

        from .interface import _bit_position, _constant_int_value, _strip

        expr = _strip(expr)
        if expr is None:
            return []
        kind = expr.kind
        if kind in (ast.ExpressionKind.NamedValue, ast.ExpressionKind.HierarchicalValue):
            if expr.symbol.kind in (ast.SymbolKind.Net, ast.SymbolKind.Variable):
                return [(expr.symbol.hierarchicalPath, None)]
            return []
        if kind == ast.ExpressionKind.Concatenation:
            out = []
            for operand in expr.operands:
                out += self._lvalue(operand, reads)
            return out
        if kind in (ast.ExpressionKind.ElementSelect, ast.ExpressionKind.RangeSelect):
            base = _strip(expr.value)
            if kind == ast.ExpressionKind.ElementSelect:
                self._expression(expr.selector, reads, set(), None)
                index = _constant_int_value(expr.selector)
                pos = _element_position(expr.value, index)
                width = _width(expr)
                rng = (pos * width, pos * width + width - 1) if pos is not None and width else None
            else:
                self._expression(expr.left, reads, set(), None)
                self._expression(expr.right, reads, set(), None)
                lo = _bit_position(expr.value, _constant_int_value(expr.right))
                hi = _bit_position(expr.value, _constant_int_value(expr.left))
                simple = str(expr.selectionKind).split(".")[-1] == "Simple"
                rng = (min(lo, hi), max(lo, hi)) if simple and lo is not None and hi is not None else None
            if base is not None and base.kind == ast.ExpressionKind.NamedValue and \
                    base.symbol.kind in (ast.SymbolKind.Net, ast.SymbolKind.Variable):
                return [(base.symbol.hierarchicalPath, rng)]
            return [(path, None) for path, _ in self._lvalue(base, reads)]
        if kind == ast.ExpressionKind.MemberAccess:
            return [(path, None) for path, _ in self._lvalue(expr.value, reads)]
        return []

    # ---------------------------------------------------------------- verdict
    def report(self, clock_ports: set[str], candidate: bool) -> list[Hazard]:
        self._multi_drivers()
        self._races()
        self._sensitivity()
        if candidate:
            self._time_zero(clock_ports)
            for p in self.processes:
                if p.kind in ("star", "level", "comb") and p.assigns_x:
                    self.add("comb_x", f"{p.where} assigns an X constant (Yosys reads it as 'keep the old "
                             "value' in a latch)")
        return list(self.hazards)

    def _multi_drivers(self) -> None:
        for path, drivers in self.drivers.items():
            owners = {owner for owner, _ in drivers}
            if len(owners) < 2:
                continue
            for i, (o1, r1) in enumerate(drivers):
                for o2, r2 in drivers[i + 1:]:
                    if o1 != o2 and _overlap(r1, r2):
                        self.add("multi_driver", f"{_short(path)} is driven by {_owner(o1)} and {_owner(o2)}")
                        break
                else:
                    continue
                break

    def _races(self) -> None:
        edges = [p for p in self.processes if p.kind == "edge"]
        comb = [p for p in self.processes if p.kind in ("star", "level", "comb")]
        for p in edges:
            if not p.blocking:
                continue
            # what the blocking writes reach within the same time step: nets and combinational
            # processes computed from them
            reach = self._fanout(set(p.blocking), comb)
            for q in edges:
                shared = reach & (q.reads | q.listed) if q is not p else set()
                if shared:
                    self.add("race", f"{_short(min(p.blocking & reach))} is assigned with '=' in one clocked "
                             f"process and read (as {_short(min(shared))}) by another")
                    break

    def _fanout(self, start: set, comb: list) -> set:
        """``start`` grown by everything computed from it within one time step: nets reading it and the writes of
        combinational processes reading it, to a fixed point."""
        reached = set(start)
        changed = True
        while changed:
            changed = False
            for path, reads in self.net_reads.items():
                if path not in reached and reads & reached:
                    reached.add(path)
                    changed = True
            for c in comb:
                if c.reads & reached and not c.writes <= reached:
                    reached |= c.writes
                    changed = True
        return reached

    def _sensitivity(self) -> None:
        for p in self.processes:
            if p.kind == "level":
                missing = (p.reads & self.signals) - p.listed - p.writes
                if missing:
                    self.add("sensitivity", f"{p.where}: the sensitivity list lacks "
                             f"{', '.join(_short(m) for m in sorted(missing)[:4])}")
            elif p.kind in ("star", "comb") and p.hidden_reads:
                self.add("sensitivity", f"{p.where} reads {', '.join(_short(m) for m in sorted(p.hidden_reads)[:4])} "
                         "inside a function, which @* does not see")

    def _time_zero(self, clock_ports: set[str]) -> None:
        # signals that change at the first step: data and reset inputs, and what an asynchronous
        # reset branch sets; then whatever is computed from them
        awake = {path for path in self.inputs if self.input_names.get(path) not in clock_ports}
        for p in self.processes:
            if p.kind == "edge" and p.async_reset:
                awake |= p.reset_writes
        comb = [p for p in self.processes if p.kind in ("star", "level", "comb")]
        awake = self._fanout(awake, comb)
        for p in comb:
            if p.kind in ("star", "level") and not (p.reads & awake):
                names = ", ".join(_short(m) for m in sorted(p.reads & self.signals)[:3]) or "nothing"
                self.add("time_zero", f"{p.where} reads only {names}, which no input wakes at the start of "
                         "a simulation (outputs stay X there)")


def _first(stmt):
    from .interface import _first_statement

    return _first_statement(stmt)


def _elements(array):
    from .interface import _instance_elements

    return _instance_elements(array)


def _element_position(value_expr, index: int | None) -> int | None:
    """Position of element ``index`` of a packed vector or an unpacked array, from the low end."""
    from .interface import _bit_position

    vtype = getattr(value_expr, "type", None)
    if index is not None and vtype is not None and vtype.isUnpackedArray and hasattr(vtype, "range"):
        left, right = int(vtype.range.left), int(vtype.range.right)
        return index - right if left >= right else right - index
    return _bit_position(value_expr, index)


def _width(expr) -> int:
    try:
        return int(expr.type.bitWidth)
    except (AttributeError, TypeError):
        return 0


def _has_x_literal(expr) -> bool:
    from pyslang import ast

    found = {"x": False}

    def visit(node):
        if isinstance(node, ast.Expression) and node.kind in (
                ast.ExpressionKind.IntegerLiteral, ast.ExpressionKind.UnbasedUnsizedIntegerLiteral):
            try:
                if int(node.value.countXs()) > 0:
                    found["x"] = True
                    return ast.VisitAction.Interrupt
            except (AttributeError, TypeError, ValueError):
                pass
        return ast.VisitAction.Advance

    expr.visit(visit)
    return found["x"]


def _has_z(literal) -> bool:
    try:
        return int(literal.value.countZs()) > 0
    except (AttributeError, TypeError, ValueError):
        return False


def _tuple(value: Any) -> tuple:
    if isinstance(value, tuple):
        return value
    try:
        return tuple(value)
    except TypeError:
        return (value,)


def _overlap(a: tuple[int, int] | None, b: tuple[int, int] | None) -> bool:
    if a is None or b is None:
        return True
    return a[0] <= b[1] and b[0] <= a[1]


def _short(path: str) -> str:
    return path.split(".", 1)[-1] if "." in path else path


def _owner(owner: str) -> str:
    return owner.split("#")[0].replace("assign", "a continuous assignment").replace("process", "a process") \
        .replace("testbench", "the port itself").replace("gate", "a gate primitive").replace("net", "its declaration")


def scope_name(scope) -> str:
    try:
        return scope.hierarchicalPath or "module"
    except AttributeError:
        return "module"
