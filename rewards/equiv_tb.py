"""Generate the self-checking equivalence testbench from a module interface.

The testbench (top module :data:`TB_TOP`) instantiates the candidate as ``<top>`` and the golden
design as ``<ref_prefix><top>`` (the runner renames every golden module), drives both with the same
stimulus and compares every output after every input change.

**Comparison, bit by bit.** A golden bit that is X accepts any candidate value (the golden design
does not specify it); a golden Z must be matched by a candidate Z (high impedance is a value a
tri-state output must produce); a golden 0/1 must be matched exactly, so a candidate X or Z there is
a mismatch. Both designs fully known: one vector comparison; any unknown bit: a per-bit loop.

**Inputs, one group at a time.** The inputs fall into groups: every clock bit, every reset, and the
data inputs together. At most one group changes at a time, and every change is followed by a check
one time unit later, so no data input ever changes on a clock edge and the result never depends on
the order in which the simulator runs processes of the same time step (the formal model of
:mod:`rewards.formal` makes the same assumption, which is what makes its proofs about this
simulation). Clocks start at 0 by declaration (no edge at time 0); data and resets are X until time
1, when every reset is asserted and the data inputs take their first value, so every process that
reads them wakes before the first check.

**Combinational** modules get corner vectors (all zeros, all ones, walking one, walking zero, each
input at 0/1/max/max-1/min/max signed), then either every input value (when the concatenated data
inputs are at most ``exhaustive_bits`` wide) and ``vectors`` random vectors mixing corner values in
(after an exhaustive pass too: random order exposes latches that ascending order hides).

**Sequential** modules run ``sequences`` sequences of ``cycles`` cycles of the first clock plus one
long sequence (``long_cycles``, no mid-sequence resets) that reaches deep states (counters). A slot
is half a period of the first clock: its edge, then the edges of the other clocks that are due (each
other clock gets a random half period of 1-4 slots and a random phase per sequence, so two clocks
are exercised both at the same rate with shifted edges and at different rates, never with
coinciding edges), then reset events, then a data change, then the end of a short reset pulse, then
a random idle time of 0-3 units (a design that runs on its own ``#`` delays cannot stay lined up
with the interface clock). Each sequence starts with every reset asserted for one to three cycles of
the slowest clock; inside a sequence resets pulse again at random: short pulses that start and end
between two clock edges (an asynchronous reset acts, a synchronous one must not) and long ones
spanning edges. Sequence 0 drives all-zero data, sequence 1 all ones, then sequences cycle through
fast-changing random inputs and slow-changing ones (each input takes a new value one time in 8, or
in 64 slots, so conditions that must hold for many cycles occur); the long sequence is
slow-changing. **Strobes** (one-bit inputs that gate state: enables, write strobes, ``valid``,
``start``; see :mod:`rewards.interface`) are data inputs, but in the short slow-changing sequences
they stay at their inactive level except for one-cycle pulses at a per-sequence rate (one slot in
16 to one in 256): a transaction started by a pulse runs to its end before the next one; a strobe
that loads constants like a synchronous reset is also held active at the start of every
sequence. Everything is drawn from ``$random(seed)``, so a seed gives the same run.

The first mismatch prints a counterexample (time, sequence, cycle, every input, expected and got
outputs) on ``VERIRL-EQUIV-*`` lines; the verdict is the runner's secret ``VERIRL_REPORT`` macro
with four counts: checks passed, checks, sequences without a mismatch, sequences.
"""

from __future__ import annotations

import dataclasses
import re

from .interface import ModuleInterface, Port

TB_TOP = "verirl_equiv_tb"
CEX_PREFIX = "VERIRL-EQUIV-"
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclasses.dataclass(frozen=True)
class Stimulus:
    """The stimulus knobs of one generated testbench (filled from :class:`rewards.equivalence.EquivConfig`)."""

    seed: int = 1
    sequences: int = 8
    cycles: int = 150
    long_cycles: int = 1200
    vectors: int = 2000
    exhaustive_bits: int = 16
    reset_pulses: int = 4
    stop_on_mismatch: bool = True


def vname(name: str) -> str:
    """``name`` as a Verilog identifier reference: plain, or escaped (``\\a$b ``)."""
    if _PLAIN.match(name):
        return name
    if not name or any(c.isspace() for c in name) or not name.isprintable():
        raise ValueError(f"port name {name!r} cannot be written as a Verilog identifier")
    return "\\" + name + " "


