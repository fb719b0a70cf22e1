"""Validation on the shared benchmarks (optional: skipped, naming the folder, when it is absent).

Golden designs are read by path from ../shared/bench; nothing is copied into the repository.
Also checks the mutation helpers of scripts/bench_equiv.py on a small fixture.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

from rewards.equivalence import EquivConfig, check_equivalence
from rewards.interface import extract_interface
from rewards.sanitize import rename_modules

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.environ.get("VERIRL_BENCH_DIR", os.path.join(ROOT, "..", "shared", "bench"))
VE = os.path.join(BENCH, "verilog-eval-v2", "dataset_spec-to-rtl")
RTLLM = os.path.join(BENCH, "rtllm", "v1.1")


def _bench_script():
    name = "verirl_scripts_bench_equiv"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "scripts", "bench_equiv.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file executes
        spec.loader.exec_module(module)
    return sys.modules[name]


FIXTURE = """module TopModule(input clk, input reset, input [3:0] d, output reg [3:0] q, output y);
  always @(posedge clk)
    if (reset) q <= 4'd0;
    else if (d[0]) q <= q + d;
    else q <= q & d;
  assign y = q == 4'd7;
endmodule
"""


def test_mutation_sites_cover_every_kind():
    bench = _bench_script()
    sites = bench.mutation_sites(FIXTURE, {"reset"})
    for kind in bench.MUTATION_KINDS:
        assert sites[kind], kind
        for _, code in sites[kind]:
            assert code != FIXTURE
            extract_interface(code)  # every mutant still parses
    assert any("reset -> !reset" in where for where, _ in sites["reset_polarity_flip"])
    assert not any("[3:0]" not in code for _, code in sites["operator_swap"])  # ranges untouched


@pytest.mark.usefixtures("eda")
def test_equivalent_rewrites_and_mutants_on_the_fixture():
    bench = _bench_script()
    iface = extract_interface(FIXTURE)
    for rewrite in (bench.wrapper_rewrite(FIXTURE, iface, "TopModule"), bench.commutative_rewrite(FIXTURE)):
        assert rewrite is not None and rewrite != FIXTURE
        assert check_equivalence(FIXTURE, rewrite, "TopModule").verdict == "equivalent"
    flipped = dict(bench.mutation_sites(FIXTURE, {"reset"})["reset_polarity_flip"])
    for code in flipped.values():
        assert check_equivalence(FIXTURE, code, "TopModule").verdict == "not_equivalent"


def _sample(folder: str, suffix: str, step: int) -> list[str]:
    if not os.path.isdir(folder):
        pytest.skip(f"benchmark folder {folder} is missing (expected at ../shared/bench)")
    return sorted(f for f in os.listdir(folder) if f.endswith(suffix))[::step]


@pytest.mark.usefixtures("eda")
def test_verilog_eval_references_are_equivalent_to_themselves_and_wrapped():
    bench = _bench_script()
    for name in _sample(VE, "_ref.sv", 20):
        with open(os.path.join(VE, name)) as fh:
            gold = rename_modules(fh.read(), {"RefModule": "TopModule"})
        iface = extract_interface(gold, "TopModule")
        wrapped = bench.wrapper_rewrite(gold, iface, "TopModule")
        for config in (EquivConfig(bmc_depth=8), EquivConfig(method="simulation")):
            res = check_equivalence(gold, wrapped, "TopModule", config=config)
            assert res.verdict == "equivalent", (name, config.method, res.reason, res.log[-500:])


@pytest.mark.usefixtures("eda")
def test_rtllm_designs_are_equivalent_to_themselves():
    if not os.path.isdir(RTLLM):
        pytest.skip(f"benchmark folder {RTLLM} is missing (expected at ../shared/bench)")
    checked = 0
    for design in sorted(os.listdir(RTLLM)):
        folder = os.path.join(RTLLM, design)
        files = [f for f in os.listdir(folder) if f.startswith("verified_") and f.endswith(".v")] \
            if os.path.isdir(folder) else []
        if not files:
            continue
        with open(os.path.join(folder, files[0])) as fh:
            source = fh.read()
        top = "verified_asyn_fifo" if design == "asyn_fifo" else None
        res = check_equivalence(source, source, top, config=EquivConfig(cycles=60, long_cycles=200))
        assert res.verdict == "equivalent", (design, res.reason, res.log[-500:])
        checked += 1
    assert checked >= 25
