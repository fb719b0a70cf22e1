"""Self-checking testbenches in the ``verirl`` harness for generated designs.

The testbench instantiates the candidate as ``<top>`` and the golden as ``ref_<top>`` (the scorer renames the
reference's modules), drives both with the same stimulus, compares every output with ``!==`` (so an ``x`` or ``z``
is a mismatch) and ends with `` `VERIRL_REPORT(tb_pass, tb_total) ``, one check per vector or per clock cycle.

* Combinational designs: every input combination when there are at most ``EXHAUSTIVE_BITS`` input bits, otherwise
  ``random_vectors`` vectors from ``$random`` with a fixed seed.
* Sequential designs: reset for two cycles, then ``cycles`` cycles of random inputs with one more reset pulse in
  the middle; inputs change on the falling edge and outputs are compared just before the next rising edge.
"""

from __future__ import annotations

from .design import Design, Port

EXHAUSTIVE_BITS = 12
_TB = "tb"


def _signal_decls(design: Design) -> list[str]:
    lines = []
    for p in design.ports:
        if p.direction == "input":
            lines.append(f"reg {p.range}{p.name};")
        else:
            lines.append(f"wire {p.range}{p.name}_dut;")
            lines.append(f"wire {p.range}{p.name}_ref;")
    return lines


def _instances(design: Design) -> list[str]:
    def conns(suffix: str) -> str:
        return ", ".join(f".{p.name}({p.name}{suffix if p.direction == 'output' else ''})" for p in design.ports)
    return [f"{design.top} tb_dut({conns('_dut')});", f"ref_{design.top} tb_golden({conns('_ref')});"]


def _compare(outputs: list[Port]) -> str:
    cond = " || ".join(f"{p.name}_dut !== {p.name}_ref" for p in outputs)
    return f"tb_total = tb_total + 1; if (!({cond})) tb_pass = tb_pass + 1;"


def _concat(ports: list[Port]) -> str:
    return "{" + ", ".join(p.name for p in ports) + "}"


def combinational_tb(design: Design, random_vectors: int, seed: int) -> str:
    ins = design.inputs
    n_bits = sum(p.width for p in ins)
    lines = [f"module {_TB};", *_signal_decls(design), *_instances(design),
             "integer tb_pass, tb_total, tb_i, tb_seed;", "initial begin", f"tb_pass = 0; tb_total = 0; tb_seed = {seed};"]
    if n_bits <= EXHAUSTIVE_BITS:
        lines.append(f"for (tb_i = 0; tb_i < {1 << n_bits}; tb_i = tb_i + 1) begin")
        lines.append(f"{_concat(ins)} = tb_i;")
    else:
        lines.append(f"for (tb_i = 0; tb_i < {random_vectors}; tb_i = tb_i + 1) begin")
        lines.append(f"{_concat(ins)} = {{$random(tb_seed), $random(tb_seed)}};")
    lines += ["#1;", _compare(design.outputs), "end", "`VERIRL_REPORT(tb_pass, tb_total)", "end", "endmodule"]
    return "\n".join(lines) + "\n"


def sequential_tb(design: Design, cycles: int, seed: int) -> str:
    clk, rst = design.clock, design.reset
    active, idle = ("0", "1") if design.reset_kind == "async_low" else ("1", "0")
    data = [p for p in design.inputs if p.role == "data"]
    lines = [f"module {_TB};", *_signal_decls(design), *_instances(design),
             "integer tb_pass, tb_total, tb_i, tb_seed;",
             f"always #5 {clk} = ~{clk};",
             "initial begin", f"tb_pass = 0; tb_total = 0; tb_seed = {seed}; {clk} = 0; {rst} = {active};"]
    if data:
        lines.append(f"{_concat(data)} = 0;")
    lines += [f"@(negedge {clk}); @(negedge {clk}); {rst} = {idle};",
              f"for (tb_i = 0; tb_i < {cycles}; tb_i = tb_i + 1) begin",
              f"@(negedge {clk});",
              f"{rst} = (tb_i == {cycles // 2}) ? {active} : {idle};"]
    if data:
        lines.append(f"{_concat(data)} = $random(tb_seed);")
    lines += ["#2;", _compare(design.outputs), "end", "`VERIRL_REPORT(tb_pass, tb_total)", "end", "endmodule"]
    return "\n".join(lines) + "\n"


def build_testbench(design: Design, *, random_vectors: int = 256, cycles: int = 96, seed: int = 1) -> str:
    """The ``verirl``-harness testbench of ``design`` (top module ``tb``)."""
    if random_vectors < 1 or cycles < 4:
        raise ValueError("random_vectors must be >= 1 and cycles >= 4")
    if design.sequential:
        return sequential_tb(design, cycles, seed)
    return combinational_tb(design, random_vectors, seed)