def _sig(name: str) -> str:
    return vname(f"in_{name}")


def _out(prefix: str, port: Port) -> str:
    return vname(f"{prefix}_{port.name}")


@dataclasses.dataclass(frozen=True)
class InputLayout:
    """How the testbench (and the formal wrapper) build every input port from input groups.

    ``clocks[k]`` is the port bit driven by clock register ``k``; ``resets[k]`` is a reset port and
    its active level; ``data[j]`` is the port bit driven by bit ``j`` of the data vector. Every input
    bit belongs to exactly one of them.
    """

    clocks: tuple[tuple[str, int], ...]
    resets: tuple[tuple[str, int], ...]
    data: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, iface: ModuleInterface) -> InputLayout:
        clocks: list[tuple[str, int]] = []
        for clk in iface.clocks:
            port = iface.port(clk.name)
            if port is not None and port.direction == "input" and port.packed:
                clocks.append((clk.name, clk.bit or 0))
        reset_ports = [r for r in iface.resets if (r.name, 0) not in clocks]
        resets = tuple((r.name, r.active_level) for r in reset_ports)
        special = set(clocks) | {(r.name, 0) for r in reset_ports}
        data = [(p.name, i) for p in iface.inputs for i in range(p.width) if (p.name, i) not in special]
        return cls(tuple(clocks), resets, tuple(data))

    def port_bits(self, port: Port, clock: str, reset: str, data: str) -> list[str]:
        """Verilog expressions of the port's bits, least significant first."""
        out: list[str] = []
        clock_index = {key: k for k, key in enumerate(self.clocks)}
        reset_index = {name: k for k, (name, _) in enumerate(self.resets)}
        data_index = {key: j for j, key in enumerate(self.data)}
        for i in range(port.width):
            key = (port.name, i)
            if key in clock_index:
                out.append(f"{clock}[{clock_index[key]}]")
            elif port.name in reset_index and port.width == 1:
                out.append(f"{reset}[{reset_index[port.name]}]")
            else:
                out.append(f"{data}[{data_index[key]}]")
        return out

    def port_expr(self, port: Port, clock: str, reset: str, data: str, lo: int = 0, hi: int | None = None) -> str:
        """A Verilog concatenation of bits ``lo..hi`` of the port, contiguous runs as part selects
        (a concatenation of single bits costs the simulator one net per bit)."""
        bits = self.port_bits(port, clock, reset, data)[lo:hi]
        return concat_bits(bits)

    def data_slices(self) -> dict[str, tuple[int, int]]:
        """``port -> (hi, lo)`` of the data vector for ports whose bits are all contiguous data."""
        found: dict[str, list[int]] = {}
        for j, (name, _) in enumerate(self.data):
            found.setdefault(name, []).append(j)
        return {name: (max(js), min(js)) for name, js in found.items() if max(js) - min(js) + 1 == len(js)}


def concat_bits(bits: list[str]) -> str:
    """``{...}`` of bit references given least significant first, merging ``v[k+1], v[k]`` runs."""
    runs: list[tuple[str, int, int]] = []  # (vector, high, low), most significant first
    for bit in reversed(bits):
        name, _, rest = bit.partition("[")
        index = int(rest.rstrip("]"))
        if runs and runs[-1][0] == name and runs[-1][2] == index + 1:
            runs[-1] = (name, runs[-1][1], index)
        else:
            runs.append((name, index, index))
    parts = [f"{n}[{h}]" if h == lo else f"{n}[{h}:{lo}]" for n, h, lo in runs]
    return "{" + ", ".join(parts) + "}"


def _decl(width: int) -> str:
    return f"[{max(width, 1) - 1}:0] "


def _unpacked(port: Port) -> str:
    return " " + " ".join(f"[{left}:{right}]" for left, right in port.unpacked) if port.unpacked else ""


def _elements(port: Port) -> list[str]:
    """Index suffixes of every element of an unpacked port (``[0]``, ``[1]`` ...), or ``[""]``."""
    if not port.unpacked:
        return [""]
    suffixes = [""]
    for left, right in port.unpacked:
        step = 1 if right >= left else -1
        suffixes = [s + f"[{i}]" for s in suffixes for i in range(left, right + step, step)]
    return suffixes


