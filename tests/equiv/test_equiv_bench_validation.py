"""The mutation operators of scripts/bench_equiv.py, and the checker on the shared benchmarks.

The benchmark tests are optional: skipped, naming the folder, when ../shared/bench is absent.
Golden designs are read by path; nothing is copied into the repository.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

from rewards.equiv_mutants import FAMILIES, OPERATORS, REWRITES, make_mutants, mutation_sites
from rewards.equivalence import EquivConfig, check_equivalence
from rewards.interface import extract_interface
from rewards.sanitize import rename_modules, sanitize_candidate
from rewards.syntax import check_syntax

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.environ.get("VERIRL_BENCH_DIR", os.path.join(ROOT, "..", "shared", "bench"))
VE = os.path.join(BENCH, "verilog-eval-v2", "dataset_spec-to-rtl")
RTLLM = os.path.join(BENCH, "rtllm", "v1.1")

FIXTURE = """module TopModule(input clk, input reset, input [3:0] d, output reg [3:0] q, output y);
  always @(posedge clk)
    if (reset) q <= 4'd0;
    else if (d[0]) q <= q + d;
    else q <= q & d;
  assign y = q == 4'd7;
endmodule
"""
ASYNC = FIXTURE.replace("always @(posedge clk)", "always @(posedge clk or posedge reset)")
COMB = """module TopModule(input [3:0] a, input [3:0] b, input s, output reg [3:0] y, output z);
  always @(*) begin
    case (s)
      1'b0: y = a & b;
      default: y = a | b;
    endcase
  end
  assign z = a[1] ^ b[2];