def generate_testbench(iface: ModuleInterface, stim: Stimulus, ref_prefix: str = "ref_") -> str:
    """Verilog source of the equivalence testbench (top module :data:`TB_TOP`) for ``iface``."""
    layout = InputLayout.of(iface)
    lines = _head(iface, layout, stim, ref_prefix)
    if iface.sequential or layout.clocks:
        lines += _sequential_body(iface, layout, stim)
    else:
        lines += _combinational_body(iface, layout, stim)
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _head(iface: ModuleInterface, layout: InputLayout, stim: Stimulus, ref_prefix: str) -> list[str]:
    """Declarations, the two instances and the ``check``/``drive_inputs`` tasks."""
    top = iface.name
    outputs = [p for p in iface.ports if p.direction in ("output", "inout")]
    nd, nc, nr = len(layout.data), len(layout.clocks), len(layout.resets)
    lines = ["`timescale 1ns/1ps", f"module {TB_TOP};",
             f"  reg [{max(nd, 1) - 1}:0] stim, fresh;",
             # clocks start at 0 by declaration: no edge at time 0
             f"  reg [{max(nc, 1) - 1}:0] ck = {max(nc, 1)}'d0;",
             f"  reg [{max(nr, 1) - 1}:0] rs;",
             "  integer seed, passed, total, seq, cycle, i, k, r, b, seq_passed, seq_total;",
             "  reg reported, seq_bad;"]
    for port in iface.inputs:
        if port.unpacked:
            ew = port.element_width
            lines.append(f"  wire {_decl(ew)}{_sig(port.name)}{_unpacked(port)};")
            for e, suffix in enumerate(_elements(port)):
                chunk = layout.port_expr(port, "ck", "rs", "stim", e * ew, (e + 1) * ew)
                lines.append(f"  assign {_sig(port.name)}{suffix} = {chunk};")
        else:
            lines.append(f"  wire {_decl(port.width)}{_sig(port.name)} = {layout.port_expr(port, 'ck', 'rs', 'stim')};")
    for port in outputs:
        for prefix in ("dut", "gold"):
            lines.append(f"  wire {_decl(port.element_width)}{_out(prefix, port)}{_unpacked(port)};")

    def conns(prefix: str) -> str:
        items = [f".{vname(p.name)}({_sig(p.name)})" for p in iface.inputs]
        items += [f".{vname(p.name)}({_out(prefix, p)})" for p in outputs]
        return ", ".join(items)

    lines.append(f"  {top} dut ({conns('dut')});")
    lines.append(f"  {ref_prefix}{top} golden ({conns('gold')});")
    lines += _check_task(iface, stim)
    lines += _random_task(iface, layout)
    return lines


def _check_task(iface: ModuleInterface, stim: Stimulus) -> list[str]:
    outputs = [p for p in iface.ports if p.direction in ("output", "inout")]
    lines = ["  task check;", "    reg bad;", "    begin", "      bad = 0;"]
    for port in outputs:
        for suffix in _elements(port):
            gold, dut = _out("gold", port) + suffix, _out("dut", port) + suffix
            # fast path when both are fully known; otherwise bit by bit: golden X accepts
            # anything, golden Z needs a candidate Z, golden 0/1 needs the same value
            lines += [f"      if (^{gold} === 1'bx || ^{dut} === 1'bx) begin",
                      f"        for (b = 0; b < {port.element_width}; b = b + 1)",
                      f"          if ({gold}[b] !== 1'bx && {gold}[b] !== {dut}[b]) bad = 1;",
                      f"      end else if ({gold} !== {dut}) bad = 1;"]
    lines += ["      total = total + 1;", "      if (!bad) passed = passed + 1;", "      else begin",
              "        seq_bad = 1;",
              "        if (!reported) begin", "          reported = 1;",
              f'          $display("{CEX_PREFIX}CEX %0d %0d %0d", $time, seq, cycle);']
    for port in iface.inputs:
        for suffix in _elements(port):
            lines.append(f'          $display("{CEX_PREFIX}IN {port.name}{suffix} {port.element_width}\'h%h", '
                         f'{_sig(port.name)}{suffix});')
    for port in outputs:
        for suffix in _elements(port):
            w = port.element_width
            lines.append(f'          $display("{CEX_PREFIX}EXP {port.name}{suffix} {w}\'h%h", '
                         f'{_out("gold", port)}{suffix});')
            lines.append(f'          $display("{CEX_PREFIX}GOT {port.name}{suffix} {w}\'h%h", '
                         f'{_out("dut", port)}{suffix});')
    lines.append("        end")
    if stim.stop_on_mismatch:
        lines.append("        `VERIRL_REPORT(passed, total, 0, seq + 1)")
    lines += ["      end", "    end", "  endtask"]
    return lines


def _corner(width: int, which: str) -> str:
    mask = (1 << width) - 1
    value = {"zero": 0, "one": 1 & mask, "max": mask, "max_1": (mask - 1) & mask,
             "min_signed": 1 << (width - 1), "max_signed": (1 << (width - 1)) - 1}[which]
    return f"{width}'h{value:x}"


def _random_task(iface: ModuleInterface, layout: InputLayout) -> list[str]:
    """``drive_inputs(mode)``: 0 all zeros, 1 all ones, 2 every input random (7 times in 16 a corner
    value), 3 and 4 the same values but each input takes a new one only one time in 8 (3) or in 64
    (4): stable stretches of varied length. In modes 3 and 4, when the sequence set ``strobe_mask``,
    strobes are inactive but for one-cycle pulses; before ``open_until`` clearing strobes are active."""
    nd = len(layout.data)
    if nd == 0:
        return ["  task drive_inputs;", "    input integer mode;", "    begin", "    end", "  endtask"]
    words = max(1, (nd + 31) // 32)
    rand_all = "{" + ", ".join(["$random(seed)"] * words) + "}"
    slices = layout.data_slices()
    lines = ["  task drive_inputs;", "    input integer mode;", "    begin",
             "      if (mode == 0) stim = 0;", "      else if (mode == 1) stim = ~0;", "      else begin",
             f"        fresh = {rand_all};"]
    for hi, lo in slices.values():
        w = hi - lo + 1
        if w == 1:
            continue  # a random bit already covers both values
        lines += [
            "        r = $random(seed) & 15;",
            "        case (r)",
            f"          0: fresh[{hi}:{lo}] = 0;",
            f"          1: fresh[{hi}:{lo}] = ~0;",
            (f"          2: begin k = $unsigned($random(seed)) % {w}; fresh[{hi}:{lo}] = 1; "
             f"fresh[{hi}:{lo}] = fresh[{hi}:{lo}] << k; end"),
            f"          3: fresh[{hi}:{lo}] = {_corner(w, 'min_signed')};",
            f"          4: fresh[{hi}:{lo}] = {_corner(w, 'max_signed')};",
            f"          5: fresh[{hi}:{lo}] = {_corner(w, 'one')};",
            f"          6: fresh[{hi}:{lo}] = {_corner(w, 'max_1')};",
            "          default: ;",
            "        endcase",
        ]
    lines += ["        if (mode == 2) stim = fresh;", "        else begin"]
    for hi, lo in slices.values():
        lines.append(f"          if (($random(seed) & (mode == 3 ? 7 : 63)) == 0) stim[{hi}:{lo}] = fresh[{hi}:{lo}];")
    scattered = [j for j, (name, _) in enumerate(layout.data) if name not in slices]
    for j in scattered:
        lines.append(f"          if (($random(seed) & (mode == 3 ? 7 : 63)) == 0) stim[{j}] = fresh[{j}];")
    lines += ["        end", "      end"]
    strobes = _strobe_bits(iface, layout)
    if strobes:
        # pulse sequences: every strobe is inactive but for one-cycle pulses (two slots: one edge of
        # each kind) at the sequence's rate; a clearing strobe is held active at the start of a
        # sequence, like a reset
        lines.append("      if (strobe_mask != 0 && mode >= 3) begin")
        for k, (j, level, _) in enumerate(strobes):
            lines += [(f"        if (sp[{k}] > 0) begin sp[{k}] = sp[{k}] - 1; "
                       f"stim[{j}] = sp[{k}] ? 1'b{level} : 1'b{1 - level}; end"),
                      (f"        else begin stim[{j}] = 1'b{1 - level}; "
                       f"if (($random(seed) & strobe_mask) == 0) begin stim[{j}] = 1'b{level}; sp[{k}] = 2; end end")]
        lines.append("      end")
        for j, level, clears in strobes:
            if clears:
                lines.append(f"      if (slot < open_until) stim[{j}] = 1'b{level};")
        lines = [f"  integer sp [0:{len(strobes) - 1}];", "  integer open_until, strobe_mask;", *lines]
    lines += ["    end", "  endtask"]
    return lines


def _strobe_bits(iface: ModuleInterface, layout: InputLayout) -> list[tuple[int, int, bool]]:
    """``(data bit, active level, clears)`` of every strobe of a clocked design."""
    if not (iface.sequential or layout.clocks):
        return []
    index = {key: j for j, key in enumerate(layout.data)}
    return [(index[(s.name, 0)], s.active_level, s.clears) for s in iface.strobes if (s.name, 0) in index]


def _init_lines(stim: Stimulus) -> list[str]:
    return [f"    seed = {stim.seed}; passed = 0; total = 0; seq = 0; cycle = 0; reported = 0;",
            "    seq_passed = 0; seq_total = 0; seq_bad = 0;"]


def _combinational_body(iface: ModuleInterface, layout: InputLayout, stim: Stimulus) -> list[str]:
    nd = len(layout.data)
    blocks = max(stim.sequences, 1)
    lines = ["  task apply;", "    begin", "      #1 check; #1 cycle = cycle + 1;", "    end", "  endtask",
             "  task end_block;", "    begin",
             "      seq_total = seq_total + 1; if (!seq_bad) seq_passed = seq_passed + 1; seq_bad = 0;",
             "      seq = seq + 1;", "    end", "  endtask",
             "  initial begin", *_init_lines(stim),
             # inputs change at time 1, when every process is waiting for them
             "    #1;"]
    if nd == 0:
        lines += ["    stim = 0;", "    for (i = 0; i < 4; i = i + 1) apply;", "    end_block;"]
    elif nd <= stim.exhaustive_bits:
        lines += [f"    for (i = 0; i < {1 << nd}; i = i + 1) begin",
                  "      stim = i; apply;",
                  f"      if ((i + 1) % {max(1, (1 << nd) // blocks)} == 0 && seq < {blocks - 1}) end_block;",
                  "    end",
                  # then random order: a latch (incomplete case) holds its previous value, which the
                  # ascending order can make look right
                  f"    for (i = 0; i < {stim.vectors}; i = i + 1) begin", "      drive_inputs(2); apply;",
                  "    end", "    end_block;"]
    else:
        lines += ["    stim = 0; apply;", "    stim = ~0; apply;"]
        if nd <= 1024:
            lines += [f"    for (i = 0; i < {nd}; i = i + 1) begin",
                      "      stim = 0; stim[i] = 1'b1; apply;",
                      "      stim = ~0; stim[i] = 1'b0; apply;",
                      "    end"]
        for hi, lo in layout.data_slices().values():
            w = hi - lo + 1
            for which in ("zero", "one", "max", "max_1", "min_signed", "max_signed"):
                if w == 1 and which not in ("zero", "max"):
                    continue
                lines.append(f"    drive_inputs(2); stim[{hi}:{lo}] = {_corner(w, which)}; apply;")
        lines += ["    end_block;",
                  f"    for (i = 0; i < {stim.vectors}; i = i + 1) begin",
                  "      drive_inputs(2); apply;",
                  (f"      if ((i + 1) % {max(1, stim.vectors // max(blocks - 1, 1))} == 0 && seq < {blocks - 1}) "
                   "end_block;"),
                  "    end", "    end_block;"]
    lines += ["    `VERIRL_REPORT(passed, total, seq_passed, seq_total)", "  end"]
    return lines


def _sequential_body(iface: ModuleInterface, layout: InputLayout, stim: Stimulus) -> list[str]:
    nc, nr = len(layout.clocks), len(layout.resets)
    active = "".join(str(level) for _, level in reversed(layout.resets)) or "0"
    lines = [f"  localparam [{max(nr, 1) - 1}:0] RS_ACTIVE = {max(nr, 1)}'b{active};",
             f"  integer half [0:{max(nc, 1) - 1}];", f"  integer phase [0:{max(nc, 1) - 1}];",
             "  integer slot, rst_until, short_pulse, pulses_left, next_pulse, which, slowest, extra;",
             # one change, then a check one unit later, then one more unit
             "  task settle;", "    begin", "      #1 check; #1;", "    end", "  endtask",
             # resets change one at a time, like every other input group
             "  integer kk;",
             "  task release_resets;", "    begin",
             f"      for (kk = 0; kk < {max(nr, 1)}; kk = kk + 1)",
             "        if (rs[kk] !== !RS_ACTIVE[kk]) begin rs[kk] = !RS_ACTIVE[kk]; settle; end",
             "    end", "  endtask",
             "  task assert_resets;", "    begin",
             f"      for (kk = 0; kk < {max(nr, 1)}; kk = kk + 1)",
             "        if (rs[kk] !== RS_ACTIVE[kk]) begin rs[kk] = RS_ACTIVE[kk]; settle; end",
             "    end", "  endtask",
             "  task step;", "    input integer mode;", "    input integer allow_pulse;", "    begin"]
    if nc:
        lines.append("      ck[0] = ~ck[0]; settle;")
        for k in range(1, nc):
            lines.append(f"      if (slot % half[{k}] == phase[{k}]) begin ck[{k}] = ~ck[{k}]; settle; end")
    if nr:
        lines += ["      if (slot == rst_until) release_resets;",
                  "      if (allow_pulse && pulses_left > 0 && slot >= next_pulse && slot > rst_until) begin",
                  "        pulses_left = pulses_left - 1;",
                  (f"        next_pulse = slot + 4 + ($unsigned($random(seed)) % "
                   f"{max(2 * stim.cycles // max(stim.reset_pulses, 1), 4)});"),
                  f"        which = $unsigned($random(seed)) % {nr};",
                  "        short_pulse = $random(seed) & 1;",
                  "        rs[which] = RS_ACTIVE[which]; settle;",
                  "        rst_until = short_pulse ? -1 : slot + 2 * slowest;",
                  "      end"]
    lines.append("      drive_inputs(mode); settle;")
    if nr:
        lines += ["      if (short_pulse) begin short_pulse = 0; release_resets; end"]
    lines += ["      extra = $unsigned($random(seed)) % 4; #(extra);",
              "      slot = slot + 1;", "      if (slot % 2 == 0) cycle = cycle + 1;", "    end", "  endtask"]

    lines += ["  task run_sequence;", "    input integer n_cycles;", "    input integer mode;",
              "    input integer allow_pulse;", "    begin", "      cycle = 0; seq_bad = 0;"]
    for k in range(1, nc):
        lines += [f"      half[{k}] = 1 + ($unsigned($random(seed)) % 4);",
                  f"      phase[{k}] = $unsigned($random(seed)) % half[{k}];"]
    lines.append("      slowest = 1;")
    for k in range(1, nc):
        lines.append(f"      if (half[{k}] > slowest) slowest = half[{k}];")
    strobes = _strobe_bits(iface, layout)
    if strobes:
        # short sequences of modes 3 and 4 pulse the strobes, one slot in 16 to one in 256: quiet
        # stretches long enough for a transaction to finish (mode 2 gives fast random strobes, the
        # long sequence slow levels: an enable held for many cycles)
        lines += [f"      for (k = 0; k < {len(strobes)}; k = k + 1) sp[k] = 0;",
                  "      strobe_mask = 0;",
                  "      if (mode == 3) strobe_mask = (16 << ($unsigned($random(seed)) % 4)) - 1;",
                  "      if (mode == 4 && allow_pulse) strobe_mask = (128 << ($unsigned($random(seed)) % 2)) - 1;",
                  "      open_until = slot + 4 * slowest;"]
    if nr:
        # every sequence starts with every reset asserted for 1-3 cycles of the slowest clock
        lines += ["      assert_resets;",
                  "      rst_until = slot + 2 * slowest * (1 + ($unsigned($random(seed)) % 3));",
                  f"      pulses_left = {stim.reset_pulses}; short_pulse = 0;",
                  f"      next_pulse = rst_until + 4 + ($unsigned($random(seed)) % {max(2 * stim.cycles, 4)});"]
    lines += ["      for (i = 0; i < 2 * n_cycles; i = i + 1) step(mode, allow_pulse);",
              "      seq_total = seq_total + 1; if (!seq_bad) seq_passed = seq_passed + 1;",
              "    end", "  endtask"]

    lines += ["  initial begin", *_init_lines(stim),
              "    slot = 0; rst_until = -1; short_pulse = 0; pulses_left = 0; next_pulse = 0; which = 0;",
              "    slowest = 1; extra = 0; half[0] = 1; phase[0] = 0;"]
    for k in range(1, nc):
        lines.append(f"    half[{k}] = 1; phase[{k}] = 0;")
    # time 1: resets asserted and data driven (x -> value wakes every process reading them), then
    # the first check, before any clock edge (initial values, asynchronous resets)
    lines += ["    #1;"]
    if nr:
        lines.append("    rs = RS_ACTIVE;")
    lines.append("    stim = 0;")
    if strobes:
        lines.append("    open_until = 0; strobe_mask = 0;")
        lines += [f"    stim[{j}] = 1'b{level};" for j, level, clears in strobes if clears]
    lines += ["    settle;",
              f"    for (seq = 0; seq < {stim.sequences}; seq = seq + 1)",
              f"      run_sequence({stim.cycles}, seq < 2 ? seq : 2 + seq % 3, 1);"]
    if stim.long_cycles > 0:
        lines += [f"    seq = {stim.sequences};", f"    run_sequence({stim.long_cycles}, 4, 0);"]
    lines += ["    `VERIRL_REPORT(passed, total, seq_passed, seq_total)", "  end"]
    return lines


def trace_testbench(iface: ModuleInterface, trace: list[dict[str, int]], ref_prefix: str = "ref_") -> str:
    """Replay a per-step input trace (a formal model) exactly.

    ``trace[s]`` maps group names to values: ``ck<k>`` (clock ``k`` of :class:`InputLayout`),
    ``rs<k>`` (reset ``k``) and ``d`` (the data vector). Step 1 is applied at time 1 (clocks were 0
    since time 0), later steps every two units, each followed by a check; the formal model changes
    at most one group per step, so the simulator sees no simultaneous changes.
    """
    layout = InputLayout.of(iface)
    lines = _head(iface, layout, Stimulus(), ref_prefix)
    lines += ["  initial begin", *_init_lines(Stimulus())]
    for step in trace:
        lines.append("    #1;")
        for k in range(len(layout.clocks)):
            if f"ck{k}" in step:
                lines.append(f"    ck[{k}] = 1'b{step[f'ck{k}'] & 1};")
        for k in range(len(layout.resets)):
            if f"rs{k}" in step:
                lines.append(f"    rs[{k}] = 1'b{step[f'rs{k}'] & 1};")
        if layout.data and "d" in step:
            nd = len(layout.data)
            lines.append(f"    stim = {nd}'h{step['d'] & ((1 << nd) - 1):x};")
        lines += ["    #1 check;", "    cycle = cycle + 1;"]
    lines += ["    `VERIRL_REPORT(passed, total, passed == total, 1)", "  end", "endmodule"]
    return "\n".join(lines) + "\n"


def parse_counterexample(stdout: str) -> dict | None:
    """The counterexample the testbench printed: ``{time (ns), sequence, cycle, inputs, expected, got, mismatched}``."""
    cex: dict | None = None
    for line in stdout.splitlines():
        if not line.startswith(CEX_PREFIX):
            continue
        kind, _, rest = line[len(CEX_PREFIX):].partition(" ")
        parts = rest.rsplit(" ", 1) if kind in ("IN", "EXP", "GOT") else rest.split()
        if kind == "CEX" and cex is None and len(parts) == 3:
            try:
                cex = {"time": int(parts[0]), "sequence": int(parts[1]), "cycle": int(parts[2]),
                       "inputs": {}, "expected": {}, "got": {}}
            except ValueError:
                return None
        elif cex is not None and len(parts) == 2 and kind in ("IN", "EXP", "GOT"):
            key = {"IN": "inputs", "EXP": "expected", "GOT": "got"}[kind]
            cex[key][parts[0]] = parts[1]
    if cex is not None:
        cex["mismatched"] = [name for name, value in cex["expected"].items()
                             if not _matches(value, cex["got"].get(name, ""))]
    return cex


def _matches(expected: str, got: str) -> bool:
    """Hex-digit comparison in the spirit of the testbench (an x digit in ``expected`` accepts any
    digit; a z digit needs a z)."""
    e, g = expected.split("'h")[-1].lower(), got.split("'h")[-1].lower()
    if len(e) != len(g):
        return False
    return all(a in "xX" or a == b for a, b in zip(e, g))