endmodule
"""


def _bench_script():
    name = "verirl_scripts_bench_equiv"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "scripts", "bench_equiv.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_every_operator_applies_to_a_fixture_and_yields_parsable_mutants():
    found = {}
    for source in (FIXTURE, ASYNC, COMB):
        iface = extract_interface(source)
        for op, sites in mutation_sites(source, iface, "TopModule").items():
            for _, code in sites:
                assert code != source
            found[op] = found.get(op, 0) + len(sites)
    missing = [op for op in OPERATORS if not found.get(op)]
    assert not missing, missing
    assert set(FAMILIES) >= {"bench", "clock_edge", "derived_clock", "reset", "xz", "pragma", "multi_driver",
                             "sensitivity", "race"}
    sites = mutation_sites(FIXTURE, extract_interface(FIXTURE), "TopModule", ["operator_swap"])["operator_swap"]
    assert not any("[3:0]" not in code for _, code in sites)  # ranges untouched


def test_make_mutants_is_deterministic_and_filters():
    iface = extract_interface(FIXTURE)
    a = make_mutants("p", FIXTURE, iface, "TopModule", 1, 5)
    b = make_mutants("p", FIXTURE, iface, "TopModule", 1, 5)
    assert [m.code for m in a] == [m.code for m in b] and len({m.kind for m in a}) >= 10
    assert make_mutants("p", FIXTURE, iface, "TopModule", 1, 5, valid=lambda code: False) == []


@pytest.mark.usefixtures("eda")
def test_rewrites_of_the_fixtures_are_equivalent_and_flips_are_not():
    for source in (FIXTURE, COMB):
        iface = extract_interface(source)
        for kind, rewrite in REWRITES.items():
            code = rewrite(source, iface, "TopModule")
            if code is None:
                continue
            res = check_equivalence(source, code, "TopModule")
            assert res.verdict == "equivalent", (kind, res.reason, res.log[-300:])
    flips = mutation_sites(FIXTURE, extract_interface(FIXTURE), "TopModule", ["reset_polarity_flip"])
    for _, code in flips["reset_polarity_flip"]:
        assert check_equivalence(FIXTURE, code, "TopModule").verdict == "not_equivalent"


def test_the_bench_script_parses_its_arguments():
    bench = _bench_script()
    assert bench.main(["--bench", "/nonexistent", "--rtllm", ""]) == 2
    assert bench.main(["--operators", "no_such_operator", "--rtllm", ""]) == 2


def _sample(folder: str, suffix: str, step: int) -> list[str]:
    if not os.path.isdir(folder):
        pytest.skip(f"benchmark folder {folder} is missing (expected at ../shared/bench)")
    return sorted(f for f in os.listdir(folder) if f.endswith(suffix))[::step]


def _valid(top: str):
    def valid(code: str) -> bool:
        try:
            return check_syntax(sanitize_candidate(code, top).code, top).ok
        except Exception:  # noqa: BLE001 - a refused construct is not a valid mutant
            return False
    return valid


@pytest.mark.usefixtures("eda")
def test_verilog_eval_mutants_never_proven_when_simulation_tells_them_apart():
    """On a sample of VerilogEval references: every mutant the simulation refutes is refuted by
    ``auto`` too, none is called equivalent at a formal strength; rewrites stay equivalent."""
    for name in _sample(VE, "_ref.sv", 31):
        with open(os.path.join(VE, name)) as fh:
            gold = rename_modules(fh.read(), {"RefModule": "TopModule"})
        if not _valid("TopModule")(gold):
            continue  # a few references use SystemVerilog casts Icarus 11 cannot compile
        iface = extract_interface(gold, "TopModule")
        for mutant in make_mutants(name, gold, iface, "TopModule", 1, 3, _valid("TopModule")):
            sim = check_equivalence(gold, mutant.code, "TopModule", config=EquivConfig(method="simulation"))
            auto = check_equivalence(gold, mutant.code, "TopModule")
            if sim.verdict == "not_equivalent":
                assert auto.verdict == "not_equivalent", (name, mutant.kind, mutant.where, auto.strength)
            if auto.verdict == "not_equivalent":
                assert auto.counterexample is not None
        for kind in ("wrapper", "clock_alias"):
            code = REWRITES[kind](gold, iface, "TopModule")
            if code is not None:
                res = check_equivalence(gold, code, "TopModule")
                assert res.verdict == "equivalent", (name, kind, res.reason, res.log[-300:])


@pytest.mark.usefixtures("eda")
def test_rtllm_designs_are_equivalent_to_themselves_and_refute_clock_mutants():
    if not os.path.isdir(RTLLM):
        pytest.skip(f"benchmark folder {RTLLM} is missing (expected at ../shared/bench)")
    checked = 0
    for design in sorted(os.listdir(RTLLM))[::3]:
        folder = os.path.join(RTLLM, design)
        files = [f for f in os.listdir(folder) if f.startswith("verified_") and f.endswith(".v")] \
            if os.path.isdir(folder) else []
        if not files:
            continue
        with open(os.path.join(folder, files[0])) as fh:
            source = fh.read()
        top = "verified_asyn_fifo" if design == "asyn_fifo" else None
        config = EquivConfig(cycles=60, long_cycles=200)
        res = check_equivalence(source, source, top, config=config)
        assert res.verdict == "equivalent", (design, res.reason, res.log[-500:])
        iface = extract_interface(source, top)
        for mutant in make_mutants(design, source, iface, iface.name, 1, 1, _valid(iface.name),
                                   ["negedge_all", "nclk_wire", "sync_to_async"]):
            sim = check_equivalence(source, mutant.code, iface.name, config=EquivConfig(method="simulation"))
            auto = check_equivalence(source, mutant.code, iface.name)
            assert not (sim.verdict == "not_equivalent" and auto.verdict == "equivalent"), (design, mutant.where)
        checked += 1
    assert checked >= 8


def test_commutative_rewrite_respects_precedence():
    from rewards.equiv_mutants import commutative_rewrite

    src = "module m(input a, input [3:0] c, output y); assign y = a && c <= 4'd7; endmodule"
    assert commutative_rewrite(src) is None  # swapping a and c would regroup the comparison
    src = "module m(input a, input b, output y); assign y = (a & b); endmodule"
    assert "(b & a)" in commutative_rewrite(src)
